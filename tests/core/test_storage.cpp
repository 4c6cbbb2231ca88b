// core/storage: cpu_alloc's alignment, zero-filling, and the MADV_HUGEPAGE advice inside large
// allocations (seen in /proc/self/smaps as the "hg" VmFlag of the mapping that holds them).
#include <doctest/doctest.h>

#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include "core/storage.h"
#include "core/tensor.h"

namespace {

// VmFlags of the /proc/self/smaps mapping that contains p ("" when not found).
std::string vm_flags_of(const void* p) {
  std::ifstream smaps("/proc/self/smaps");
  const auto addr = reinterpret_cast<uintptr_t>(p);
  std::string line;
  bool inside = false;
  while (std::getline(smaps, line)) {
    uintptr_t lo = 0, hi = 0;
    char dash = 0;
    std::istringstream head(line);
    if (head >> std::hex >> lo >> dash >> hi && dash == '-') {
      inside = addr >= lo && addr < hi;
      continue;
    }
    if (inside && line.rfind("VmFlags:", 0) == 0) return line;
  }
  return "";
}

bool thp_available() {
  std::ifstream f("/sys/kernel/mm/transparent_hugepage/enabled");
  std::string s;
  std::getline(f, s);
  return !s.empty() && s.find("[never]") == std::string::npos;
}

}  // namespace

TEST_CASE("storage: cpu allocations are 64-byte aligned and writable to the end") {
  for (size_t n : {size_t(0), size_t(1), size_t(63), size_t(4097), smyrf::kHugePageMin - 1,
                   smyrf::kHugePageMin, smyrf::kHugePageMin + 4, size_t(37) << 20}) {
    auto* p = static_cast<unsigned char*>(smyrf::cpu_alloc(n));
    CHECK(reinterpret_cast<uintptr_t>(p) % 64 == 0);
    if (n) {
      p[0] = 1;
      p[n - 1] = 2;
      CHECK(p[0] + p[n - 1] == (n == 1 ? 4 : 3));
    }
    smyrf::cpu_free(p);
  }
}

TEST_CASE("storage: large cpu allocations are advised for huge pages, small ones are not") {
  if (!smyrf::cpu_hugepages_enabled() || !thp_available()) return;
  auto* big = static_cast<char*>(smyrf::cpu_alloc(size_t(8) << 20));
  // the advice covers the whole 2 MiB pages inside the block: look at the first one
  const uintptr_t inner =
      (reinterpret_cast<uintptr_t>(big) + (size_t(2) << 20) - 1) & ~((size_t(2) << 20) - 1);
  const std::string flags = vm_flags_of(reinterpret_cast<void*>(inner));
  INFO("VmFlags: " << flags);
  CHECK(flags.find(" hg") != std::string::npos);
  smyrf::cpu_free(big);
  // a small allocation lives in the heap, which nobody advised
  void* small = smyrf::cpu_alloc(256);
  const std::string sflags = vm_flags_of(small);
  INFO("VmFlags: " << sflags);
  CHECK(sflags.find(" hg") == std::string::npos);
  smyrf::cpu_free(small);
}

TEST_CASE("storage: zero-filled tensors of huge-page size read back zeros") {
  // 5 MiB: crosses kHugePageMin, ends inside a 2 MiB page
  const int64_t n = (int64_t(5) << 20) / 4 + 3;
  smyrf::Tensor t = smyrf::zeros({n});
  const float* p = t.data_ptr<float>();
  double s = 0;
  for (int64_t i = 0; i < n; ++i) s += p[i] != 0.f;
  CHECK(s == 0);
}
