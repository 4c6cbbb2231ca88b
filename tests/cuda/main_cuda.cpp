// The CUDA suite's main: without a GPU (or without a CUDA build) it exits with 77, which CTest
// reports as "skipped" (SKIP_RETURN_CODE), never as passed.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <cstdio>

#include "core/device.h"

int main(int argc, char** argv) {
  if (!smyrf::built_with_cuda()) {
    std::printf("smyrf was built without CUDA: skipping the CUDA tests\n");
    return 77;
  }
  if (smyrf::cuda_device_count() == 0) {
    std::printf("no CUDA device visible: skipping the CUDA tests\n");
    return 77;
  }
  doctest::Context ctx(argc, argv);
  return ctx.run();
}
