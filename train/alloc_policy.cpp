#include "train/alloc_policy.h"

#include <malloc.h>

namespace smyrf::train {

bool retain_freed_memory() {
  // mallopt's value is an int: 2 GiB - 1 is the largest trim threshold it can express.
  const bool mmap_ok = mallopt(M_MMAP_THRESHOLD, 1 << 30) == 1;
  const bool trim_ok = mallopt(M_TRIM_THRESHOLD, 0x7fffffff) == 1;
  return mmap_ok && trim_ok;
}

}  // namespace smyrf::train
