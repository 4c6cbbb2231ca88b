#include "core/error.h"

namespace smyrf {
namespace {
std::string format(const std::string& op, const std::string& message, const std::string& hint) {
  std::string s = "[" + op + "] " + message;
  if (!hint.empty()) s += " (hint: " + hint + ")";
  return s;
}
}  // namespace

Error::Error(const std::string& op, const std::string& message, const std::string& hint)
    : std::runtime_error(format(op, message, hint)), op_(op) {}

}  // namespace smyrf
