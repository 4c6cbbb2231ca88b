// cuDNN convolution (host code): descriptors per call, heuristic algorithm choice within the
// workspace the caching allocator can give, checked calls. See conv_cudnn.h.
// Status: ran on an NVIDIA H200 on 2026-11-28 (tests/cuda, all passing; scripts/gpu-check).
#include "kernels/cuda/conv_cudnn.h"

#include <cudnn.h>

#include <cstdlib>
#include <map>
#include <string>
#include <type_traits>

#include "kernels/cuda/check.h"
#include "kernels/cuda/device_buffer.h"

#define SMYRF_CUDNN_CHECK(call)                                                            \
  do {                                                                                     \
    cudnnStatus_t smyrf_st_ = (call);                                                      \
    if (smyrf_st_ != CUDNN_STATUS_SUCCESS)                                                 \
      ::smyrf::kernels::cuda::detail::throw_library("cudnn", static_cast<int>(smyrf_st_),  \
                                                    cudnnGetErrorString(smyrf_st_), #call, \
                                                    __FILE__, __LINE__);                   \
  } while (0)

namespace smyrf::kernels::cuda {
namespace {

cudnnHandle_t handle() {  // one per (thread, device), leaked at exit like the cuBLAS handles
  thread_local std::map<int, cudnnHandle_t>* handles = new std::map<int, cudnnHandle_t>;
  const int dev = current_device();
  auto it = handles->find(dev);
  if (it == handles->end()) {
    cudnnHandle_t h = nullptr;
    SMYRF_CUDNN_CHECK(cudnnCreate(&h));
    it = handles->emplace(dev, h).first;
  }
  SMYRF_CUDNN_CHECK(cudnnSetStream(it->second, detail::stream()));
  return it->second;
}

bool deterministic() {
  static const bool on = [] {
    const char* e = std::getenv("SMYRF_DETERMINISTIC");
    return e && std::string(e) == "1";
  }();
  return on;
}

constexpr size_t kMaxWorkspace = size_t{1} << 30;  // 1 GiB: the largest workspace we hand cuDNN

template <typename T>
cudnnDataType_t data_type() {
  return std::is_same_v<T, double> ? CUDNN_DATA_DOUBLE : CUDNN_DATA_FLOAT;
}

int to_int(int64_t v) { return static_cast<int>(v); }

// The descriptors of one convolution, destroyed at scope exit.
template <typename T>
struct Descriptors {
  cudnnTensorDescriptor_t x = nullptr, y = nullptr, b = nullptr;
  cudnnFilterDescriptor_t w = nullptr;
  cudnnConvolutionDescriptor_t conv = nullptr;

