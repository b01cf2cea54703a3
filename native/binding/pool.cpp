// N-API glue for 2-D pooling on [planes, H, W]. Window parameters come as [h, w] pairs; the
// output size is recomputed here with PyTorch's formula and checked like PyTorch does.
#include <string>
#include <tuple>

#include "binding/napi_util.h"
#include "binding/register.h"

namespace kw::binding {
namespace {

std::pair<int64_t, int64_t> arg_pair(const Napi::CallbackInfo& info, size_t i, const char* name, int64_t lo) {
  Shape s = arg_shape(info, i, name);
  KW_CHECK(s.size() == 2, "'", name, "' must be a pair [h, w], got ", shape_str(s));
  KW_CHECK(s[0] >= lo && s[1] >= lo && s[0] <= INT32_MAX && s[1] <= INT32_MAX, "'", name, "' must hold integers >= ",
           lo, ", got ", shape_str(s));
  return {s[0], s[1]};
}

// Reads (planes, h, w) at i and the window (kernel, stride, padding[, dilation]) after it.
Pool2dGeometry arg_window(const Napi::CallbackInfo& info, size_t i, bool with_dilation, bool ceil_mode) {
  Pool2dGeometry g{};
  g.planes = arg_int(info, i, "planes", 0, kMaxNumel);
  g.h = arg_int(info, i + 1, "h", 1, INT32_MAX);
  g.w = arg_int(info, i + 2, "w", 1, INT32_MAX);
  KW_CHECK(g.h * g.w <= INT32_MAX, "'x': an input plane of ", g.h, "x", g.w, " is too large for pooling");
  numel({g.planes, g.h, g.w});
  std::tie(g.kh, g.kw) = arg_pair(info, i + 3, "kernel", 1);
  std::tie(g.sh, g.sw) = arg_pair(info, i + 4, "stride", 1);
  std::tie(g.ph, g.pw) = arg_pair(info, i + 5, "padding", 0);
  g.dh = g.dw = 1;
  if (with_dilation) std::tie(g.dh, g.dw) = arg_pair(info, i + 6, "dilation", 1);
  KW_CHECK(g.ph <= g.kh / 2 && g.pw <= g.kw / 2, "'padding' must be at most half of the kernel size, got padding [",
           g.ph, ", ", g.pw, "] for kernel [", g.kh, ", ", g.kw, "]");
  g.oh = pool_output_size(g.h, g.kh, g.sh, g.ph, g.dh, ceil_mode);
  g.ow = pool_output_size(g.w, g.kw, g.sw, g.pw, g.dw, ceil_mode);
  KW_CHECK(g.oh >= 1 && g.ow >= 1, "'x': input plane ", g.h, "x", g.w, " is too small for the window (output ", g.oh,
           "x", g.ow, ")");
  numel({g.planes, g.oh, g.ow});
  return g;
}

Pool2dGeometry arg_adaptive(const Napi::CallbackInfo& info, size_t i) {
  Pool2dGeometry g{};
  g.planes = arg_int(info, i, "planes", 0, kMaxNumel);
  g.h = arg_int(info, i + 1, "h", 1, INT32_MAX);
  g.w = arg_int(info, i + 2, "w", 1, INT32_MAX);
  g.oh = arg_int(info, i + 3, "outH", 1, INT32_MAX);
  g.ow = arg_int(info, i + 4, "outW", 1, INT32_MAX);
  numel({g.planes, g.h, g.w});
  numel({g.planes, g.oh, g.ow});
  return g;
}

// maxPool2d(x, planes, h, w, kernel, stride, padding, dilation, ceilMode) -> [y, indices]
Napi::Value MaxPool2d(const Napi::CallbackInfo& info) {
  auto x = arg_storage(info, 0, "x");
  bool ceil_mode = arg_bool(info, 8, "ceilMode");
  Pool2dGeometry g = arg_window(info, 1, true, ceil_mode);
  check_tensor(x, {g.planes, g.h, g.w}, DType::F32, "x");
  auto y = new_storage(DType::F32, g.planes * g.oh * g.ow);
  auto idx = new_storage(DType::I32, g.planes * g.oh * g.ow);
  backend_of(x).pool->max_pool2d(x->as<float>(), g, y->as<float>(), idx->as<int32_t>());
  auto out = Napi::Array::New(info.Env(), 2);
  out.Set(0u, wrap(info.Env(), y));
  out.Set(1u, wrap(info.Env(), idx));
  return out;
}

// maxPool2dBackward(dy, indices, planes, h, w, kernel, stride, padding, dilation, ceilMode) -> dx
Napi::Value MaxPool2dBackward(const Napi::CallbackInfo& info) {
  auto dy = arg_storage(info, 0, "dy");
  auto idx = arg_storage(info, 1, "indices");
  bool ceil_mode = arg_bool(info, 9, "ceilMode");
  Pool2dGeometry g = arg_window(info, 2, true, ceil_mode);
  check_tensor(dy, {g.planes, g.oh, g.ow}, DType::F32, "dy");
  check_tensor(idx, {g.planes, g.oh, g.ow}, DType::I32, "indices");
  const int32_t* ip = idx->as<int32_t>();
  for (int64_t k = 0; k < idx->numel; k++) KW_CHECK(ip[k] >= -1 && ip[k] < g.h * g.w, "'indices' out of range");
  auto dx = new_storage(DType::F32, g.planes * g.h * g.w);
  backend_of(dy).pool->max_pool2d_backward(dy->as<float>(), ip, g, dx->as<float>());
  return wrap(info.Env(), dx);
}

// avgPool2d(x, planes, h, w, kernel, stride, padding, ceilMode, countIncludePad) -> y
Napi::Value AvgPool2d(const Napi::CallbackInfo& info) {
  auto x = arg_storage(info, 0, "x");
  bool ceil_mode = arg_bool(info, 7, "ceilMode"), include_pad = arg_bool(info, 8, "countIncludePad");
  Pool2dGeometry g = arg_window(info, 1, false, ceil_mode);
  check_tensor(x, {g.planes, g.h, g.w}, DType::F32, "x");
  auto y = new_storage(DType::F32, g.planes * g.oh * g.ow);
  backend_of(x).pool->avg_pool2d(x->as<float>(), g, include_pad, y->as<float>());
  return wrap(info.Env(), y);
}

// avgPool2dBackward(dy, planes, h, w, kernel, stride, padding, ceilMode, countIncludePad) -> dx
Napi::Value AvgPool2dBackward(const Napi::CallbackInfo& info) {
  auto dy = arg_storage(info, 0, "dy");
  bool ceil_mode = arg_bool(info, 7, "ceilMode"), include_pad = arg_bool(info, 8, "countIncludePad");
  Pool2dGeometry g = arg_window(info, 1, false, ceil_mode);
  check_tensor(dy, {g.planes, g.oh, g.ow}, DType::F32, "dy");
  auto dx = new_storage(DType::F32, g.planes * g.h * g.w);
  backend_of(dy).pool->avg_pool2d_backward(dy->as<float>(), g, include_pad, dx->as<float>());
  return wrap(info.Env(), dx);
}

// adaptiveAvgPool2d(x, planes, h, w, outH, outW) -> y
Napi::Value AdaptiveAvgPool2d(const Napi::CallbackInfo& info) {
  auto x = arg_storage(info, 0, "x");
  Pool2dGeometry g = arg_adaptive(info, 1);
  check_tensor(x, {g.planes, g.h, g.w}, DType::F32, "x");
  auto y = new_storage(DType::F32, g.planes * g.oh * g.ow);
  backend_of(x).pool->adaptive_avg_pool2d(x->as<float>(), g, y->as<float>());
  return wrap(info.Env(), y);
}

// adaptiveAvgPool2dBackward(dy, planes, h, w, outH, outW) -> dx
Napi::Value AdaptiveAvgPool2dBackward(const Napi::CallbackInfo& info) {
  auto dy = arg_storage(info, 0, "dy");
  Pool2dGeometry g = arg_adaptive(info, 1);
  check_tensor(dy, {g.planes, g.oh, g.ow}, DType::F32, "dy");
  auto dx = new_storage(DType::F32, g.planes * g.h * g.w);
  backend_of(dy).pool->adaptive_avg_pool2d_backward(dy->as<float>(), g, dx->as<float>());
  return wrap(info.Env(), dx);
}

}  // namespace

void RegisterPool(Napi::Env env, Napi::Object exports) {
  export_fn<MaxPool2d>(env, exports, "maxPool2d");
  export_fn<MaxPool2dBackward>(env, exports, "maxPool2dBackward");
  export_fn<AvgPool2d>(env, exports, "avgPool2d");
  export_fn<AvgPool2dBackward>(env, exports, "avgPool2dBackward");
  export_fn<AdaptiveAvgPool2d>(env, exports, "adaptiveAvgPool2d");
  export_fn<AdaptiveAvgPool2dBackward>(env, exports, "adaptiveAvgPool2dBackward");
}

}  // namespace kw::binding
