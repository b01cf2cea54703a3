// N-API glue for convolutions: reads and validates the geometry, then dispatches.
// A weight with one more dimension than the input is per-sample: [B, out, in/groups, k...].
#include <cmath>

#include "binding/napi_util.h"
#include "binding/register.h"

namespace kw::binding {
namespace {

struct ConvArgs {
  ConvGeometry g;
  Shape x_shape, w_shape, y_shape;
};

// Everything is checked here, before any kernel touches memory.
ConvArgs conv_args(const Shape& xs, const Shape& ws, const Shape& stride, const Shape& padding,
                   const Shape& dilation, int64_t groups) {
  ConvArgs a;
  a.x_shape = xs;
  a.w_shape = ws;
  KW_CHECK(xs.size() >= 3 && xs.size() <= 5, "conv: 'xShape' must be [B, C, spatial...] with 1 to 3 spatial dims, got ",
           shape_str(xs));
  const size_t nd = xs.size() - 2;
  KW_CHECK(ws.size() == nd + 2 || ws.size() == nd + 3, "conv: 'wShape' must be [out, in/groups, k...] (", nd + 2,
           " dims) or per-sample [B, out, in/groups, k...] (", nd + 3, " dims) for a ", nd, "-d input, got ",
           shape_str(ws));
  ConvGeometry& g = a.g;
  g.per_sample_weight = ws.size() == nd + 3;
  const size_t w0 = g.per_sample_weight ? 1 : 0;
  g.batch = xs[0];
  g.in_channels = xs[1];
  g.out_channels = ws[w0];
  g.groups = groups;
  if (g.per_sample_weight)
    KW_CHECK(ws[0] == g.batch, "conv: per-sample 'wShape' ", shape_str(ws), " must start with the batch size ", g.batch);
  KW_CHECK(stride.size() == nd, "conv: 'stride' must have ", nd, " entries (one per spatial dim), got ", stride.size());
  KW_CHECK(dilation.size() == nd, "conv: 'dilation' must have ", nd, " entries (one per spatial dim), got ", dilation.size());
  KW_CHECK(padding.size() == nd || padding.size() == 2 * nd, "conv: 'padding' must have ", nd,
           " entries (symmetric) or ", 2 * nd, " (all before, then all after), got ", padding.size());
  // Non-batch dims must be positive (as in PyTorch); it also keeps the size checks below exact.
  for (size_t i = 1; i < xs.size(); i++)
    KW_CHECK(xs[i] >= 1, "conv: 'xShape' ", shape_str(xs), " must have positive channel and spatial sizes");
  for (size_t i = w0; i < ws.size(); i++)
    KW_CHECK(ws[i] >= 1, "conv: 'wShape' ", shape_str(ws), " must have positive sizes (after the batch dim)");
  numel(Shape(xs.begin() + 1, xs.end()));  // per-sample sizes stay in range even when B = 0
  numel(Shape(ws.begin() + w0, ws.end()));
  KW_CHECK(g.in_channels % groups == 0, "conv: input channels ", g.in_channels, " (from 'xShape') are not divisible by 'groups' ", groups);
  KW_CHECK(g.out_channels % groups == 0, "conv: output channels ", g.out_channels, " (from 'wShape') are not divisible by 'groups' ", groups);
  KW_CHECK(ws[w0 + 1] == g.in_channels / groups, "conv: 'wShape' ", shape_str(ws), " must have in/groups = ",
           g.in_channels / groups, " input channels, got ", ws[w0 + 1]);
  const size_t lead = 3 - nd;  // unit dims in front for 1-D and 2-D
  for (size_t i = 0; i < nd; i++) {
    const size_t d = lead + i;
    int64_t k = ws[w0 + 2 + i], in = xs[2 + i];
    KW_CHECK(stride[i] >= 1 && stride[i] <= INT32_MAX, "conv: 'stride' entries must be in [1, ", INT32_MAX, "], got ", stride[i], " at ", i);
    KW_CHECK(dilation[i] >= 1 && dilation[i] <= INT32_MAX, "conv: 'dilation' entries must be in [1, ", INT32_MAX, "], got ", dilation[i], " at ", i);
    int64_t plo = padding[i], phi = padding.size() == nd ? padding[i] : padding[nd + i];
    KW_CHECK(plo <= INT32_MAX && phi <= INT32_MAX, "conv: 'padding' entries must be in [0, ", INT32_MAX, "]");
    KW_CHECK(double(dilation[i]) * double(k - 1) < double(kMaxNumel), "conv: dilated kernel along spatial dim ", i, " is too large");
    int64_t span = in + plo + phi - dilation[i] * (k - 1) - 1;
    KW_CHECK(span >= 0, "conv: output size along spatial dim ", i, " would be < 1 (input ", in, ", padding ", plo, "+", phi,
             ", kernel ", k, ", dilation ", dilation[i], ")");
    g.in[d] = in;
    g.kernel[d] = k;
    g.stride[d] = stride[i];
    g.dilation[d] = dilation[i];
    g.pad_lo[d] = plo;
    g.pad_hi[d] = phi;
    g.out[d] = span / stride[i] + 1;
  }
  a.y_shape = {g.batch, g.out_channels};
  for (size_t i = 0; i < nd; i++) a.y_shape.push_back(g.out[lead + i]);
  numel(Shape(a.y_shape.begin() + 1, a.y_shape.end()));  // rejects an output too large to hold
  numel(a.y_shape);
  // GEMM dimensions are ints in BLAS.
  KW_CHECK(g.out_spatial() <= INT32_MAX && g.in_per_group() * g.kernel_size() <= INT32_MAX,
           "conv: too large for one GEMM (output positions or in/groups·kernel exceed 2^31)");
  return a;
}

ConvArgs read_conv_args(const Napi::CallbackInfo& info, size_t xs_i, size_t ws_i, size_t st_i) {
  Shape xs = arg_shape(info, xs_i, "xShape"), ws = arg_shape(info, ws_i, "wShape");
  Shape stride = arg_shape(info, st_i, "stride"), padding = arg_shape(info, st_i + 1, "padding");
  Shape dilation = arg_shape(info, st_i + 2, "dilation");
  int64_t groups = arg_int(info, st_i + 3, "groups", 1, kMaxNumel);
  return conv_args(xs, ws, stride, padding, dilation, groups);
}

// convForward(x, xShape, w, wShape, bias|null, stride, padding, dilation, groups)
Napi::Value ConvForward(const Napi::CallbackInfo& info) {
  auto x = arg_storage(info, 0, "x");
  auto w = arg_storage(info, 2, "w");
  auto bias = arg_storage_or_null(info, 4, "bias");
  ConvArgs a = read_conv_args(info, 1, 3, 5);
  check_tensor(x, a.x_shape, DType::F32, "x");
  check_tensor(w, a.w_shape, DType::F32, "w");
  if (bias) check_tensor(bias, {a.g.out_channels}, DType::F32, "bias");
  auto y = new_storage(DType::F32, numel(a.y_shape));
  backend_of(x).conv->forward(a.g, x->as<float>(), w->as<float>(), bias ? bias->as<float>() : nullptr, y->as<float>());
  return wrap(info.Env(), y);
}

// convBackward(dy, x|null, xShape, w|null, wShape, stride, padding, dilation, groups, needDx, needDw, needDb)
Napi::Value ConvBackward(const Napi::CallbackInfo& info) {
  auto dy = arg_storage(info, 0, "dy");
  auto x = arg_storage_or_null(info, 1, "x");
  auto w = arg_storage_or_null(info, 3, "w");
  ConvArgs a = read_conv_args(info, 2, 4, 5);
  bool need_dx = arg_bool(info, 9, "needDx"), need_dw = arg_bool(info, 10, "needDw"), need_db = arg_bool(info, 11, "needDb");
  check_tensor(dy, a.y_shape, DType::F32, "dy");
  // dX reads only w and dW reads only x, so the other may be null.
  KW_CHECK(x || !need_dw, "conv: 'x' is needed for the weight gradient (needDw)");
  KW_CHECK(w || !need_dx, "conv: 'w' is needed for the input gradient (needDx)");
  if (x) check_tensor(x, a.x_shape, DType::F32, "x");
  if (w) check_tensor(w, a.w_shape, DType::F32, "w");
  StoragePtr dx = need_dx ? new_storage(DType::F32, numel(a.x_shape)) : nullptr;
  StoragePtr dw = need_dw ? new_storage(DType::F32, numel(a.w_shape)) : nullptr;
  StoragePtr db = need_db ? new_storage(DType::F32, a.g.out_channels) : nullptr;
  auto data = [](const StoragePtr& s) -> float* { return s ? s->as<float>() : nullptr; };
  backend_of(dy).conv->backward(a.g, dy->as<float>(), data(x), data(w), data(dx), data(dw), data(db));
  Napi::Env env = info.Env();
  auto out = Napi::Array::New(env, 3);
  out.Set(0u, dx ? wrap(env, dx) : env.Null());
  out.Set(1u, dw ? wrap(env, dw) : env.Null());
  out.Set(2u, db ? wrap(env, db) : env.Null());
  return out;
}

}  // namespace

void RegisterConv(Napi::Env env, Napi::Object exports) {
  export_fn<ConvForward>(env, exports, "convForward");
  export_fn<ConvBackward>(env, exports, "convBackward");
}

}  // namespace kw::binding
