// CUDA convolution (1-D/2-D/3-D as 3-D), forward and backward, shared or per-sample weights.
// Specification: native/cpu/conv.cpp. Two implementations:
// - cuDNN (when the build found it): a per-sample (KernelWarehouse) conv is ONE grouped
//   convolution with groups = batch × groups over the batch folded into channels, as upstream
//   does in PyTorch; a shared weight is an ordinary cuDNN convolution.
// - Own kernels otherwise: im2col over a chunk of samples into a column matrix, then batched
//   GEMMs Y[b,g] = W[b,g]·col[b,g] (the weight's batch stride is 0 when shared); backward
//   dcol = Wᵀ·dY with a gather-form col2im (no atomics) and dW = dY·colᵀ.
#include "cuda/common.cuh"
#include "cuda/tables.h"

#ifdef KW_HAVE_CUDNN
#include <cudnn.h>

#include <cstdlib>
#include <string>
#endif

namespace kw::cuda {
namespace {

struct Geo {  // ConvGeometry flattened for kernels (passed by value)
  int64_t C, O, G, Cg, Og, K;
  int64_t in[3], out[3], kernel[3], stride[3], pad[3], dil[3];
  int64_t S, L;
};

Geo geo_of(const ConvGeometry& g) {
  Geo q{};
  q.C = g.in_channels, q.O = g.out_channels, q.G = g.groups, q.Cg = g.in_per_group(), q.Og = g.out_per_group();
  q.K = g.kernel_size(), q.S = g.in_spatial(), q.L = g.out_spatial();
  for (int d = 0; d < 3; d++) {
    q.in[d] = g.in[d], q.out[d] = g.out[d], q.kernel[d] = g.kernel[d], q.stride[d] = g.stride[d];
    q.pad[d] = g.pad_lo[d], q.dil[d] = g.dilation[d];
  }
  return q;
}

bool is_direct(const ConvGeometry& g) {
  for (int d = 0; d < 3; d++)
    if (g.kernel[d] != 1 || g.stride[d] != 1 || g.pad_lo[d] != 0 || g.pad_hi[d] != 0) return false;
  return true;
}

// col[b][c·K + k][l] for samples [0, nb) of x (already offset): channel c, tap k, position l.
__global__ void im2col_kernel(Geo g, const float* x, int64_t nb, float* col) {
  int64_t rows = g.C * g.K;
  KW_FOR(t, nb * rows * g.L) {
    int64_t l = t % g.L, ck = (t / g.L) % rows, b = t / (g.L * rows);
    int64_t c = ck / g.K, k = ck % g.K;
    int64_t kd = k / (g.kernel[1] * g.kernel[2]), kh = (k / g.kernel[2]) % g.kernel[1], kx = k % g.kernel[2];
    int64_t od = l / (g.out[1] * g.out[2]), oh = (l / g.out[2]) % g.out[1], ow = l % g.out[2];
    int64_t id = od * g.stride[0] - g.pad[0] + kd * g.dil[0];
    int64_t ih = oh * g.stride[1] - g.pad[1] + kh * g.dil[1];
    int64_t iw = ow * g.stride[2] - g.pad[2] + kx * g.dil[2];
    bool in = id >= 0 && id < g.in[0] && ih >= 0 && ih < g.in[1] && iw >= 0 && iw < g.in[2];
    col[t] = in ? x[(b * g.C + c) * g.S + (id * g.in[1] + ih) * g.in[2] + iw] : 0.f;
  }
}

// The adjoint, as a gather: each input element sums the column entries that read it.
__global__ void col2im_kernel(Geo g, const float* col, int64_t nb, float* dx) {
  int64_t rows = g.C * g.K;
  KW_FOR(t, nb * g.C * g.S) {
    int64_t s = t % g.S, c = (t / g.S) % g.C, b = t / (g.S * g.C);
    int64_t id = s / (g.in[1] * g.in[2]), ih = (s / g.in[2]) % g.in[1], iw = s % g.in[2];
    float acc = 0.f;
    for (int64_t kd = 0; kd < g.kernel[0]; kd++) {
      int64_t nd = id + g.pad[0] - kd * g.dil[0];
      if (nd < 0 || nd % g.stride[0]) continue;
      int64_t od = nd / g.stride[0];
      if (od >= g.out[0]) continue;
      for (int64_t kh = 0; kh < g.kernel[1]; kh++) {
        int64_t nh = ih + g.pad[1] - kh * g.dil[1];
        if (nh < 0 || nh % g.stride[1]) continue;
        int64_t oh = nh / g.stride[1];
        if (oh >= g.out[1]) continue;
        for (int64_t kx = 0; kx < g.kernel[2]; kx++) {
          int64_t nw = iw + g.pad[2] - kx * g.dil[2];
          if (nw < 0 || nw % g.stride[2]) continue;
          int64_t ow = nw / g.stride[2];
          if (ow >= g.out[2]) continue;
          int64_t k = (kd * g.kernel[1] + kh) * g.kernel[2] + kx;
          acc += col[(b * rows + c * g.K + k) * g.L + (od * g.out[1] + oh) * g.out[2] + ow];
        }
      }
    }
    dx[t] = acc;
  }
}

__global__ void add_bias_kernel(float* y, const float* bias, int64_t n, int64_t O, int64_t L) {
  KW_FOR(t, n) y[t] += bias[(t / L) % O];
}

// db[o] = Σ over samples and positions of dy, one warp per channel, double accumulation.
__global__ void bias_grad_kernel(const float* dy, int64_t B, int64_t O, int64_t L, float* db) {
  int64_t warp = (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) >> 5;
  int lane = threadIdx.x & 31;
  if (warp >= O) return;
  double acc = 0;
  for (int64_t b = 0; b < B; b++)
    for (int64_t l = lane; l < L; l += 32) acc += dy[(b * O + warp) * L + l];
  for (int s = 16; s > 0; s >>= 1) acc += __shfl_down_sync(0xffffffffu, acc, s);
  if (lane == 0) db[warp] = float(acc);
}

// Samples per im2col chunk: keeps the column buffer near 256 MiB.
int64_t chunk_samples(const ConvGeometry& g) {
  int64_t per = g.in_channels * g.kernel_size() * g.out_spatial();
  return std::max<int64_t>(1, std::min<int64_t>(g.batch, (int64_t(64) << 20) / std::max<int64_t>(1, per)));
}

void forward_gemm(const ConvGeometry& g, const float* x, const float* w, const float* bias, float* y) {
  Geo q = geo_of(g);
  bool direct = is_direct(g);
  int64_t w_b = g.per_sample_weight ? g.weight_numel_per_sample() : 0, y_b = q.O * q.L, rows = q.C * q.K;
  int64_t nb = direct ? g.batch : chunk_samples(g);
  Scratch col(direct ? 0 : floats(nb * rows * q.L));
  for (int64_t b0 = 0; b0 < g.batch; b0 += nb) {
    int64_t n = std::min(nb, g.batch - b0);
    const float* cols = x + b0 * q.C * q.S;  // a 1×1 stride-1 conv reads the input as its columns
    if (!direct) {
      im2col_kernel<<<blocks_for(n * rows * q.L), kThreads, 0, stream()>>>(q, cols, n, col.as<float>());
      KW_LAUNCH_CHECK();
      cols = col.as<float>();
    }
    for (int64_t gi = 0; gi < q.G; gi++)
      gemm_batched(n, false, false, q.Og, q.L, q.Cg * q.K, 1.f, w + b0 * w_b + gi * q.Og * q.Cg * q.K, w_b,
                   cols + gi * q.Cg * q.K * q.L, rows * q.L, 0.f, y + b0 * y_b + gi * q.Og * q.L, y_b);
  }
  if (bias) {
    int64_t n = g.batch * y_b;
    add_bias_kernel<<<blocks_for(n), kThreads, 0, stream()>>>(y, bias, n, q.O, q.L);
    KW_LAUNCH_CHECK();
  }
}

void backward_gemm(const ConvGeometry& g, const float* dy, const float* x, const float* w, float* dx, float* dw,
                   float* db) {
  Geo q = geo_of(g);
  bool direct = is_direct(g);
  int64_t w_b = g.per_sample_weight ? g.weight_numel_per_sample() : 0, y_b = q.O * q.L, rows = q.C * q.K;
  int64_t wg = q.Og * q.Cg * q.K;  // one group's weight
  int64_t nb = direct ? g.batch : chunk_samples(g);
  Scratch col((direct || !dw) ? 0 : floats(nb * rows * q.L));
  Scratch dcol((direct || !dx) ? 0 : floats(nb * rows * q.L));
  for (int64_t b0 = 0; b0 < g.batch; b0 += nb) {
    int64_t n = std::min(nb, g.batch - b0);
    const float* dyc = dy + b0 * y_b;
    if (dx) {
      float* dc = direct ? dx + b0 * q.C * q.S : dcol.as<float>();
      for (int64_t gi = 0; gi < q.G; gi++)
        gemm_batched(n, true, false, q.Cg * q.K, q.L, q.Og, 1.f, w + b0 * w_b + gi * wg, w_b, dyc + gi * q.Og * q.L,
                     y_b, 0.f, dc + gi * q.Cg * q.K * q.L, rows * q.L);
      if (!direct) {
        col2im_kernel<<<blocks_for(n * q.C * q.S), kThreads, 0, stream()>>>(q, dcol.as<float>(), n,
                                                                           dx + b0 * q.C * q.S);
        KW_LAUNCH_CHECK();
      }
    }
    if (dw) {
      const float* cols = x + b0 * q.C * q.S;
      if (!direct) {
        im2col_kernel<<<blocks_for(n * rows * q.L), kThreads, 0, stream()>>>(q, cols, n, col.as<float>());
        KW_LAUNCH_CHECK();
        cols = col.as<float>();
      }
      for (int64_t gi = 0; gi < q.G; gi++) {
        if (g.per_sample_weight) {
          gemm_batched(n, false, true, q.Og, q.Cg * q.K, q.L, 1.f, dyc + gi * q.Og * q.L, y_b,
                       cols + gi * q.Cg * q.K * q.L, rows * q.L, 0.f, dw + b0 * w_b + gi * wg, w_b);
        } else {
          // A shared dW sums over samples: accumulate sample by sample (beta = 1 after the first).
          for (int64_t b = 0; b < n; b++)
            gemm_batched(1, false, true, q.Og, q.Cg * q.K, q.L, 1.f, dyc + b * y_b + gi * q.Og * q.L, 0,
                         cols + b * rows * q.L + gi * q.Cg * q.K * q.L, 0, b0 + b == 0 ? 0.f : 1.f, dw + gi * wg, 0);
        }
      }
    }
  }
  if (dw && !g.per_sample_weight && g.batch == 0) KW_CUDA_CHECK(cudaMemsetAsync(dw, 0, floats(q.G * wg), stream()));
  if (db) {
    bias_grad_kernel<<<blocks_for(q.O * 32), kThreads, 0, stream()>>>(dy, g.batch, q.O, q.L, db);
    KW_LAUNCH_CHECK();
  }
}

#ifdef KW_HAVE_CUDNN
#define KW_CUDNN_CHECK(expr)                                                                          \
  do {                                                                                                \
    cudnnStatus_t kw_s_ = (expr);                                                                     \
    if (kw_s_ != CUDNN_STATUS_SUCCESS) ::kw::fail("cuDNN error: ", cudnnGetErrorString(kw_s_), " (", #expr, ")"); \
  } while (0)

cudnnHandle_t cudnn() {
  static cudnnHandle_t h = [] {
    cudnnHandle_t x = nullptr;
    KW_CUDNN_CHECK(cudnnCreate(&x));
    KW_CUDNN_CHECK(cudnnSetStream(x, stream()));
    return x;
  }();
  return h;
}

// Descriptors for one call. cuDNN wants 4-D or 5-D NCHW; a per-sample weight folds the batch
// into channels: x [1, B·C, ...], w [B·O, C/groups, ...], groups B·groups, y [1, B·O, ...].
struct CudnnConv {
  cudnnTensorDescriptor_t x = nullptr, y = nullptr;
  cudnnFilterDescriptor_t w = nullptr;
  cudnnConvolutionDescriptor_t conv = nullptr;
  explicit CudnnConv(const ConvGeometry& g) {
    bool ps = g.per_sample_weight;
    int n = ps ? 1 : int(g.batch), fold = ps ? int(g.batch) : 1;
    int xd[5] = {n, int(g.in_channels) * fold, int(g.in[0]), int(g.in[1]), int(g.in[2])};
    int yd[5] = {n, int(g.out_channels) * fold, int(g.out[0]), int(g.out[1]), int(g.out[2])};
    int wd[5] = {int(g.out_channels) * fold, int(g.in_per_group()), int(g.kernel[0]), int(g.kernel[1]), int(g.kernel[2])};
    // 2-D convs (depth 1) use 4-D descriptors: cuDNN's 2-D algorithms are faster than its 3-D ones.
    int skip = g.in[0] == 1 && g.kernel[0] == 1 && g.out[0] == 1 ? 1 : 0, nd = 5 - skip;
    int xs[5], ys[5];
    auto strides = [nd](const int* dims, int* st) {
      st[nd - 1] = 1;
      for (int i = nd - 2; i >= 0; i--) st[i] = st[i + 1] * dims[i + 1];
    };
    // Drop the depth entry (index 2) of the NC(D)HW arrays when skipping it.
    auto squeeze = [skip](int* a) {
      if (skip) a[2] = a[3], a[3] = a[4];
    };
    squeeze(xd);
    squeeze(yd);
    squeeze(wd);
    strides(xd, xs);
    strides(yd, ys);
    int pad[3] = {int(g.pad_lo[skip]), int(g.pad_lo[skip + 1]), skip ? 0 : int(g.pad_lo[2])};
    int str[3] = {int(g.stride[skip]), int(g.stride[skip + 1]), skip ? 0 : int(g.stride[2])};
    int dil[3] = {int(g.dilation[skip]), int(g.dilation[skip + 1]), skip ? 0 : int(g.dilation[2])};
    KW_CUDNN_CHECK(cudnnCreateTensorDescriptor(&x));
    KW_CUDNN_CHECK(cudnnCreateTensorDescriptor(&y));
    KW_CUDNN_CHECK(cudnnCreateFilterDescriptor(&w));
    KW_CUDNN_CHECK(cudnnCreateConvolutionDescriptor(&conv));
    KW_CUDNN_CHECK(cudnnSetTensorNdDescriptor(x, CUDNN_DATA_FLOAT, nd, xd, xs));
    KW_CUDNN_CHECK(cudnnSetTensorNdDescriptor(y, CUDNN_DATA_FLOAT, nd, yd, ys));
    KW_CUDNN_CHECK(cudnnSetFilterNdDescriptor(w, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, nd, wd));
    KW_CUDNN_CHECK(cudnnSetConvolutionNdDescriptor(conv, nd - 2, pad, str, dil, CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
    KW_CUDNN_CHECK(cudnnSetConvolutionGroupCount(conv, int(g.groups) * fold));
    // FP32 results comparable with the CPU backend unless the user opts into TF32.
    const char* tf32 = std::getenv("KW_CUDA_TF32");
    KW_CUDNN_CHECK(cudnnSetConvolutionMathType(conv, tf32 && tf32[0] == '1' ? CUDNN_DEFAULT_MATH : CUDNN_FMA_MATH));
  }
  ~CudnnConv() {
    cudnnDestroyTensorDescriptor(x);
    cudnnDestroyTensorDescriptor(y);
    cudnnDestroyFilterDescriptor(w);
    cudnnDestroyConvolutionDescriptor(conv);
  }
};

// cuDNN handles at most int32 sizes; everything else goes to the own kernels.
bool cudnn_fits(const ConvGeometry& g) {
  int64_t fold = g.per_sample_weight ? g.batch : 1;
  return g.batch * std::max(g.in_channels, g.out_channels) * std::max(g.in_spatial(), g.out_spatial()) < (int64_t(1) << 31) &&
         g.out_channels * fold < (int64_t(1) << 31) && g.batch > 0 &&
         // cuDNN pads symmetrically; asymmetric ('same' with an even kernel) stays on our kernels.
         g.pad_lo[0] == g.pad_hi[0] && g.pad_lo[1] == g.pad_hi[1] && g.pad_lo[2] == g.pad_hi[2];
}

bool use_cudnn() {
  static bool on = [] {
    const char* v = std::getenv("KW_CUDA_CONV");  // "own" selects the implicit-GEMM kernels (benchmarks)
    return !(v && std::string(v) == "own");
  }();
  return on;
}

// The heuristics' best algorithm that reports success (entries may carry a failure status).
template <typename Perf, typename Algo>
Algo first_usable(const Perf* perf, int found, Algo fallback) {
  for (int i = 0; i < found; i++)
    if (perf[i].status == CUDNN_STATUS_SUCCESS) return perf[i].algo;
  return fallback;
}

void forward_cudnn(const ConvGeometry& g, const float* x, const float* w, const float* bias, float* y) {
  CudnnConv d(g);
  int found = 0;
  cudnnConvolutionFwdAlgoPerf_t perf[8];
  KW_CUDNN_CHECK(cudnnGetConvolutionForwardAlgorithm_v7(cudnn(), d.x, d.w, d.conv, d.y, 8, &found, perf));
  cudnnConvolutionFwdAlgo_t algo = first_usable(perf, found, CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM);
  size_t ws = 0;
  KW_CUDNN_CHECK(cudnnGetConvolutionForwardWorkspaceSize(cudnn(), d.x, d.w, d.conv, d.y, algo, &ws));
  Scratch work(ws);
  float one = 1.f, zero = 0.f;
  KW_CUDNN_CHECK(cudnnConvolutionForward(cudnn(), &one, d.x, x, d.w, w, d.conv, algo, work.ptr, ws, &zero, d.y, y));
  if (bias) {
    Geo q = geo_of(g);
    int64_t n = g.batch * q.O * q.L;
    add_bias_kernel<<<blocks_for(n), kThreads, 0, stream()>>>(y, bias, n, q.O, q.L);
    KW_LAUNCH_CHECK();
  }
}

void backward_cudnn(const ConvGeometry& g, const float* dy, const float* x, const float* w, float* dx, float* dw,
                    float* db) {
  CudnnConv d(g);
  float one = 1.f, zero = 0.f;
  if (dx) {
    int found = 0;
    cudnnConvolutionBwdDataAlgoPerf_t perf[8];
    KW_CUDNN_CHECK(cudnnGetConvolutionBackwardDataAlgorithm_v7(cudnn(), d.w, d.y, d.conv, d.x, 8, &found, perf));
    cudnnConvolutionBwdDataAlgo_t algo = first_usable(perf, found, CUDNN_CONVOLUTION_BWD_DATA_ALGO_1);
    size_t ws = 0;
    KW_CUDNN_CHECK(cudnnGetConvolutionBackwardDataWorkspaceSize(cudnn(), d.w, d.y, d.conv, d.x, algo, &ws));
    Scratch work(ws);
    KW_CUDNN_CHECK(cudnnConvolutionBackwardData(cudnn(), &one, d.w, w, d.y, dy, d.conv, algo, work.ptr, ws, &zero, d.x, dx));
  }
  if (dw) {
    int found = 0;
    cudnnConvolutionBwdFilterAlgoPerf_t perf[8];
    KW_CUDNN_CHECK(cudnnGetConvolutionBackwardFilterAlgorithm_v7(cudnn(), d.x, d.y, d.conv, d.w, 8, &found, perf));
    cudnnConvolutionBwdFilterAlgo_t algo = first_usable(perf, found, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1);
    size_t ws = 0;
    KW_CUDNN_CHECK(cudnnGetConvolutionBackwardFilterWorkspaceSize(cudnn(), d.x, d.y, d.conv, d.w, algo, &ws));
    Scratch work(ws);
    KW_CUDNN_CHECK(cudnnConvolutionBackwardFilter(cudnn(), &one, d.x, x, d.y, dy, d.conv, algo, work.ptr, ws, &zero, d.w, dw));
  }
  if (db) {
    Geo q = geo_of(g);
    bias_grad_kernel<<<blocks_for(q.O * 32), kThreads, 0, stream()>>>(dy, g.batch, q.O, q.L, db);
    KW_LAUNCH_CHECK();
  }
}
#endif

void forward(const ConvGeometry& g, const float* x, const float* w, const float* bias, float* y) {
  if (g.batch * g.out_channels * g.out_spatial() == 0) return;
#ifdef KW_HAVE_CUDNN
  if (use_cudnn() && cudnn_fits(g)) return forward_cudnn(g, x, w, bias, y);
#endif
  forward_gemm(g, x, w, bias, y);
}

void backward(const ConvGeometry& g, const float* dy, const float* x, const float* w, float* dx, float* dw, float* db) {
#ifdef KW_HAVE_CUDNN
  if (use_cudnn() && cudnn_fits(g)) return backward_cudnn(g, dy, x, w, dx, dw, db);
#endif
  backward_gemm(g, dy, x, w, dx, dw, db);
}

}  // namespace

const char* conv_provider() {
#ifdef KW_HAVE_CUDNN
  static std::string s = "cuDNN " + std::to_string(cudnnGetVersion()) + " (per-sample: grouped, groups = batch x groups)";
  return s.c_str();
#else
  return "own im2col + GEMM kernels (cuDNN not found at build time)";
#endif
}

const ConvKernels conv_kernels = {forward, backward};

}  // namespace kw::cuda
