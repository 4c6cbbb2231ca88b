// Every name in SMYRF_DIFFERENTIABLE_OPS must have at least one registered gradient-check case;
// every case label must be a differentiable op or a known composite (a typo would otherwise
// register a case that covers nothing).
#include <algorithm>
#include <map>
#include <set>
#include <string>

#include "autograd/op_list.h"
#include "tests/gradcheck/gradcheck_cases.h"

namespace {
std::vector<std::string> differentiable_ops() {
#define SMYRF_GC_OP_NAME(n) #n,
  return {SMYRF_DIFFERENTIABLE_OPS(SMYRF_GC_OP_NAME)};
#undef SMYRF_GC_OP_NAME
}
}  // namespace

TEST_CASE("gradcheck coverage: every differentiable op has a case") {
  std::map<std::string, int> count;
  for (const smyrf::gc::Case& c : smyrf::gc::registry()) count[c.op]++;
  for (const std::string& op : differentiable_ops())
    CHECK_MESSAGE(count[op] > 0, "differentiable op '"
                                     << op
                                     << "' has no gradcheck case: add one in "
                                        "tests/gradcheck/ with SMYRF_GRADCHECK_CASE");
}

TEST_CASE("gradcheck coverage: case labels are known and names are usable") {
  std::vector<std::string> ops = differentiable_ops();
  const std::vector<std::string>& comp = smyrf::gc::composite_labels();
  std::set<std::string> names;
  for (const smyrf::gc::Case& c : smyrf::gc::registry()) {
    const bool known = std::find(ops.begin(), ops.end(), c.op) != ops.end() ||
                       std::find(comp.begin(), comp.end(), c.op) != comp.end();
    CHECK_MESSAGE(known, c.file << ":" << c.line << ": unknown op label '" << c.op << "'");
    const std::string name = std::string(c.op) + ": " + c.description;
    CHECK_MESSAGE(name.find(',') == std::string::npos,
                  c.file << ":" << c.line << ": commas break doctest's --test-case filter");
    CHECK_MESSAGE(names.insert(name).second,
                  c.file << ":" << c.line << ": duplicate case name " << name);
  }
  // the registry itself must be populated: a broken registration macro would pass the above
  CHECK(smyrf::gc::registry().size() >= ops.size());
}
