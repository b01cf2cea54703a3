// N-API glue for strided copies. Every view is checked to stay inside its buffer first.
#include "binding/napi_util.h"
#include "binding/register.h"

namespace kw::binding {
namespace {

// Strides are element distances, not a shape: their product may exceed any tensor size
// (an 8-d permute), so each is range-checked on its own.
Shape arg_strides(const Napi::CallbackInfo& info, size_t i) {
  if (i >= info.Length() || !info[i].IsArray()) throw Napi::TypeError::New(info.Env(), "'strides' must be an array of integers");
  auto arr = info[i].As<Napi::Array>();
  Shape s(arr.Length());
  for (uint32_t k = 0; k < arr.Length(); k++) {
    Napi::Value e = arr[k];
    double d = e.IsNumber() ? e.As<Napi::Number>().DoubleValue() : -1;
    if (!(d >= 0 && d <= double(kMaxNumel) && d == double(int64_t(d))))
      throw Napi::TypeError::New(info.Env(), "'strides' must hold non-negative integers (entry " + std::to_string(k) + ")");
    s[k] = int64_t(d);
  }
  return s;
}

View arg_view(const Napi::CallbackInfo& info, size_t i, const StoragePtr& base, const char* name) {
  View v{arg_shape(info, i, "shape"), arg_strides(info, i + 1),
         arg_int(info, i + 2, "offset", 0, kMaxNumel)};
  KW_CHECK(v.shape.size() == v.strides.size(), "view of '", name, "': shape has ", v.shape.size(),
           " dimensions but strides has ", v.strides.size());
  if (numel(v.shape) == 0) return v;
  int64_t last = v.offset;
  for (size_t d = 0; d < v.shape.size(); d++) {
    const int64_t span = v.shape[d] - 1;
    KW_CHECK(span == 0 || v.strides[d] <= base->numel / span, "view of '", name, "' reaches past its ",
             base->numel, " elements along dimension ", d);
    last += span * v.strides[d];
  }
  KW_CHECK(last < base->numel, "view of '", name, "' reaches element ", last, " of ", base->numel);
  return v;
}

Napi::Value Gather(const Napi::CallbackInfo& info) {
  auto src = arg_storage(info, 0, "src");
  View v = arg_view(info, 1, src, "src");
  auto dst = new_storage(src->dtype, numel(v.shape));
  backend_of(src).layout->gather(src->dtype, src->data, v, dst->data);
  return wrap(info.Env(), dst);
}

// scatterAdd(dst, src, shape, strides, offset) and scatter(...): write into dst in place.
Napi::Value ScatterAdd(const Napi::CallbackInfo& info) {
  auto dst = arg_storage(info, 0, "dst");
  auto src = arg_storage(info, 1, "src");
  View v = arg_view(info, 2, dst, "dst");
  check_float(dst, "dst");
  check_tensor(src, v.shape, DType::F32, "src");
  backend_of(dst).layout->scatter_add(src->as<float>(), v, dst->as<float>());
  return info.Env().Undefined();
}

Napi::Value Scatter(const Napi::CallbackInfo& info) {
  auto dst = arg_storage(info, 0, "dst");
  auto src = arg_storage(info, 1, "src");
  View v = arg_view(info, 2, dst, "dst");
  check_tensor(src, v.shape, dst->dtype, "src");
  backend_of(dst).layout->scatter(dst->dtype, src->data, v, dst->data);
  return info.Env().Undefined();
}

Napi::Value Cast(const Napi::CallbackInfo& info) {
  auto src = arg_storage(info, 0, "src");
  DType to = dtype_from_name(arg_string(info, 1, "dtype"));
  auto dst = new_storage(to, src->numel);
  backend_of(src).layout->cast(src->dtype, src->data, to, dst->data, src->numel);
  return wrap(info.Env(), dst);
}

}  // namespace

void RegisterLayout(Napi::Env env, Napi::Object exports) {
  export_fn<Gather>(env, exports, "gather");
  export_fn<ScatterAdd>(env, exports, "scatterAdd");
  export_fn<Scatter>(env, exports, "scatter");
  export_fn<Cast>(env, exports, "cast");
}

}  // namespace kw::binding