  explicit Descriptors(const cpu::Conv2dGeometry& g) {
    const cudnnDataType_t dt = data_type<T>();
    SMYRF_CUDNN_CHECK(cudnnCreateTensorDescriptor(&x));
    SMYRF_CUDNN_CHECK(cudnnCreateTensorDescriptor(&y));
    SMYRF_CUDNN_CHECK(cudnnCreateTensorDescriptor(&b));
    SMYRF_CUDNN_CHECK(cudnnCreateFilterDescriptor(&w));
    SMYRF_CUDNN_CHECK(cudnnCreateConvolutionDescriptor(&conv));
    SMYRF_CUDNN_CHECK(cudnnSetTensor4dDescriptor(x, CUDNN_TENSOR_NCHW, dt, to_int(g.N), to_int(g.C),
                                                 to_int(g.H), to_int(g.W)));
    SMYRF_CUDNN_CHECK(cudnnSetTensor4dDescriptor(y, CUDNN_TENSOR_NCHW, dt, to_int(g.N), to_int(g.K),
                                                 to_int(g.P), to_int(g.Q)));
    SMYRF_CUDNN_CHECK(cudnnSetTensor4dDescriptor(b, CUDNN_TENSOR_NCHW, dt, 1, to_int(g.K), 1, 1));
    SMYRF_CUDNN_CHECK(cudnnSetFilter4dDescriptor(w, dt, CUDNN_TENSOR_NCHW, to_int(g.K),
                                                 to_int(g.C / g.groups), to_int(g.R), to_int(g.S)));
    SMYRF_CUDNN_CHECK(cudnnSetConvolution2dDescriptor(
        conv, to_int(g.pad_h), to_int(g.pad_w), to_int(g.stride_h), to_int(g.stride_w),
        to_int(g.dil_h), to_int(g.dil_w), CUDNN_CROSS_CORRELATION, dt));
    SMYRF_CUDNN_CHECK(cudnnSetConvolutionGroupCount(conv, to_int(g.groups)));
    // FP32 stays FP32 (no TF32 tensor-op math), so results agree with the CPU to float rounding
    SMYRF_CUDNN_CHECK(cudnnSetConvolutionMathType(conv, CUDNN_FMA_MATH));
  }
  ~Descriptors() {
    cudnnDestroyConvolutionDescriptor(conv);
    cudnnDestroyFilterDescriptor(w);
    cudnnDestroyTensorDescriptor(b);
    cudnnDestroyTensorDescriptor(y);
    cudnnDestroyTensorDescriptor(x);
  }
  Descriptors(const Descriptors&) = delete;
  Descriptors& operator=(const Descriptors&) = delete;
};

// The first heuristic result that succeeded, fits the workspace limit and (when asked) is
// deterministic.
template <typename Perf>
const Perf* pick(const Perf* perf, int count, const char* what) {
  for (int i = 0; i < count; ++i) {
    if (perf[i].status != CUDNN_STATUS_SUCCESS || perf[i].memory > kMaxWorkspace) continue;
    if (deterministic() && perf[i].determinism != CUDNN_DETERMINISTIC) continue;
    return &perf[i];
  }
  throw std::runtime_error(
      std::string("[conv2d] cuDNN offers no usable ") + what + " algorithm for this geometry" +
      (deterministic() ? " in deterministic mode (SMYRF_DETERMINISTIC=1)" : ""));
}

constexpr int kMaxAlgos = 16;

}  // namespace

template <typename T>
void conv2d_forward(const cpu::Conv2dGeometry& g, const T* x, const T* w, const T* bias, T* y) {
  if (g.N == 0 || g.K == 0 || g.P <= 0 || g.Q <= 0) return;
  Descriptors<T> d(g);
  cudnnHandle_t h = handle();
  cudnnConvolutionFwdAlgoPerf_t perf[kMaxAlgos];
  int count = 0;
  SMYRF_CUDNN_CHECK(
      cudnnGetConvolutionForwardAlgorithm_v7(h, d.x, d.w, d.conv, d.y, kMaxAlgos, &count, perf));
  const auto* best = pick(perf, count, "forward");
  Scratch ws(best->memory);
  const T one = 1, zero = 0;
  SMYRF_CUDNN_CHECK(cudnnConvolutionForward(h, &one, d.x, x, d.w, w, d.conv, best->algo, ws.p,
                                            best->memory, &zero, d.y, y));
  if (bias) SMYRF_CUDNN_CHECK(cudnnAddTensor(h, &one, d.b, bias, &one, d.y, y));
}

template <typename T>
void conv2d_backward_data(const cpu::Conv2dGeometry& g, const T* dy, const T* w, T* dx) {
  if (g.N == 0 || g.C == 0) return;
  Descriptors<T> d(g);
  cudnnHandle_t h = handle();
  cudnnConvolutionBwdDataAlgoPerf_t perf[kMaxAlgos];
  int count = 0;
  SMYRF_CUDNN_CHECK(cudnnGetConvolutionBackwardDataAlgorithm_v7(h, d.w, d.y, d.conv, d.x, kMaxAlgos,
                                                                &count, perf));
  const auto* best = pick(perf, count, "backward-data");
  Scratch ws(best->memory);
  const T one = 1, zero = 0;
  SMYRF_CUDNN_CHECK(cudnnConvolutionBackwardData(h, &one, d.w, w, d.y, dy, d.conv, best->algo, ws.p,
                                                 best->memory, &zero, d.x, dx));
}

template <typename T>
void conv2d_backward_filter(const cpu::Conv2dGeometry& g, const T* x, const T* dy, T* dw,
                            T* dbias) {
  Descriptors<T> d(g);
  cudnnHandle_t h = handle();
  const T one = 1, zero = 0;
  cudnnConvolutionBwdFilterAlgoPerf_t perf[kMaxAlgos];
  int count = 0;
  SMYRF_CUDNN_CHECK(cudnnGetConvolutionBackwardFilterAlgorithm_v7(h, d.x, d.y, d.conv, d.w,
                                                                  kMaxAlgos, &count, perf));
  const auto* best = pick(perf, count, "backward-filter");
  Scratch ws(best->memory);
  SMYRF_CUDNN_CHECK(cudnnConvolutionBackwardFilter(h, &one, d.x, x, d.y, dy, d.conv, best->algo,
                                                   ws.p, best->memory, &zero, d.w, dw));
  if (dbias) SMYRF_CUDNN_CHECK(cudnnConvolutionBackwardBias(h, &one, d.y, dy, &zero, d.b, dbias));
}

#define SMYRF_CONV_INSTANTIATE(T)                                                                \
  template void conv2d_forward<T>(const cpu::Conv2dGeometry&, const T*, const T*, const T*, T*); \
  template void conv2d_backward_data<T>(const cpu::Conv2dGeometry&, const T*, const T*, T*);     \
  template void conv2d_backward_filter<T>(const cpu::Conv2dGeometry&, const T*, const T*, T*, T*);
SMYRF_CONV_INSTANTIATE(float)
SMYRF_CONV_INSTANTIATE(double)
#undef SMYRF_CONV_INSTANTIATE

}  // namespace smyrf::kernels::cuda
