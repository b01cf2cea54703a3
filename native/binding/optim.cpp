// N-API glue for in-place updates. Every tensor written in place is checked to hold exactly
// as many float32 elements as the parameter.
#include <cstring>

#include "binding/napi_util.h"
#include "binding/register.h"

namespace kw::binding {
namespace {

StoragePtr same_size(const Napi::CallbackInfo& info, size_t i, const char* name, const StoragePtr& like) {
  auto s = arg_storage(info, i, name);
  check_float(s, name);
  KW_CHECK(s->numel == like->numel, "'", name, "' has ", s->numel, " elements, the parameter has ", like->numel);
  return s;
}

// sgdStep(param, grad, momentumBuf | null, lr, momentum, dampening, weightDecay, nesterov, firstStep)
Napi::Value SgdStep(const Napi::CallbackInfo& info) {
  auto p = arg_storage(info, 0, "param");
  check_float(p, "param");
  auto g = same_size(info, 1, "grad", p);
  StoragePtr buf = arg_storage_or_null(info, 2, "momentumBuffer");
  SgdConfig c{float(arg_number(info, 3, "lr")), float(arg_number(info, 4, "momentum")),
              float(arg_number(info, 5, "dampening")), float(arg_number(info, 6, "weightDecay")),
              arg_bool(info, 7, "nesterov"), arg_bool(info, 8, "firstStep")};
  KW_CHECK(c.momentum == 0.f || buf, "'momentumBuffer' is required when momentum is not 0");
  if (buf) same_size(info, 2, "momentumBuffer", p);
  backend_of(p).optim->sgd_step(p->as<float>(), g->as<float>(), buf ? buf->as<float>() : nullptr, p->numel, c);
  return info.Env().Undefined();
}

// adamStep(param, grad, expAvg, expAvgSq, step, lr, beta1, beta2, eps, weightDecay, decoupled)
Napi::Value AdamStep(const Napi::CallbackInfo& info) {
  auto p = arg_storage(info, 0, "param");
  check_float(p, "param");
  auto g = same_size(info, 1, "grad", p);
  auto m = same_size(info, 2, "expAvg", p);
  auto v = same_size(info, 3, "expAvgSq", p);
  AdamConfig c{0, 0, 0, 0, 0, false, 0};
  c.step = arg_int(info, 4, "step", 1, int64_t(1) << 52);
  c.lr = float(arg_number(info, 5, "lr"));
  c.beta1 = float(arg_number(info, 6, "beta1"));
  c.beta2 = float(arg_number(info, 7, "beta2"));
  c.eps = float(arg_number(info, 8, "eps"));
  c.weight_decay = float(arg_number(info, 9, "weightDecay"));
  c.decoupled = arg_bool(info, 10, "decoupled");
  KW_CHECK(c.beta1 >= 0.f && c.beta1 < 1.f && c.beta2 >= 0.f && c.beta2 < 1.f, "betas must be in [0, 1)");
  backend_of(p).optim->adam_step(p->as<float>(), g->as<float>(), m->as<float>(), v->as<float>(), p->numel, c);
  return info.Env().Undefined();
}

Napi::Value LerpInplace(const Napi::CallbackInfo& info) {
  auto dst = arg_storage(info, 0, "dst");
  check_float(dst, "dst");
  auto src = same_size(info, 1, "src", dst);
  backend_of(dst).optim->lerp_inplace(dst->as<float>(), src->as<float>(), dst->numel, float(arg_number(info, 2, "weight")));
  return info.Env().Undefined();
}

Napi::Value ScaleInplace(const Napi::CallbackInfo& info) {
  auto x = arg_storage(info, 0, "x");
  check_float(x, "x");
  backend_of(x).optim->scale_inplace(x->as<float>(), x->numel, float(arg_number(info, 1, "scale")));
  return info.Env().Undefined();
}

Napi::Value AddInplace(const Napi::CallbackInfo& info) {
  auto dst = arg_storage(info, 0, "dst");
  check_float(dst, "dst");
  auto src = same_size(info, 1, "src", dst);
  backend_of(dst).optim->add_inplace(dst->as<float>(), src->as<float>(), dst->numel, float(arg_number(info, 2, "alpha")));
  return info.Env().Undefined();
}

// copyInto(dst, src): same dtype and element count; used to load state dicts into parameters.
Napi::Value CopyInto(const Napi::CallbackInfo& info) {
  // Either side may be on either device: loading a CPU state dict into a CUDA model is a copy.
  auto dst = arg_storage_any_device(info, 0, "dst");
  auto src = arg_storage_any_device(info, 1, "src");
  KW_CHECK(dst->dtype == src->dtype, "'src' is ", dtype_name(src->dtype), " but 'dst' is ", dtype_name(dst->dtype));
  KW_CHECK(dst->numel == src->numel, "'src' has ", src->numel, " elements, 'dst' has ", dst->numel);
  if (dst == src) return info.Env().Undefined();
  if (dst->device == Device::CPU && src->device == Device::CPU)
    std::memcpy(dst->data, src->data, dst->bytes);
  else
    cuda_runtime().copy(dst->data, src->data, dst->bytes,
                        src->device == Device::CPU   ? CopyKind::HostToDevice
                        : dst->device == Device::CPU ? CopyKind::DeviceToHost
                                                     : CopyKind::DeviceToDevice);
  return info.Env().Undefined();
}

Napi::Value SumSquares(const Napi::CallbackInfo& info) {
  auto x = arg_storage(info, 0, "x");
  check_float(x, "x");
  return Napi::Number::New(info.Env(), backend_of(x).optim->sum_squares(x->as<float>(), x->numel));
}

}  // namespace

void RegisterOptim(Napi::Env env, Napi::Object exports) {
  export_fn<SgdStep>(env, exports, "sgdStep");
  export_fn<AdamStep>(env, exports, "adamStep");
  export_fn<LerpInplace>(env, exports, "lerpInplace");
  export_fn<ScaleInplace>(env, exports, "scaleInplace");
  export_fn<AddInplace>(env, exports, "addInplace");
  export_fn<CopyInto>(env, exports, "copyInto");
  export_fn<SumSquares>(env, exports, "sumSquares");
}

}  // namespace kw::binding
