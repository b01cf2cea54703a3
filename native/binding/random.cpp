// N-API glue for counter-based random draws: (seed, offset) come from the TS Generator.
#include "binding/napi_util.h"
#include "binding/register.h"

namespace kw::binding {
namespace {

constexpr int64_t kMaxSafe = (int64_t(1) << 53) - 1;

Napi::Value Uniform(const Napi::CallbackInfo& info) {
  int64_t n = arg_int(info, 0, "numel", 0, kMaxNumel);
  uint64_t seed = uint64_t(arg_int(info, 1, "seed", 0, kMaxSafe)), off = uint64_t(arg_int(info, 2, "offset", 0, kMaxSafe));
  float lo = float(arg_number(info, 3, "low")), hi = float(arg_number(info, 4, "high"));
  auto y = new_storage(DType::F32, n, arg_device_or_cpu(info, 5));
  backend_of(y).random->uniform(y->as<float>(), n, seed, off, lo, hi);
  return wrap(info.Env(), y);
}

Napi::Value Normal(const Napi::CallbackInfo& info) {
  int64_t n = arg_int(info, 0, "numel", 0, kMaxNumel);
  uint64_t seed = uint64_t(arg_int(info, 1, "seed", 0, kMaxSafe)), off = uint64_t(arg_int(info, 2, "offset", 0, kMaxSafe));
  float mean = float(arg_number(info, 3, "mean")), std = float(arg_number(info, 4, "std"));
  auto y = new_storage(DType::F32, n, arg_device_or_cpu(info, 5));
  backend_of(y).random->normal(y->as<float>(), n, seed, off, mean, std);
  return wrap(info.Env(), y);
}

Napi::Value Bernoulli(const Napi::CallbackInfo& info) {
  int64_t n = arg_int(info, 0, "numel", 0, kMaxNumel);
  uint64_t seed = uint64_t(arg_int(info, 1, "seed", 0, kMaxSafe)), off = uint64_t(arg_int(info, 2, "offset", 0, kMaxSafe));
  float p = float(arg_number(info, 3, "p"));
  KW_CHECK(p >= 0.f && p <= 1.f, "'p' must be in [0, 1], got ", p);
  auto y = new_storage(DType::F32, n, arg_device_or_cpu(info, 4));
  backend_of(y).random->bernoulli(y->as<float>(), n, seed, off, p);
  return wrap(info.Env(), y);
}

}  // namespace

void RegisterRandom(Napi::Env env, Napi::Object exports) {
  export_fn<Uniform>(env, exports, "uniform");
  export_fn<Normal>(env, exports, "normal");
  export_fn<Bernoulli>(env, exports, "bernoulli");
}

}  // namespace kw::binding
