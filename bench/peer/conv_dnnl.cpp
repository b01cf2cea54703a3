// Side-by-side timing of our CPU conv (native/cpu/conv.cpp) and oneDNN's on the ResNet-18
// layer shapes, both on 2 threads, forward and backward (data + weights), issue 9's evaluation.
// Build and run (needs libdnnl-dev and libopenblas-dev):
//   bash bench/peer/conv_dnnl.sh [32|224]
// oneDNN is timed twice: with NCHW tensors at the boundary (reorders included, as our NCHW
// tensors would need, and as PyTorch 1.13 does for strided tensors) and in its own blocked
// layouts (no reorders: its best case). Times are the minimum over repetitions (the machine is shared).
#include <omp.h>
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include <dnnl.hpp>

#include "core/thread_pool.h"
#include "cpu/tables.h"

using namespace dnnl;
using tag = memory::format_tag;
using dt = memory::data_type;

struct Layer { const char* name; int count; int64_t B, C, O, H, k, s, p; };

// KW_BENCH_CPU=1: process CPU seconds instead of wall seconds. The machine is shared, so wall
// time counts time spent descheduled; CPU time does not (run oneDNN with OMP_WAIT_POLICY=passive
// then, or its spin-waits count).
static double now() {
  static const bool cpu = getenv("KW_BENCH_CPU") != nullptr;
  if (cpu) {
    timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return double(ts.tv_sec) + 1e-9 * double(ts.tv_nsec);
  }
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

template <typename F>
double best_ms(int reps, F&& f) {
  double best = 1e30;
  for (int r = 0; r < reps; r++) {
    double t0 = now();
    f();
    best = std::min(best, (now() - t0) * 1e3);
  }
  return best;
}

int main(int argc, char** argv) {
  int S = argc > 1 ? atoi(argv[1]) : 32;
  int reps = argc > 2 ? atoi(argv[2]) : 5;
  omp_set_num_threads(2);
  kw::set_num_threads(2);
  std::vector<Layer> L;
  if (S == 32) {
    int64_t B = 64;
    L = {{"conv1 7x7/2 @32", 1, B, 3, 64, 32, 7, 2, 3},  {"l1 3x3 64@8", 4, B, 64, 64, 8, 3, 1, 1},
         {"l2 3x3/2 64>128@8", 1, B, 64, 128, 8, 3, 2, 1}, {"l2 3x3 128@4", 3, B, 128, 128, 4, 3, 1, 1},
         {"l2 ds 1x1/2", 1, B, 64, 128, 8, 1, 2, 0},      {"l3 3x3/2 128>256@4", 1, B, 128, 256, 4, 3, 2, 1},
         {"l3 3x3 256@2", 3, B, 256, 256, 2, 3, 1, 1},    {"l3 ds 1x1/2", 1, B, 128, 256, 4, 1, 2, 0},
         {"l4 3x3/2 256>512@2", 1, B, 256, 512, 2, 3, 2, 1}, {"l4 3x3 512@1", 3, B, 512, 512, 1, 3, 1, 1},
         {"l4 ds 1x1/2", 1, B, 256, 512, 2, 1, 2, 0}};
  } else {
    int64_t B = 16;
    L = {{"conv1 7x7/2 @224", 1, B, 3, 64, 224, 7, 2, 3},  {"l1 3x3 64@56", 4, B, 64, 64, 56, 3, 1, 1},
         {"l2 3x3/2 64>128@56", 1, B, 64, 128, 56, 3, 2, 1}, {"l2 3x3 128@28", 3, B, 128, 128, 28, 3, 1, 1},
         {"l2 ds 1x1/2", 1, B, 64, 128, 56, 1, 2, 0},       {"l3 3x3/2 128>256@28", 1, B, 128, 256, 28, 3, 2, 1},
         {"l3 3x3 256@14", 3, B, 256, 256, 14, 3, 1, 1},    {"l3 ds 1x1/2", 1, B, 128, 256, 28, 1, 2, 0},
         {"l4 3x3/2 256>512@14", 1, B, 256, 512, 14, 3, 2, 1}, {"l4 3x3 512@7", 3, B, 512, 512, 7, 3, 1, 1},
         {"l4 ds 1x1/2", 1, B, 256, 512, 14, 1, 2, 0}};
  }
  engine eng(engine::kind::cpu, 0);
  stream strm(eng);
  double tot[6] = {0, 0, 0, 0, 0, 0};
  printf("%-22s %9s %9s | %9s %9s | %9s %9s   (ms, min of %d; fwd / bwd = data+weights)\n", "layer", "ours f",
         "ours b", "dnnl f", "dnnl b", "blk f", "blk b", reps);
  for (const Layer& l : L) {
    const int64_t OH = (l.H + 2 * l.p - l.k) / l.s + 1;
    kw::ConvGeometry g;
    g.batch = l.B; g.in_channels = l.C; g.out_channels = l.O; g.groups = 1;
    for (int d = 1; d < 3; d++) {
      g.in[d] = l.H; g.out[d] = OH; g.kernel[d] = l.k; g.stride[d] = l.s; g.pad_lo[d] = l.p; g.pad_hi[d] = l.p;
    }
    std::vector<float> x(size_t(l.B * l.C * l.H * l.H)), w(size_t(l.O * l.C * l.k * l.k)), y(size_t(l.B * l.O * OH * OH));
    std::vector<float> dx(x.size()), dw(w.size()), dy(y.size());
    for (auto& v : x) v = float(rand()) / RAND_MAX - 0.5f;
    for (auto& v : w) v = float(rand()) / RAND_MAX - 0.5f;
    for (auto& v : dy) v = float(rand()) / RAND_MAX - 0.5f;

    memory::dims xd = {l.B, l.C, l.H, l.H}, wd = {l.O, l.C, l.k, l.k}, yd = {l.B, l.O, OH, OH};
    memory::dims st = {l.s, l.s}, pad = {l.p, l.p};
    auto any = [](memory::dims d) { return memory::desc(d, dt::f32, tag::any); };
    convolution_forward::primitive_desc fpd(
        convolution_forward::desc(prop_kind::forward_training, algorithm::convolution_direct, any(xd), any(wd),
                                  any(yd), st, pad, pad), eng);
    convolution_backward_data::primitive_desc dpd(
        convolution_backward_data::desc(algorithm::convolution_direct, any(xd), any(wd), any(yd), st, pad, pad), eng, fpd);
    convolution_backward_weights::primitive_desc wpd(
        convolution_backward_weights::desc(algorithm::convolution_direct, any(xd), any(wd), any(yd), st, pad, pad), eng, fpd);
    memory ux({xd, dt::f32, tag::nchw}, eng, x.data()), uw({wd, dt::f32, tag::oihw}, eng, w.data());
    memory uy({yd, dt::f32, tag::nchw}, eng, y.data()), udx({xd, dt::f32, tag::nchw}, eng, dx.data());
    memory udw({wd, dt::f32, tag::oihw}, eng, dw.data()), udy({yd, dt::f32, tag::nchw}, eng, dy.data());
    memory bx(fpd.src_desc(), eng), bw(fpd.weights_desc(), eng), by(fpd.dst_desc(), eng);
    memory bdy(dpd.diff_dst_desc(), eng), bdx(dpd.diff_src_desc(), eng), bwd(dpd.weights_desc(), eng);
    memory wsrc(wpd.src_desc(), eng), wdy(wpd.diff_dst_desc(), eng), wdw(wpd.diff_weights_desc(), eng);
    convolution_forward fwd(fpd);
    convolution_backward_data bwdd(dpd);
    convolution_backward_weights bwdw(wpd);
    auto ro = [&](memory& a, memory& b) { if (a.get_desc() != b.get_desc()) reorder(a, b).execute(strm, a, b); };
    ro(ux, bx); ro(uw, bw); ro(udy, bdy); ro(uw, bwd); ro(ux, wsrc); ro(udy, wdy);
    auto dnnl_f = [&] {
      ro(ux, bx); ro(uw, bw);
      fwd.execute(strm, {{DNNL_ARG_SRC, bx}, {DNNL_ARG_WEIGHTS, bw}, {DNNL_ARG_DST, by}});
      ro(by, uy); strm.wait();
    };
    auto dnnl_b = [&] {
      ro(udy, bdy); ro(uw, bwd);
      bwdd.execute(strm, {{DNNL_ARG_DIFF_DST, bdy}, {DNNL_ARG_WEIGHTS, bwd}, {DNNL_ARG_DIFF_SRC, bdx}});
      ro(bdx, udx); ro(ux, wsrc); ro(udy, wdy);
      bwdw.execute(strm, {{DNNL_ARG_SRC, wsrc}, {DNNL_ARG_DIFF_DST, wdy}, {DNNL_ARG_DIFF_WEIGHTS, wdw}});
      ro(wdw, udw); strm.wait();
    };
    auto blk_f = [&] { fwd.execute(strm, {{DNNL_ARG_SRC, bx}, {DNNL_ARG_WEIGHTS, bw}, {DNNL_ARG_DST, by}}); strm.wait(); };
    auto blk_b = [&] {
      bwdd.execute(strm, {{DNNL_ARG_DIFF_DST, bdy}, {DNNL_ARG_WEIGHTS, bwd}, {DNNL_ARG_DIFF_SRC, bdx}});
      bwdw.execute(strm, {{DNNL_ARG_SRC, wsrc}, {DNNL_ARG_DIFF_DST, wdy}, {DNNL_ARG_DIFF_WEIGHTS, wdw}});
      strm.wait();
    };
    auto ours_f = [&] { kw::cpu::conv_kernels.forward(g, x.data(), w.data(), nullptr, y.data()); };
    auto ours_b = [&] { kw::cpu::conv_kernels.backward(g, dy.data(), x.data(), w.data(), dx.data(), dw.data(), nullptr); };
    double t[6] = {1e30, 1e30, 1e30, 1e30, 1e30, 1e30};
    if (getenv("KW_BENCH_OURS_ONLY")) t[2] = t[3] = t[4] = t[5] = 0;
    static const bool ours_only = getenv("KW_BENCH_OURS_ONLY") != nullptr;  // for perf record
    for (int r = 0; r < reps; r++) {  // interleaved, so load changes hit all alike
      if (ours_only) {
        t[0] = std::min(t[0], best_ms(1, ours_f)); t[1] = std::min(t[1], best_ms(1, ours_b));
        continue;
      }
      t[0] = std::min(t[0], best_ms(1, ours_f)); t[2] = std::min(t[2], best_ms(1, dnnl_f));
      t[4] = std::min(t[4], best_ms(1, blk_f));  t[1] = std::min(t[1], best_ms(1, ours_b));
      t[3] = std::min(t[3], best_ms(1, dnnl_b)); t[5] = std::min(t[5], best_ms(1, blk_b));
    }
    printf("%-22s %9.2f %9.2f | %9.2f %9.2f | %9.2f %9.2f  x%d\n", l.name, t[0], t[1], t[2], t[3], t[4], t[5], l.count);
    for (int i = 0; i < 6; i++) tot[i] += t[i] * l.count;
  }
  printf("%-22s %9.2f %9.2f | %9.2f %9.2f | %9.2f %9.2f\n", "network total", tot[0], tot[1], tot[2], tot[3], tot[4], tot[5]);
  printf("train (f+b): ours %.1f ms, oneDNN nchw %.1f ms, oneDNN blocked %.1f ms\n", tot[0] + tot[1], tot[2] + tot[3], tot[4] + tot[5]);
}
