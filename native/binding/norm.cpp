// N-API glue for batch norm and layer norm. Tensors arrive as [N, C, S] (batch norm) or
// [outer, C, inner] (layer norm) plus storages; outputs come back as arrays of new handles.
// batchNormForward writes the running statistics IN PLACE into the storages it is given.
#include <cmath>

#include "binding/napi_util.h"
#include "binding/register.h"

namespace kw::binding {
namespace {

struct Dims {
  int64_t a, c, b;  // [N, C, S] or [outer, C, inner]
};

Dims arg_dims(const Napi::CallbackInfo& info, size_t i, const char* na, const char* nb) {
  Dims d{arg_int(info, i, na, 0, kMaxNumel), arg_int(info, i + 1, "c", 0, kMaxNumel),
         arg_int(info, i + 2, nb, 0, kMaxNumel)};
  numel({d.a, d.c, d.b});
  return d;
}

// A [c] float tensor or null.
StoragePtr arg_channel_vector(const Napi::CallbackInfo& info, size_t i, const char* name, int64_t c) {
  auto s = arg_storage_or_null(info, i, name);
  if (s) check_tensor(s, {c}, DType::F32, name);
  return s;
}

float* ptr(const StoragePtr& s) { return s ? s->as<float>() : nullptr; }

Napi::Array triple(Napi::Env env, const StoragePtr& a, const StoragePtr& b, const StoragePtr& c) {
  auto out = Napi::Array::New(env, 3);
  out.Set(0u, a ? wrap(env, a) : env.Null());
  out.Set(1u, b ? wrap(env, b) : env.Null());
  out.Set(2u, c ? wrap(env, c) : env.Null());
  return out;
}

// batchNormForward(x, n, c, s, weight, bias, runningMean, runningVar, training, momentum, eps[, relu])
//   relu = true: relu(batch norm) in one pass, where the backend has it (batchNormHasRelu).
Napi::Value BatchNormForward(const Napi::CallbackInfo& info) {
  auto x = arg_storage(info, 0, "x");
  Dims d = arg_dims(info, 1, "n", "s");
  check_tensor(x, {d.a, d.c, d.b}, DType::F32, "x");
  auto weight = arg_channel_vector(info, 4, "weight", d.c);
  auto bias = arg_channel_vector(info, 5, "bias", d.c);
  auto rmean = arg_channel_vector(info, 6, "runningMean", d.c);
  auto rvar = arg_channel_vector(info, 7, "runningVar", d.c);
  bool training = arg_bool(info, 8, "training");
  double momentum = arg_number(info, 9, "momentum"), eps = arg_number(info, 10, "eps");
  KW_CHECK(std::isfinite(momentum), "'momentum' must be a finite number, got ", momentum);
  KW_CHECK(eps >= 0 && std::isfinite(eps), "'eps' must be a non-negative number, got ", eps);
  KW_CHECK(bool(rmean) == bool(rvar), "'runningMean' and 'runningVar' must be given together");
  KW_CHECK(training || rmean, "'runningMean' and 'runningVar' are required in eval mode (training = false)");
  KW_CHECK(!training || d.a * d.b > 1, "'x': expected more than 1 value per channel when training, got [", d.a,
           ", ", d.c, ", ", d.b, "] viewed as [N, C, S]");
  KW_CHECK(!rmean || (rmean != x && rvar != x && rmean != rvar),
           "'runningMean' and 'runningVar' must be separate storages from each other and from 'x'");
  const bool relu = info.Length() > 11 && arg_bool(info, 11, "relu");
  const NormKernels& k = *backend_of(x).norm;
  KW_CHECK(!relu || k.batch_norm_relu_forward, "batchNormForward: no fused relu on this device");
  auto y = new_storage(DType::F32, x->numel);
  auto mean = new_storage(DType::F32, d.c), invstd = new_storage(DType::F32, d.c);
  (relu ? k.batch_norm_relu_forward : k.batch_norm_forward)(x->as<float>(), d.a, d.c, d.b, ptr(weight), ptr(bias),
                                                            ptr(rmean), ptr(rvar), training, float(momentum),
                                                            float(eps), y->as<float>(), mean->as<float>(),
                                                            invstd->as<float>());
  return triple(info.Env(), y, mean, invstd);
}

// batchNormBackward(dy, x, n, c, s, weight, saveMean, saveInvstd, training, needX, needWeight, needBias[, bias,
//                   relu]): relu = true is the backward of the fused relu(batch norm), which needs the bias.
Napi::Value BatchNormBackward(const Napi::CallbackInfo& info) {
  auto dy = arg_storage(info, 0, "dy");
  auto x = arg_storage(info, 1, "x");
  Dims d = arg_dims(info, 2, "n", "s");
  check_tensor(dy, {d.a, d.c, d.b}, DType::F32, "dy");
  check_tensor(x, {d.a, d.c, d.b}, DType::F32, "x");
  auto weight = arg_channel_vector(info, 5, "weight", d.c);
  auto mean = arg_storage(info, 6, "saveMean");
  auto invstd = arg_storage(info, 7, "saveInvstd");
  check_tensor(mean, {d.c}, DType::F32, "saveMean");
  check_tensor(invstd, {d.c}, DType::F32, "saveInvstd");
  bool training = arg_bool(info, 8, "training");
  bool nx = arg_bool(info, 9, "needX"), nw = arg_bool(info, 10, "needWeight"), nb = arg_bool(info, 11, "needBias");
  StoragePtr dx = nx ? new_storage(DType::F32, x->numel) : nullptr;
  StoragePtr dw = nw ? new_storage(DType::F32, d.c) : nullptr;
  StoragePtr db = nb ? new_storage(DType::F32, d.c) : nullptr;
  const bool relu = info.Length() > 13 && arg_bool(info, 13, "relu");
  auto bias = relu ? arg_channel_vector(info, 12, "bias", d.c) : nullptr;
  const NormKernels& k = *backend_of(x).norm;
  if (relu) {
    KW_CHECK(k.batch_norm_relu_backward, "batchNormBackward: no fused relu on this device");
    k.batch_norm_relu_backward(dy->as<float>(), x->as<float>(), d.a, d.c, d.b, ptr(weight), ptr(bias),
                               mean->as<float>(), invstd->as<float>(), training, ptr(dx), ptr(dw), ptr(db));
  } else {
    k.batch_norm_backward(dy->as<float>(), x->as<float>(), d.a, d.c, d.b, ptr(weight), mean->as<float>(),
                          invstd->as<float>(), training, ptr(dx), ptr(dw), ptr(db));
  }
  return triple(info.Env(), dx, dw, db);
}

// layerNormForward(x, outer, c, inner, weight, bias, eps)
Napi::Value LayerNormForward(const Napi::CallbackInfo& info) {
  auto x = arg_storage(info, 0, "x");
  Dims d = arg_dims(info, 1, "outer", "inner");
  check_tensor(x, {d.a, d.c, d.b}, DType::F32, "x");
  KW_CHECK(d.c > 0, "'x': the normalised dimension is empty");
  auto weight = arg_channel_vector(info, 4, "weight", d.c);
  auto bias = arg_channel_vector(info, 5, "bias", d.c);
  double eps = arg_number(info, 6, "eps");
  KW_CHECK(eps >= 0 && std::isfinite(eps), "'eps' must be a non-negative number, got ", eps);
  auto y = new_storage(DType::F32, x->numel);
  auto mean = new_storage(DType::F32, d.a * d.b), invstd = new_storage(DType::F32, d.a * d.b);
  backend_of(x).norm->layer_norm_forward(x->as<float>(), d.a, d.c, d.b, ptr(weight), ptr(bias), float(eps),
                                         y->as<float>(), mean->as<float>(), invstd->as<float>());
  return triple(info.Env(), y, mean, invstd);
}

// layerNormBackward(dy, x, outer, c, inner, weight, saveMean, saveInvstd, needX, needWeight, needBias)
Napi::Value LayerNormBackward(const Napi::CallbackInfo& info) {
  auto dy = arg_storage(info, 0, "dy");
  auto x = arg_storage(info, 1, "x");
  Dims d = arg_dims(info, 2, "outer", "inner");
  check_tensor(dy, {d.a, d.c, d.b}, DType::F32, "dy");
  check_tensor(x, {d.a, d.c, d.b}, DType::F32, "x");
  auto weight = arg_channel_vector(info, 5, "weight", d.c);
  auto mean = arg_storage(info, 6, "saveMean");
  auto invstd = arg_storage(info, 7, "saveInvstd");
  check_tensor(mean, {d.a, d.b}, DType::F32, "saveMean");
  check_tensor(invstd, {d.a, d.b}, DType::F32, "saveInvstd");
  bool nx = arg_bool(info, 8, "needX"), nw = arg_bool(info, 9, "needWeight"), nb = arg_bool(info, 10, "needBias");
  StoragePtr dx = nx ? new_storage(DType::F32, x->numel) : nullptr;
  StoragePtr dw = nw ? new_storage(DType::F32, d.c) : nullptr;
  StoragePtr db = nb ? new_storage(DType::F32, d.c) : nullptr;
  backend_of(x).norm->layer_norm_backward(dy->as<float>(), x->as<float>(), d.a, d.c, d.b, ptr(weight),
                                          mean->as<float>(), invstd->as<float>(), ptr(dx), ptr(dw), ptr(db));
  return triple(info.Env(), dx, dw, db);
}

}  // namespace

void RegisterNorm(Napi::Env env, Napi::Object exports) {
  export_fn<BatchNormForward>(env, exports, "batchNormForward");
  export_fn<BatchNormBackward>(env, exports, "batchNormBackward");
  export_fn<LayerNormForward>(env, exports, "layerNormForward");
  export_fn<LayerNormBackward>(env, exports, "layerNormBackward");
}

}  // namespace kw::binding
