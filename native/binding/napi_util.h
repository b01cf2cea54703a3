// N-API glue shared by every binding file: argument checks and conversions, storage handles,
// and the guard that turns C++ exceptions into JS Errors. No math here.
#pragma once
#include <napi.h>

#include <string>

#include "core/backend.h"

namespace kw::binding {

// A JS storage handle: an External holding one reference to a Storage. release() drops the
// reference early; the External's finalizer drops it if JS forgets (the GC backstop).
struct Handle {
  StoragePtr storage;
};

Napi::Value wrap(Napi::Env env, StoragePtr s);
void release(Napi::Env env, Napi::Value v);
void report_memory(Napi::Env env);  // tells V8 how much native memory we hold

// Every tensor argument of one call must be on one device; the first one read decides it, and
// it becomes the device outputs are allocated on (current_device). guarded() starts each call.
void begin_call();
// A storage argument exempt from that rule (cross-device copies).
StoragePtr arg_storage_any_device(const Napi::CallbackInfo& info, size_t i, const char* name);
const char* device_name(Device d);
// An optional 'cpu' | 'cuda' argument for functions that create storage; CPU when absent.
Device arg_device_or_cpu(const Napi::CallbackInfo& info, size_t i);

// Argument readers: each throws a TypeError naming the argument when it does not fit.
StoragePtr arg_storage(const Napi::CallbackInfo& info, size_t i, const char* name);
// The storage behind one value (an element of an array argument); same checks as arg_storage.
StoragePtr storage_of(Napi::Env env, Napi::Value v, const char* name);
StoragePtr arg_storage_or_null(const Napi::CallbackInfo& info, size_t i, const char* name);
Shape arg_shape(const Napi::CallbackInfo& info, size_t i, const char* name);
int64_t arg_int(const Napi::CallbackInfo& info, size_t i, const char* name, int64_t lo = INT64_MIN / 2,
                int64_t hi = INT64_MAX / 2);
double arg_number(const Napi::CallbackInfo& info, size_t i, const char* name);
bool arg_bool(const Napi::CallbackInfo& info, size_t i, const char* name);
std::string arg_string(const Napi::CallbackInfo& info, size_t i, const char* name);

// A tensor viewed as [outer, r, inner] for an op along its middle axis (reductions, softmax).
struct Axis {
  int64_t outer, r, inner;
};
Axis arg_axis(const Napi::CallbackInfo& info, size_t i);  // reads outer, r, inner at i, i+1, i+2

// Checks that a storage holds exactly numel(shape) elements of dtype t.
void check_tensor(const StoragePtr& s, const Shape& shape, DType t, const char* name);
void check_float(const StoragePtr& s, const char* name);
const Backend& backend_of(const StoragePtr& s);

template <Napi::Value (*F)(const Napi::CallbackInfo&)>
Napi::Value guarded(const Napi::CallbackInfo& info) {
  try {
    begin_call();
    return F(info);
  } catch (const Napi::Error&) {
    throw;
  } catch (const std::bad_alloc&) {
    throw Napi::Error::New(info.Env(), "out of memory");
  } catch (const std::exception& e) {
    throw Napi::Error::New(info.Env(), e.what());
  }
}

template <Napi::Value (*F)(const Napi::CallbackInfo&)>
void export_fn(Napi::Env env, Napi::Object exports, const char* name) {
  exports.Set(name, Napi::Function::New(env, guarded<F>, name));
}

}  // namespace kw::binding
