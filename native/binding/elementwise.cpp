// N-API glue for elementwise ops.
#include "binding/napi_util.h"
#include "binding/register.h"

namespace kw::binding {
namespace {

Napi::Value Binary(const Napi::CallbackInfo& info) {
  auto op = BinaryOp(arg_int(info, 0, "op", 0, kNumBinaryOps - 1));
  auto a = arg_storage(info, 1, "a");
  Shape as = arg_shape(info, 2, "aShape");
  auto b = arg_storage(info, 3, "b");
  Shape bs = arg_shape(info, 4, "bShape");
  check_tensor(a, as, DType::F32, "a");
  check_tensor(b, bs, DType::F32, "b");
  Shape os = broadcast_shapes(as, bs);
  auto out = new_storage(DType::F32, numel(os));
  backend_of(a).elementwise->binary(op, a->as<float>(), as, b->as<float>(), bs, out->as<float>(), os);
  return wrap(info.Env(), out);
}

Napi::Value Unary(const Napi::CallbackInfo& info) {
  auto op = UnaryOp(arg_int(info, 0, "op", 0, kNumUnaryOps - 1));
  auto x = arg_storage(info, 1, "x");
  check_float(x, "x");
  auto y = new_storage(DType::F32, x->numel);
  backend_of(x).elementwise->unary(op, x->as<float>(), y->as<float>(), x->numel);
  return wrap(info.Env(), y);
}

Napi::Value UnaryBackward(const Napi::CallbackInfo& info) {
  auto op = UnaryOp(arg_int(info, 0, "op", 0, kNumUnaryOps - 1));
  auto x = arg_storage_or_null(info, 1, "x");
  auto y = arg_storage_or_null(info, 2, "y");
  auto dy = arg_storage(info, 3, "dy");
  check_float(dy, "dy");
  for (auto* p : {&x, &y})
    if (*p) {
      check_float(*p, "saved tensor");
      KW_CHECK((*p)->numel == dy->numel, "unary backward: saved tensor has ", (*p)->numel,
               " elements, dy has ", dy->numel);
    }
  auto dx = new_storage(DType::F32, dy->numel);
  backend_of(dy).elementwise->unary_backward(op, x ? x->as<float>() : nullptr, y ? y->as<float>() : nullptr,
                                             dy->as<float>(), dx->as<float>(), dy->numel);
  return wrap(info.Env(), dx);
}

Napi::Value Affine(const Napi::CallbackInfo& info) {
  auto x = arg_storage(info, 0, "x");
  check_float(x, "x");
  float s = float(arg_number(info, 1, "scale")), t = float(arg_number(info, 2, "shift"));
  auto y = new_storage(DType::F32, x->numel);
  backend_of(x).elementwise->affine(x->as<float>(), y->as<float>(), x->numel, s, t);
  return wrap(info.Env(), y);
}

Napi::Value PowScalar(const Napi::CallbackInfo& info) {
  auto x = arg_storage(info, 0, "x");
  check_float(x, "x");
  float p = float(arg_number(info, 1, "exponent"));
  auto y = new_storage(DType::F32, x->numel);
  backend_of(x).elementwise->pow_scalar(x->as<float>(), y->as<float>(), x->numel, p);
  return wrap(info.Env(), y);
}

Napi::Value Clamp(const Napi::CallbackInfo& info) {
  auto x = arg_storage(info, 0, "x");
  check_float(x, "x");
  float lo = float(arg_number(info, 1, "min")), hi = float(arg_number(info, 2, "max"));
  auto y = new_storage(DType::F32, x->numel);
  backend_of(x).elementwise->clamp(x->as<float>(), y->as<float>(), x->numel, lo, hi);
  return wrap(info.Env(), y);
}

}  // namespace

void RegisterElementwise(Napi::Env env, Napi::Object exports) {
  export_fn<Binary>(env, exports, "binary");
  export_fn<Unary>(env, exports, "unary");
  export_fn<UnaryBackward>(env, exports, "unaryBackward");
  export_fn<Affine>(env, exports, "affine");
  export_fn<PowScalar>(env, exports, "powScalar");
  export_fn<Clamp>(env, exports, "clamp");
}

}  // namespace kw::binding
