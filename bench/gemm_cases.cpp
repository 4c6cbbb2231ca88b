// --shapes parsing for the gemm benchmarks (see gemm_cases.h).
#include "bench/gemm_cases.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <sstream>

#include "bench/registry.h"

namespace smyrf::bench {
namespace {

// The literal spelling trans as one of the four transposes, or nullptr. (A GemmCase once kept
// c_str() of strings stored in a std::vector: when the vector grew, the short strings moved and
// the earlier cases' trans dangled, so a --shapes list of several ad-hoc cases printed garbage
// transposes and measured the wrong ones.)
const char* canonical_trans(const std::string& trans) {
  for (const char* t : {"NN", "NT", "TN", "TT"})
    if (trans == t) return t;
  return nullptr;
}

}  // namespace

std::string shape_string(const GemmCase& c) {
  std::ostringstream os;
  if (c.batch > 1) os << c.batch << "x";
  os << c.m << "x" << c.n << "x" << c.k;
  return os.str();
}

bool selected(const std::string& shapes, const GemmCase& c) {
  if (shapes.empty()) return true;
  const std::string shape = shape_string(c);
  for (std::string tok : list_entries(shapes)) {
    std::string want_trans;
    if (auto colon = tok.find(':'); colon != std::string::npos) {
      want_trans = tok.substr(colon + 1);
      tok = tok.substr(0, colon);
    }
    if (!want_trans.empty() && want_trans != c.trans) continue;
    if (tok == shape) return true;
    if (c.batch == 1 && c.m == c.n && c.n == c.k && tok == std::to_string(c.m)) return true;
  }
  return false;
}

std::vector<GemmCase> adhoc_cases(const std::string& shapes, bool batched,
                                  const std::vector<GemmCase>& listed) {
  std::vector<GemmCase> out;
  for (const std::string& tok : list_entries(shapes)) {
    const auto colon = tok.find(':');
    if (colon == std::string::npos) continue;
    const char* trans = canonical_trans(tok.substr(colon + 1));
    if (!trans) continue;
    long long d[4] = {0, 0, 0, 0};
    char tail = 0;
    const std::string dims = tok.substr(0, colon);
    const int n =
        batched
            ? std::sscanf(dims.c_str(), "%lldx%lldx%lldx%lld%c", &d[0], &d[1], &d[2], &d[3], &tail)
            : std::sscanf(dims.c_str(), "%lldx%lldx%lld%c", &d[1], &d[2], &d[3], &tail);
    if (n != (batched ? 4 : 3) || d[1] <= 0 || d[2] <= 0 || d[3] <= 0) continue;
    const GemmCase c{batched ? d[0] : 1, d[1], d[2], d[3], trans};
    if (c.batch <= 0 || (batched && c.batch == 1)) continue;
    const std::string shape = shape_string(c);
    const bool known = std::any_of(listed.begin(), listed.end(), [&](const GemmCase& l) {
      return std::strcmp(trans, l.trans) == 0 && shape_string(l) == shape;
    });
    if (!known) out.push_back(c);
  }
  return out;
}

}  // namespace smyrf::bench
