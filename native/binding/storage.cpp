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
  return wrap(info.Env(), new_zeros(t, n, arg_device_or_cpu(info, 2)));
}

Napi::Value Full(const Napi::CallbackInfo& info) {
  int64_t n = arg_int(info, 0, "numel", 0, kMaxNumel);
  float v = float(arg_number(info, 1, "value"));
  auto s = new_storage(DType::F32, n, arg_device_or_cpu(info, 2));
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
  if (s->device == Device::CPU)
    std::memcpy(buf.Data(), s->data, s->bytes);
  else
    cuda_runtime().copy(buf.Data(), s->data, s->bytes, CopyKind::DeviceToHost);
  size_t n = size_t(s->numel);
  switch (s->dtype) {
    case DType::F32: return Napi::Float32Array::New(env, n, buf, 0);
    case DType::I32: return Napi::Int32Array::New(env, n, buf, 0);
    case DType::I64: return Napi::TypedArrayOf<int64_t>::New(env, n, buf, 0, napi_bigint64_array);
    case DType::U8: return Napi::Uint8Array::New(env, n, buf, 0);
  }
  return env.Undefined();
}

// toDevice(storage, device): a copy on the other device, or another reference when already there.
Napi::Value ToDevice(const Napi::CallbackInfo& info) {
  auto s = arg_storage(info, 0, "storage");
  Device d = arg_device_or_cpu(info, 1);
  if (d == s->device) return wrap(info.Env(), s);
  auto out = new_storage(s->dtype, s->numel, d);
  cuda_runtime().copy(out->data, s->data, s->bytes,
                      d == Device::CUDA ? CopyKind::HostToDevice : CopyKind::DeviceToHost);
  return wrap(info.Env(), out);
}

Napi::Value DeviceOf(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), device_name(arg_storage(info, 0, "storage")->device));
}

// cudaInfo(): whether the CUDA backend can be used, why not, and what it found (loads it).
Napi::Value CudaInfo(const Napi::CallbackInfo& info) {
  auto o = Napi::Object::New(info.Env());
  std::string why;
  bool ok = cuda_available(&why);
  o.Set("available", ok);
  o.Set("library", cuda_library_path());
  if (ok) {
    o.Set("describe", cuda_runtime().describe());
    MemoryStats m = cuda_runtime().memory_stats();
    o.Set("liveBytes", double(m.live_bytes));
    o.Set("peakBytes", double(m.peak_bytes));
    o.Set("cachedBytes", double(m.cached_bytes));
  } else {
    o.Set("reason", why);
  }
  return o;
}

Napi::Value Synchronize(const Napi::CallbackInfo& info) {
  cuda_runtime().synchronize();
  return info.Env().Undefined();
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
  o.Set("cuda", cuda_built());  // libkw_cuda.so was built beside this addon (a device may still be missing)
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
  export_fn<ToDevice>(env, exports, "toDevice");
  export_fn<DeviceOf>(env, exports, "deviceOf");
  export_fn<CudaInfo>(env, exports, "cudaInfo");
  export_fn<Synchronize>(env, exports, "cudaSynchronize");
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
