// N-API glue for reductions along one axis of [outer, r, inner].
#include "binding/napi_util.h"
#include "binding/register.h"

namespace kw::binding {
namespace {

Napi::Value SumAxis(const Napi::CallbackInfo& info) {
  auto x = arg_storage(info, 0, "x");
  Axis a = arg_axis(info, 1);
  check_tensor(x, {a.outer, a.r, a.inner}, DType::F32, "x");
  auto y = new_storage(DType::F32, a.outer * a.inner);
  backend_of(x).reduce->sum_axis(x->as<float>(), a.outer, a.r, a.inner, y->as<float>());
  return wrap(info.Env(), y);
}

Napi::Value MaxAxis(const Napi::CallbackInfo& info) {
  auto x = arg_storage(info, 0, "x");
  Axis a = arg_axis(info, 1);
  check_tensor(x, {a.outer, a.r, a.inner}, DType::F32, "x");
  KW_CHECK(a.r > 0, "max over an empty axis");
  auto y = new_storage(DType::F32, a.outer * a.inner);
  auto idx = new_storage(DType::I32, a.outer * a.inner);
  backend_of(x).reduce->max_axis(x->as<float>(), a.outer, a.r, a.inner, y->as<float>(), idx->as<int32_t>());
  auto out = Napi::Array::New(info.Env(), 2);
  out.Set(0u, wrap(info.Env(), y));
  out.Set(1u, wrap(info.Env(), idx));
  return out;
}

Napi::Value MaxAxisBackward(const Napi::CallbackInfo& info) {
  auto dy = arg_storage(info, 0, "dy");
  auto idx = arg_storage(info, 1, "indices");
  Axis a = arg_axis(info, 2);
  check_tensor(dy, {a.outer, a.inner}, DType::F32, "dy");
  check_tensor(idx, {a.outer, a.inner}, DType::I32, "indices");
  const int32_t* ip = idx->as<int32_t>();
  for (int64_t i = 0; i < idx->numel; i++) KW_CHECK(ip[i] >= 0 && ip[i] < a.r, "'indices' out of range");
  auto dx = new_storage(DType::F32, a.outer * a.r * a.inner);
  backend_of(dy).reduce->max_axis_backward(dy->as<float>(), ip, a.outer, a.r, a.inner, dx->as<float>());
  return wrap(info.Env(), dx);
}

Napi::Value ExpandAxis(const Napi::CallbackInfo& info) {
  auto y = arg_storage(info, 0, "y");
  Axis a = arg_axis(info, 1);
  check_tensor(y, {a.outer, a.inner}, DType::F32, "y");
  auto x = new_storage(DType::F32, a.outer * a.r * a.inner);
  backend_of(y).reduce->expand_axis(y->as<float>(), a.outer, a.r, a.inner, x->as<float>());
  return wrap(info.Env(), x);
}

}  // namespace

void RegisterReduce(Napi::Env env, Napi::Object exports) {
  export_fn<SumAxis>(env, exports, "sumAxis");
  export_fn<MaxAxis>(env, exports, "maxAxis");
  export_fn<MaxAxisBackward>(env, exports, "maxAxisBackward");
  export_fn<ExpandAxis>(env, exports, "expandAxis");
}

}  // namespace kw::binding
