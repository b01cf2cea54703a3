// Storage handles: creation, copies in and out of JS typed arrays, sharing and release,
// memory statistics and thread settings.
#include <cstring>

#include "binding/napi_util.h"
#include "binding/register.h"
#include "core/thread_pool.h"

namespace kw::binding {
namespace {

Napi::Value Zeros(const Napi::CallbackInfo& info) {
  DType t = dtype_from_name(arg_string(info, 0, "dtype"));
  int64_t n = arg_int(info, 1, "numel", 0, kMaxNumel);
  return wrap(info.Env(), new_zeros(t, n));
}

Napi::Value Full(const Napi::CallbackInfo& info) {
  int64_t n = arg_int(info, 0, "numel", 0, kMaxNumel);
  float v = float(arg_number(info, 1, "value"));
  auto s = new_storage(DType::F32, n);
  backend_of(s).elementwise->fill(s->as<float>(), n, v);
  return wrap(info.Env(), s);
}

DType dtype_of_array(Napi::TypedArray a) {
  switch (a.TypedArrayType()) {
    case napi_float32_array: return DType::F32;
    case napi_int32_array: return DType::I32;
    case napi_bigint64_array: return DType::I64;
    case napi_uint8_array: return DType::U8;
    default: fail("'data' must be a Float32Array, Int32Array, BigInt64Array or Uint8Array");
  }
}

Napi::Value FromTypedArray(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsTypedArray())
    throw Napi::TypeError::New(info.Env(), "'data' must be a typed array");
  auto a = info[0].As<Napi::TypedArray>();
  DType t = dtype_of_array(a);
  int64_t n = int64_t(a.ElementLength());
  auto s = new_storage(t, n);
  std::memcpy(s->data, static_cast<uint8_t*>(a.ArrayBuffer().Data()) + a.ByteOffset(), s->bytes);
  return wrap(info.Env(), s);
}

Napi::Value ToTypedArray(const Napi::CallbackInfo& info) {
  auto s = arg_storage(info, 0, "storage");
  Napi::Env env = info.Env();
  auto buf = Napi::ArrayBuffer::New(env, s->bytes);
  std::memcpy(buf.Data(), s->data, s->bytes);
  size_t n = size_t(s->numel);
  switch (s->dtype) {
    case DType::F32: return Napi::Float32Array::New(env, n, buf, 0);
    case DType::I32: return Napi::Int32Array::New(env, n, buf, 0);
    case DType::I64: return Napi::TypedArrayOf<int64_t>::New(env, n, buf, 0, napi_bigint64_array);
    case DType::U8: return Napi::Uint8Array::New(env, n, buf, 0);
  }
  return env.Undefined();
}

Napi::Value Share(const Napi::CallbackInfo& info) { return wrap(info.Env(), arg_storage(info, 0, "storage")); }

Napi::Value Release(const Napi::CallbackInfo& info) {
  if (info.Length() < 1) throw Napi::TypeError::New(info.Env(), "missing argument 'storage'");
  release(info.Env(), info[0]);
  return info.Env().Undefined();
}

Napi::Value StorageInfo(const Napi::CallbackInfo& info) {
  auto s = arg_storage(info, 0, "storage");
  auto o = Napi::Object::New(info.Env());
  o.Set("dtype", dtype_name(s->dtype));
  o.Set("numel", double(s->numel));
  o.Set("bytes", double(s->bytes));
  o.Set("device", s->device == Device::CPU ? "cpu" : "cuda");
  o.Set("refs", double(s.use_count() - 1));  // minus the reference held by this call
  return o;
}

Napi::Value GetMemoryStats(const Napi::CallbackInfo& info) {
  kw::MemoryStats m = memory_stats();
  auto o = Napi::Object::New(info.Env());
  o.Set("liveBytes", double(m.live_bytes));
  o.Set("peakBytes", double(m.peak_bytes));
  o.Set("cachedBytes", double(m.cached_bytes));
  o.Set("liveBlocks", double(m.live_blocks));
  return o;
}

Napi::Value ResetPeakMemory(const Napi::CallbackInfo& info) {
  reset_peak_memory();
  return info.Env().Undefined();
}

Napi::Value EmptyCache(const Napi::CallbackInfo& info) {
  empty_cache();
  return info.Env().Undefined();
}

Napi::Value SetNumThreads(const Napi::CallbackInfo& info) {
  set_num_threads(int(arg_int(info, 0, "threads", 1, 1024)));
  return info.Env().Undefined();
}

Napi::Value NumThreads(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), num_threads()); }

Napi::Value BuildInfo(const Napi::CallbackInfo& info) {
  auto o = Napi::Object::New(info.Env());
  o.Set("version", KW_VERSION);
  o.Set("gemm", backend_for(Device::CPU).gemm->provider());
  o.Set("threads", num_threads());
  o.Set("napiVersion", NAPI_VERSION);
  o.Set("cuda", false);
#ifdef KW_SANITIZE_BUILD
  o.Set("sanitized", true);
#endif
  return o;
}

}  // namespace

void RegisterStorage(Napi::Env env, Napi::Object exports) {
  export_fn<Zeros>(env, exports, "zeros");
  export_fn<Full>(env, exports, "full");
  export_fn<FromTypedArray>(env, exports, "fromTypedArray");
  export_fn<ToTypedArray>(env, exports, "toTypedArray");
  export_fn<Share>(env, exports, "share");
  export_fn<Release>(env, exports, "release");
  export_fn<StorageInfo>(env, exports, "storageInfo");
  export_fn<GetMemoryStats>(env, exports, "memoryStats");
  export_fn<ResetPeakMemory>(env, exports, "resetPeakMemory");
  export_fn<EmptyCache>(env, exports, "emptyCache");
  export_fn<SetNumThreads>(env, exports, "setNumThreads");
  export_fn<NumThreads>(env, exports, "numThreads");
  export_fn<BuildInfo>(env, exports, "buildInfo");
}

}  // namespace kw::binding
