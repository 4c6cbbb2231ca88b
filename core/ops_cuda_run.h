// Internal to core/ops_cuda*.cpp (built with CUDA): running a kernel call on a tensor's device and
// turning kernel failures into smyrf::Error naming the op.
#pragma once
#include <stdexcept>
#include <string>

#include "core/error.h"
#include "core/tensor.h"
#include "kernels/cuda/runtime.h"

namespace smyrf::cuda_ops::detail {

// Makes t's device current and runs f; std::invalid_argument (a kernel's documented limit) and
// std::runtime_error (a CUDA/cuBLAS/cuDNN failure with file:line) become smyrf::Error.
template <typename F>
void run(const char* op, const Tensor& t, F&& f) {
  try {
    kernels::cuda::set_device(t.device().index);
    f();
  } catch (const Error&) {
    throw;
  } catch (const std::invalid_argument& e) {
    throw Error(op, e.what(), "see the op's documentation for the CUDA limits");
  } catch (const std::runtime_error& e) {
    throw Error(op, e.what());
  }
}

template <typename T>
T* ptr(const Tensor& t) {
  return t.defined() ? static_cast<T*>(t.raw_data()) : nullptr;
}

}  // namespace smyrf::cuda_ops::detail
