#include "binding/napi_util.h"

#include <cmath>

namespace kw::binding {
namespace {

// Marks our Externals so a foreign External passed as a tensor is refused, not dereferenced.
const napi_type_tag kStorageTag = {0x6b77737472676531ull, 0x9d3c1f0a5e7b2c44ull};

int64_t reported_bytes = 0;

// The device of the call in progress (JS thread only) and the argument that fixed it.
bool call_device_fixed = false;
std::string call_device_arg;  // main thread only: Node-API calls happen on the JS thread

void type_error(Napi::Env env, const std::string& msg) { throw Napi::TypeError::New(env, msg); }

void need(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (i >= info.Length() || info[i].IsUndefined())
    type_error(info.Env(), std::string("missing argument '") + name + "'");
}

}  // namespace

void report_memory(Napi::Env env) {
  int64_t live = memory_stats().live_bytes;
  if (live != reported_bytes) {
    Napi::MemoryManagement::AdjustExternalMemory(env, live - reported_bytes);
    reported_bytes = live;
  }
}

Napi::Value wrap(Napi::Env env, StoragePtr s) {
  auto ext = Napi::External<Handle>::New(env, new Handle{std::move(s)},
                                         // Finalizers may run inside GC: free only, report later.
                                         [](Napi::Env, Handle* h) { delete h; });
  ext.TypeTag(&kStorageTag);
  report_memory(env);
  return ext;
}

static Handle* handle_of(Napi::Env env, Napi::Value v, const char* name) {
  if (!v.IsExternal()) type_error(env, std::string("'") + name + "' must be a storage handle");
  auto ext = v.As<Napi::External<Handle>>();
  if (!ext.CheckTypeTag(&kStorageTag))
    type_error(env, std::string("'") + name + "' is not a kernelwarehouse storage handle");
  return ext.Data();
}

void release(Napi::Env env, Napi::Value v) {
  handle_of(env, v, "storage")->storage.reset();
  report_memory(env);
}

const char* device_name(Device d) { return d == Device::CPU ? "cpu" : "cuda"; }

Device arg_device_or_cpu(const Napi::CallbackInfo& info, size_t i) {
  if (i >= info.Length() || info[i].IsUndefined()) return Device::CPU;
  std::string d = arg_string(info, i, "device");
  if (d == "cpu") return Device::CPU;
  if (d == "cuda") return Device::CUDA;
  fail("'device' must be 'cpu' or 'cuda', got '", d, "'");
}

void begin_call() {
  call_device_fixed = false;
  set_current_device(Device::CPU);
}

StoragePtr arg_storage_any_device(const Napi::CallbackInfo& info, size_t i, const char* name) {
  need(info, i, name);
  Handle* h = handle_of(info.Env(), info[i], name);
  if (!h->storage) throw Napi::Error::New(info.Env(), std::string("'") + name + "' was disposed");
  return h->storage;
}

StoragePtr storage_of(Napi::Env env, Napi::Value v, const char* name) {
  Handle* h = handle_of(env, v, name);
  if (!h->storage) throw Napi::Error::New(env, std::string("'") + name + "' was disposed");
  return h->storage;
}

StoragePtr arg_storage(const Napi::CallbackInfo& info, size_t i, const char* name) {
  StoragePtr s = arg_storage_any_device(info, i, name);
  if (!call_device_fixed) {
    call_device_fixed = true;
    call_device_arg = name;
    set_current_device(s->device);
  } else if (s->device != current_device()) {
    fail("'", name, "' is on ", device_name(s->device), " but '", call_device_arg, "' is on ",
         device_name(current_device()), ": move both to the same device with .to()");
  }
  return s;
}

StoragePtr arg_storage_or_null(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (i >= info.Length() || info[i].IsNull() || info[i].IsUndefined()) return nullptr;
  return arg_storage(info, i, name);
}

Shape arg_shape(const Napi::CallbackInfo& info, size_t i, const char* name) {
  need(info, i, name);
  if (!info[i].IsArray()) type_error(info.Env(), std::string("'") + name + "' must be an array of integers");
  auto arr = info[i].As<Napi::Array>();
  Shape s(arr.Length());
  for (uint32_t k = 0; k < arr.Length(); k++) {
    Napi::Value v = arr[k];
    double d = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : -1;
    if (!v.IsNumber() || d < 0 || d != std::floor(d) || d > double(kMaxNumel))
      type_error(info.Env(), std::string("'") + name + "' must hold non-negative integers (entry " +
                                 std::to_string(k) + ")");
    s[k] = int64_t(d);
  }
  numel(s);  // rejects products that overflow
  return s;
}

int64_t arg_int(const Napi::CallbackInfo& info, size_t i, const char* name, int64_t lo, int64_t hi) {
  need(info, i, name);
  if (!info[i].IsNumber()) type_error(info.Env(), std::string("'") + name + "' must be an integer");
  double d = info[i].As<Napi::Number>().DoubleValue();
  if (d != std::floor(d) || d < double(lo) || d > double(hi))
    type_error(info.Env(), std::string("'") + name + "' must be an integer in [" + std::to_string(lo) +
                               ", " + std::to_string(hi) + "], got " + std::to_string(d));
  return int64_t(d);
}

double arg_number(const Napi::CallbackInfo& info, size_t i, const char* name) {
  need(info, i, name);
  if (!info[i].IsNumber()) type_error(info.Env(), std::string("'") + name + "' must be a number");
  return info[i].As<Napi::Number>().DoubleValue();
}

bool arg_bool(const Napi::CallbackInfo& info, size_t i, const char* name) {
  need(info, i, name);
  if (!info[i].IsBoolean()) type_error(info.Env(), std::string("'") + name + "' must be a boolean");
  return info[i].As<Napi::Boolean>().Value();
}

std::string arg_string(const Napi::CallbackInfo& info, size_t i, const char* name) {
  need(info, i, name);
  if (!info[i].IsString()) type_error(info.Env(), std::string("'") + name + "' must be a string");
  return info[i].As<Napi::String>().Utf8Value();
}

Axis arg_axis(const Napi::CallbackInfo& info, size_t i) {
  Axis a{arg_int(info, i, "outer", 0, kMaxNumel), arg_int(info, i + 1, "r", 0, kMaxNumel),
         arg_int(info, i + 2, "inner", 0, kMaxNumel)};
  numel({a.outer, a.r, a.inner});  // rejects products that overflow
  return a;
}

void check_tensor(const StoragePtr& s, const Shape& shape, DType t, const char* name) {
  KW_CHECK(s->dtype == t, "'", name, "' must be ", dtype_name(t), ", got ", dtype_name(s->dtype));
  KW_CHECK(s->numel == numel(shape), "'", name, "' holds ", s->numel, " elements but shape ",
           shape_str(shape), " needs ", numel(shape));
}

void check_float(const StoragePtr& s, const char* name) {
  KW_CHECK(s->dtype == DType::F32, "'", name, "' must be float32, got ", dtype_name(s->dtype));
}

const Backend& backend_of(const StoragePtr& s) { return backend_for(s->device); }

}  // namespace kw::binding
