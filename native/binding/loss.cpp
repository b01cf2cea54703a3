// N-API glue for softmax along an axis of [outer, r, inner] and the classification losses.
// Hard targets arrive as int32 or int64 class indices and are checked against [0, C) here.
#include <cmath>
#include <string>
#include <vector>

#include "binding/napi_util.h"
#include "binding/register.h"

namespace kw::binding {
namespace {

// A validated class target; owns the int64 copy of hard indices.
struct Target {
  std::vector<int64_t> index;
  StoragePtr index_device;  // the validated int64 indices uploaded for a CUDA kernel
  StoragePtr probs;
  ClassTarget view;
};

Target arg_target(const Napi::CallbackInfo& info, size_t i, int64_t n, int64_t c, int64_t ignore_index, bool allow_soft) {
  Target t;
  auto s = arg_storage(info, i, "target");
  if (s->dtype == DType::F32) {
    KW_CHECK(allow_soft, "'target' must hold class indices (int32 or int64), got float32");
    check_tensor(s, {n, c}, DType::F32, "target");
    t.probs = s;
    t.view.probs = s->as<float>();
    return t;
  }
  KW_CHECK(s->dtype == DType::I32 || s->dtype == DType::I64, "'target' must be int32 or int64 class indices",
           allow_soft ? " or float32 probabilities" : "", ", got ", dtype_name(s->dtype));
  check_tensor(s, {n}, s->dtype, "target");
  t.index.resize(size_t(n));
  // Labels are checked on the host before any kernel reads them; a CUDA target is copied down.
  std::vector<int64_t> host64;
  std::vector<int32_t> host32;
  const void* host = s->data;
  if (s->device == Device::CUDA) {
    if (s->dtype == DType::I32) host32.resize(size_t(n)), host = host32.data();
    else host64.resize(size_t(n)), host = host64.data();
    cuda_runtime().copy(const_cast<void*>(host), s->data, s->bytes, CopyKind::DeviceToHost);
  }
  for (int64_t r = 0; r < n; r++) {
    int64_t v = s->dtype == DType::I32 ? static_cast<const int32_t*>(host)[r] : static_cast<const int64_t*>(host)[r];
    KW_CHECK(v == ignore_index || (v >= 0 && v < c), "'target' holds class ", v, " at row ", r, ", outside [0, ", c,
             ")");
    t.index[size_t(r)] = v;
  }
  t.view.index = t.index.data();
  if (s->device == Device::CUDA) {
    t.index_device = new_storage(DType::I64, n, Device::CUDA);
    cuda_runtime().copy(t.index_device->data, t.index.data(), t.index_device->bytes, CopyKind::HostToDevice);
    t.view.index = t.index_device->as<int64_t>();
  }
  t.view.ignore_index = ignore_index;
  return t;
}

Reduction arg_reduction(const Napi::CallbackInfo& info, size_t i) { return Reduction(arg_int(info, i, "reduction", 0, 2)); }

int64_t arg_ignore(const Napi::CallbackInfo& info, size_t i) {
  return arg_int(info, i, "ignoreIndex", -(int64_t(1) << 53), int64_t(1) << 53);
}

// softmax(x, outer, r, inner, log) -> y
Napi::Value Softmax(const Napi::CallbackInfo& info) {
  auto x = arg_storage(info, 0, "x");
  Axis a = arg_axis(info, 1);
  bool log = arg_bool(info, 4, "log");
  check_tensor(x, {a.outer, a.r, a.inner}, DType::F32, "x");
  auto y = new_storage(DType::F32, x->numel);
  backend_of(x).loss->softmax(x->as<float>(), a.outer, a.r, a.inner, log, y->as<float>());
  return wrap(info.Env(), y);
}

// softmaxBackward(y, dy, outer, r, inner, log) -> dx
Napi::Value SoftmaxBackward(const Napi::CallbackInfo& info) {
  auto y = arg_storage(info, 0, "y");
  auto dy = arg_storage(info, 1, "dy");
  Axis a = arg_axis(info, 2);
  bool log = arg_bool(info, 5, "log");
  check_tensor(y, {a.outer, a.r, a.inner}, DType::F32, "y");
  check_tensor(dy, {a.outer, a.r, a.inner}, DType::F32, "dy");
  auto dx = new_storage(DType::F32, y->numel);
  backend_of(y).loss->softmax_backward(y->as<float>(), dy->as<float>(), a.outer, a.r, a.inner, log, dx->as<float>());
  return wrap(info.Env(), dx);
}

void check_logits(const StoragePtr& x, int64_t n, int64_t c, const char* name) {
  KW_CHECK(c > 0, "'", name, "' needs at least one class");
  check_tensor(x, {n, c}, DType::F32, name);
}

// crossEntropy(logits, n, c, target, smoothing, reduction, ignoreIndex) -> [loss, lse]
Napi::Value CrossEntropy(const Napi::CallbackInfo& info) {
  auto x = arg_storage(info, 0, "logits");
  int64_t n = arg_int(info, 1, "n", 0, kMaxNumel), c = arg_int(info, 2, "c", 0, kMaxNumel);
  numel({n, c});
  check_logits(x, n, c, "logits");
  double smoothing = arg_number(info, 4, "labelSmoothing");
  KW_CHECK(smoothing >= 0 && smoothing <= 1, "'labelSmoothing' must be in [0, 1], got ", smoothing);
  Reduction red = arg_reduction(info, 5);
  Target t = arg_target(info, 3, n, c, arg_ignore(info, 6), true);
  auto loss = new_storage(DType::F32, red == Reduction::None ? n : 1);
  auto lse = new_storage(DType::F32, n);
  backend_of(x).loss->cross_entropy(x->as<float>(), n, c, t.view, float(smoothing), red, loss->as<float>(),
                                    lse->as<float>());
  auto out = Napi::Array::New(info.Env(), 2);
  out.Set(0u, wrap(info.Env(), loss));
  out.Set(1u, wrap(info.Env(), lse));
  return out;
}

// crossEntropyBackward(logits, lse, n, c, target, smoothing, reduction, ignoreIndex, dy) -> dlogits
Napi::Value CrossEntropyBackward(const Napi::CallbackInfo& info) {
  auto x = arg_storage(info, 0, "logits");
  auto lse = arg_storage(info, 1, "lse");
  int64_t n = arg_int(info, 2, "n", 0, kMaxNumel), c = arg_int(info, 3, "c", 0, kMaxNumel);
  numel({n, c});
  check_logits(x, n, c, "logits");
  check_tensor(lse, {n}, DType::F32, "lse");
  double smoothing = arg_number(info, 5, "labelSmoothing");
  KW_CHECK(smoothing >= 0 && smoothing <= 1, "'labelSmoothing' must be in [0, 1], got ", smoothing);
  Reduction red = arg_reduction(info, 6);
  Target t = arg_target(info, 4, n, c, arg_ignore(info, 7), true);
  auto dy = arg_storage(info, 8, "dy");
  check_tensor(dy, {red == Reduction::None ? n : 1}, DType::F32, "dy");
  auto dx = new_storage(DType::F32, n * c);
  backend_of(x).loss->cross_entropy_backward(x->as<float>(), lse->as<float>(), n, c, t.view, float(smoothing), red,
                                             dy->as<float>(), dx->as<float>());
  return wrap(info.Env(), dx);
}

// nllLoss(logp, n, c, target, reduction, ignoreIndex) -> loss
Napi::Value NllLoss(const Napi::CallbackInfo& info) {
  auto x = arg_storage(info, 0, "logp");
  int64_t n = arg_int(info, 1, "n", 0, kMaxNumel), c = arg_int(info, 2, "c", 0, kMaxNumel);
  numel({n, c});
  check_logits(x, n, c, "logp");
  Reduction red = arg_reduction(info, 4);
  Target t = arg_target(info, 3, n, c, arg_ignore(info, 5), false);
  auto loss = new_storage(DType::F32, red == Reduction::None ? n : 1);
  backend_of(x).loss->nll_loss(x->as<float>(), n, c, t.view, red, loss->as<float>());
  return wrap(info.Env(), loss);
}

// nllLossBackward(n, c, target, reduction, ignoreIndex, dy) -> dlogp
Napi::Value NllLossBackward(const Napi::CallbackInfo& info) {
  int64_t n = arg_int(info, 0, "n", 0, kMaxNumel), c = arg_int(info, 1, "c", 1, kMaxNumel);
  numel({n, c});
  Reduction red = arg_reduction(info, 3);
  Target t = arg_target(info, 2, n, c, arg_ignore(info, 4), false);
  auto dy = arg_storage(info, 5, "dy");
  check_tensor(dy, {red == Reduction::None ? n : 1}, DType::F32, "dy");
  auto dx = new_storage(DType::F32, n * c);
  backend_of(dy).loss->nll_loss_backward(n, c, t.view, red, dy->as<float>(), dx->as<float>());
  return wrap(info.Env(), dx);
}

}  // namespace

void RegisterLoss(Napi::Env env, Napi::Object exports) {
  export_fn<Softmax>(env, exports, "softmax");
  export_fn<SoftmaxBackward>(env, exports, "softmaxBackward");
  export_fn<CrossEntropy>(env, exports, "crossEntropy");
  export_fn<CrossEntropyBackward>(env, exports, "crossEntropyBackward");
  export_fn<NllLoss>(env, exports, "nllLoss");
  export_fn<NllLossBackward>(env, exports, "nllLossBackward");
}

}  // namespace kw::binding
