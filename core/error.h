// Errors: exceptions that name the op, what was wrong (shapes, dtypes) and a hint.
//
//   [matmul] inner dimensions differ: (8, 64) @ (32, 16) (hint: ...)
//
// Library code never aborts or exits; every failure is an smyrf::Error.
#pragma once
#include <sstream>
#include <stdexcept>
#include <string>

namespace smyrf {

class Error : public std::runtime_error {
 public:
  Error(const std::string& op, const std::string& message, const std::string& hint = "");
  const std::string& op() const { return op_; }

 private:
  std::string op_;
};

}  // namespace smyrf

// SMYRF_CHECK(cond, "op", "message " << values << ...) and optionally SMYRF_CHECK_HINT with a hint.
#define SMYRF_CHECK(cond, op, msg)                  \
  do {                                              \
    if (!(cond)) {                                  \
      std::ostringstream smyrf_check_os_;           \
      smyrf_check_os_ << msg;                       \
      throw ::smyrf::Error(op, smyrf_check_os_.str()); \
    }                                               \
  } while (0)

#define SMYRF_CHECK_HINT(cond, op, msg, hint)                              \
  do {                                                                     \
    if (!(cond)) {                                                         \
      std::ostringstream smyrf_check_os_, smyrf_hint_os_;                  \
      smyrf_check_os_ << msg;                                              \
      smyrf_hint_os_ << hint;                                              \
      throw ::smyrf::Error(op, smyrf_check_os_.str(), smyrf_hint_os_.str()); \
    }                                                                      \
  } while (0)

#define SMYRF_FAIL(op, msg) SMYRF_CHECK(false, op, msg)
