// N-API glue for the fused KernelWarehouse convolution (cpu/kw_conv.cpp): reads the assembly
// dims and the conv geometry, checks that they describe the same kernel and that every
// tensor's size matches, before a kernel touches memory.
#include "binding/kw_args.h"

namespace kw::binding {
namespace {

struct KwConvArgs {
  KwAssemblyDims a;
  ConvGeometry g;
  Shape x_shape, y_shape;
  KwConvStrategy strategy = KwConvStrategy::Auto;
  int64_t samples_per_chunk = 0;
};

Shape arg_list(const Napi::CallbackInfo& info, size_t i, const char* name, size_t nd, bool allow_pairs) {
  if (i >= info.Length() || !info[i].IsArray())
    throw Napi::TypeError::New(info.Env(), std::string("'") + name + "' must be an array of integers");
  auto arr = info[i].As<Napi::Array>();
  KW_CHECK(arr.Length() == nd || (allow_pairs && arr.Length() == 2 * nd), "kwConv: '", name, "' must have ", nd,
           " entries (one per spatial dim)", allow_pairs ? " or twice that (all before, then all after)" : "",
           ", got ", arr.Length());
  Shape v(arr.Length());
  for (uint32_t k = 0; k < arr.Length(); k++) {
    Napi::Value e = arr[k];
    double d = e.IsNumber() ? e.As<Napi::Number>().DoubleValue() : -1;
    if (!(d >= 0 && d <= double(INT32_MAX) && d == double(int64_t(d))))
      throw Napi::TypeError::New(info.Env(), std::string("'") + name + "' must hold integers in [0, 2^31) (entry " +
                                                 std::to_string(k) + ")");
    v[k] = int64_t(d);
  }
  return v;
}

// Arguments from i: xShape, dims, kernelSize, stride, padding, dilation, groups, strategy
// [, samplesPerChunk when with_cap].
KwConvArgs read_args(const Napi::CallbackInfo& info, size_t i, bool with_cap = true) {
  KwConvArgs r;
  r.x_shape = arg_shape(info, i, "xShape");
  const Shape& xs = r.x_shape;
  KW_CHECK(xs.size() >= 3 && xs.size() <= 5, "kwConv: 'xShape' must be [B, C, spatial...] with 1 to 3 spatial dims, got ",
           shape_str(xs));
  const size_t nd = xs.size() - 2;
  r.a = arg_assembly_dims(info, i + 1);
  Shape kernel = arg_list(info, i + 2, "kernelSize", nd, false);
  Shape stride = arg_list(info, i + 3, "stride", nd, false);
  Shape padding = arg_list(info, i + 4, "padding", nd, true);
  Shape dilation = arg_list(info, i + 5, "dilation", nd, false);
  const int64_t groups = arg_int(info, i + 6, "groups", 1, kMaxNumel);
  const int64_t strategy = arg_int(info, i + 7, "strategy", 0, 4);
  if (with_cap) r.samples_per_chunk = arg_int(info, i + 8, "samplesPerChunk", 0, kMaxNumel);
  const KwAssemblyDims& a = r.a;
  ConvGeometry& g = r.g;
  g.per_sample_weight = true;
  g.batch = xs[0];
  g.in_channels = xs[1];
  g.out_channels = a.goc * a.co;
  g.groups = groups;
  for (size_t k = 1; k < xs.size(); k++)
    KW_CHECK(xs[k] >= 1, "kwConv: 'xShape' ", shape_str(xs), " must have positive channel and spatial sizes");
  KW_CHECK(xs[0] == a.batch, "kwConv: 'xShape' batch ", xs[0], " must equal the batch of 'dims' ", a.batch);
  KW_CHECK(g.in_channels % groups == 0 && g.out_channels % groups == 0, "kwConv: 'groups' ", groups,
           " must divide the input channels ", g.in_channels, " and the output channels goc·co = ", g.out_channels);
  KW_CHECK(g.in_channels / groups == a.gic * a.ci, "kwConv: input channels per group ", g.in_channels / groups,
           " must equal gic·ci = ", a.gic * a.ci, " from 'dims'");
  int64_t knumel = 1;
  for (int64_t k : kernel) {
    KW_CHECK(k >= 1, "kwConv: 'kernelSize' entries must be positive, got ", shape_str(kernel));
    knumel *= k;
  }
  KW_CHECK(knumel == a.gs * a.ck, "kwConv: 'kernelSize' ", shape_str(kernel), " must have gs·ck = ", a.gs * a.ck,
           " positions");
  const size_t lead = 3 - nd;
  for (size_t k = 0; k < nd; k++) {
    const size_t d = lead + k;
    KW_CHECK(stride[k] >= 1 && dilation[k] >= 1, "kwConv: 'stride' and 'dilation' entries must be positive");
    const int64_t plo = padding[k], phi = padding.size() == nd ? padding[k] : padding[nd + k];
    const int64_t span = xs[2 + k] + plo + phi - dilation[k] * (kernel[k] - 1) - 1;
    KW_CHECK(span >= 0, "kwConv: output size along spatial dim ", k, " would be < 1 (input ", xs[2 + k], ", padding ",
             plo, "+", phi, ", kernel ", kernel[k], ", dilation ", dilation[k], ")");
    g.in[d] = xs[2 + k];
    g.kernel[d] = kernel[k];
    g.stride[d] = stride[k];
    g.dilation[d] = dilation[k];
    g.pad_lo[d] = plo;
    g.pad_hi[d] = phi;
    g.out[d] = span / stride[k] + 1;
  }
  numel(xs);
  r.y_shape = {g.batch, g.out_channels};
  for (size_t k = 0; k < nd; k++) r.y_shape.push_back(g.out[lead + k]);
  numel(r.y_shape);
  // Scratch sizes the kernels derive from these (columns of one sample, V over the batch).
  numel({g.in_channels, knumel, g.out_spatial()});
  numel({g.batch, a.cells, a.goc, a.ci, a.ck, g.out_spatial()});
  KW_CHECK(g.out_spatial() <= INT32_MAX && g.in_per_group() * knumel <= INT32_MAX,
           "kwConv: too large for one GEMM (output positions or in/groups·kernel exceed 2^31)");
  r.strategy = KwConvStrategy(strategy);
  KW_CHECK(r.strategy != KwConvStrategy::InputMix || groups == 1,
           "kwConv: 'strategy' input-mix needs groups = 1, got groups ", groups);
  return r;
}

void check_inputs(const KwConvArgs& r, const StoragePtr& x, const StoragePtr& alpha, const StoragePtr& cells) {
  check_tensor(x, r.x_shape, DType::F32, "x");
  check_tensor(alpha, {r.a.batch * r.a.mixtures, r.a.cells}, DType::F32, "alpha");
  check_tensor(cells, {r.a.cells, r.a.cell_size()}, DType::F32, "cells");
}

const KwKernels& kernels_of(const StoragePtr& s) {
  const KwKernels* k = backend_of(s).kw;
  KW_CHECK(k && k->conv_forward && k->conv_backward, "kwConv: not implemented on this device");
  return *k;
}

// kwConvForward(x, alpha, cells, bias|null, xShape, dims, kernelSize, stride, padding, dilation, groups, strategy,
//               samplesPerChunk) → y
Napi::Value Forward(const Napi::CallbackInfo& info) {
  auto x = arg_storage(info, 0, "x");
  auto alpha = arg_storage(info, 1, "alpha");
  auto cells = arg_storage(info, 2, "cells");
  auto bias = arg_storage_or_null(info, 3, "bias");
  KwConvArgs r = read_args(info, 4);
  check_inputs(r, x, alpha, cells);
  if (bias) check_tensor(bias, {r.g.out_channels}, DType::F32, "bias");
  auto y = new_storage(DType::F32, numel(r.y_shape));
  kernels_of(x).conv_forward(r.a, r.g, r.strategy, r.samples_per_chunk, x->as<float>(), alpha->as<float>(), cells->as<float>(),
                             bias ? bias->as<float>() : nullptr, y->as<float>());
  return wrap(info.Env(), y);
}

// kwConvBackward(dy, x, alpha, cells, xShape, dims, kernelSize, stride, padding, dilation, groups, strategy,
//                samplesPerChunk, needDx, needDalpha, needDcells, needDbias) → [dx, dalpha, dcells, dbias], each null unless asked
Napi::Value Backward(const Napi::CallbackInfo& info) {
  auto dy = arg_storage(info, 0, "dy");
  auto x = arg_storage(info, 1, "x");
  auto alpha = arg_storage(info, 2, "alpha");
  auto cells = arg_storage(info, 3, "cells");
  KwConvArgs r = read_args(info, 4);
  const bool need_dx = arg_bool(info, 13, "needDx"), need_da = arg_bool(info, 14, "needDalpha");
  const bool need_dc = arg_bool(info, 15, "needDcells"), need_db = arg_bool(info, 16, "needDbias");
  check_inputs(r, x, alpha, cells);
  check_tensor(dy, r.y_shape, DType::F32, "dy");
  StoragePtr dx = need_dx ? new_storage(DType::F32, x->numel) : nullptr;
  StoragePtr da = need_da ? new_storage(DType::F32, alpha->numel) : nullptr;
  StoragePtr dc = need_dc ? new_storage(DType::F32, cells->numel) : nullptr;
  StoragePtr db = need_db ? new_storage(DType::F32, r.g.out_channels) : nullptr;
  auto f = [](const StoragePtr& s) { return s ? s->as<float>() : nullptr; };
  kernels_of(dy).conv_backward(r.a, r.g, r.strategy, r.samples_per_chunk, dy->as<float>(), x->as<float>(), alpha->as<float>(),
                               cells->as<float>(), f(dx), f(da), f(dc), f(db));
  Napi::Env env = info.Env();
  auto out = Napi::Array::New(env, 4);
  const StoragePtr* outs[4] = {&dx, &da, &dc, &db};
  for (uint32_t k = 0; k < 4; k++) out.Set(k, *outs[k] ? wrap(env, *outs[k]) : env.Null());
  return out;
}

// kwConvStrategy(xShape, dims, kernelSize, stride, padding, dilation, groups, strategy) → 1 (chunked),
// 2 (input mix), 3 (panels), 4 (Winograd with 2×2 output tiles) or 5 (Winograd, 4×4 tiles)
Napi::Value Strategy(const Napi::CallbackInfo& info) {
  KwConvArgs r = read_args(info, 0, false);
  const KwConvStrategy s = kw_conv_strategy(r.a, r.g, r.strategy);
  const int code = s == KwConvStrategy::Winograd && kw_conv_winograd_tile(r.a, r.g, r.strategy) == 4 ? 5 : int(s);
  return Napi::Number::New(info.Env(), double(code));
}

// kwPanelAssemblySeconds(cells, cellOut, cellIn, groupsSpatial, groupsOutChannel, groupsInChannel, samples)
//   → seconds of the panels strategy's forward assembly GEMMs on random data (a benchmark hook:
//   bench/kw.ts compares its rate with the GEMM rate). cellIn is ci·ck; both multiples of 32.
Napi::Value PanelAssemblySeconds(const Napi::CallbackInfo& info) {
  KwAssemblyDims a;
  a.cells = arg_int(info, 0, "cells", 1, 4096);
  a.co = arg_int(info, 1, "cellOut", 32, 4096);
  a.ci = arg_int(info, 2, "cellIn", 32, 4096 * 9);
  a.ck = 1;
  a.gs = arg_int(info, 3, "groupsSpatial", 1, 27);
  a.goc = arg_int(info, 4, "groupsOutChannel", 1, 64);
  a.gic = arg_int(info, 5, "groupsInChannel", 1, 64);
  const int64_t samples = arg_int(info, 6, "samples", 1, 4096);
  KW_CHECK(a.co % 32 == 0 && a.ci % 32 == 0, "kwPanelAssemblySeconds: cellOut and cellIn must be multiples of 32, got ",
           a.co, " and ", a.ci);
  KW_CHECK(a.cells * a.cell_size() <= (int64_t(1) << 27), "kwPanelAssemblySeconds: the warehouse is over 512 MB");
  a.mixtures = a.gs * a.goc * a.gic;
  KW_CHECK(samples * a.mixtures * a.cells <= (int64_t(1) << 27), "kwPanelAssemblySeconds: alpha (samples·mixtures·cells = ",
           samples * a.mixtures * a.cells, ") is over 512 MB");
  const KwKernels* k = backend_for(Device::CPU).kw;
  KW_CHECK(k && k->panel_assembly_seconds, "kwPanelAssemblySeconds: not available in this build");
  return Napi::Number::New(info.Env(), k->panel_assembly_seconds(a, samples));
}

}  // namespace

void RegisterKwConv(Napi::Env env, Napi::Object exports) {
  export_fn<PanelAssemblySeconds>(env, exports, "kwPanelAssemblySeconds");
  export_fn<Forward>(env, exports, "kwConvForward");
  export_fn<Backward>(env, exports, "kwConvBackward");
  export_fn<Strategy>(env, exports, "kwConvStrategy");
}

}  // namespace kw::binding
