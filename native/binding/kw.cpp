// N-API glue for the KernelWarehouse kernels: the fused attention head and the cell assembly.
// Every tensor's size is checked against the dimensions before a kernel touches memory.
#include "binding/napi_util.h"
#include "binding/kw_args.h"
#include "binding/register.h"

namespace kw::binding {
namespace {

// A list of sizes: each entry range-checked alone (arg_shape would also bound their product,
// which means nothing for a list of unrelated dimensions).
Shape arg_dims(const Napi::CallbackInfo& info, size_t i, size_t count, const char* what) {
  if (i >= info.Length() || !info[i].IsArray())
    throw Napi::TypeError::New(info.Env(), "'dims' must be an array of integers");
  auto arr = info[i].As<Napi::Array>();
  KW_CHECK(arr.Length() == count, "'dims' must be ", what, ", got ", arr.Length(), " entries");
  Shape v(count);
  for (uint32_t k = 0; k < count; k++) {
    Napi::Value e = arr[k];
    double d = e.IsNumber() ? e.As<Napi::Number>().DoubleValue() : -1;
    if (!(d >= 0 && d <= double(kMaxNumel) && d == double(int64_t(d))))
      throw Napi::TypeError::New(info.Env(), "'dims' must hold non-negative integers (entry " + std::to_string(k) + ")");
    v[k] = int64_t(d);
  }
  return v;
}

// dims = [B, C, S, H, m, n, norm, L, K, start]; then temperature, eps, momentum.
KwAttentionDims arg_attention_dims(const Napi::CallbackInfo& info, size_t i) {
  Shape v = arg_dims(info, i, 10, "[batch, channels, spatial, hidden, mixtures, cells, norm, numLocal, numBasis, start]");
  KwAttentionDims d;
  d.batch = v[0], d.channels = v[1], d.spatial = v[2], d.hidden = v[3];
  d.mixtures = v[4], d.cells = v[5];
  KW_CHECK(v[6] <= 2, "'dims' norm must be 0 (BatchNorm1d train), 1 (BatchNorm1d eval) or 2 (LayerNorm), got ", v[6]);
  d.norm = KwNorm(int(v[6]));
  d.num_local = v[7], d.num_basis = v[8], d.start = v[9];
  KW_CHECK(d.batch >= 1 && d.channels >= 1 && d.spatial >= 1 && d.hidden >= 1 && d.mixtures >= 1 && d.cells >= 1,
           "attention dims must be positive (batch, channels, spatial, hidden, mixtures, cells), got ",
           shape_str(v));
  KW_CHECK(d.num_local <= d.cells, "attention: ", d.num_local, " local cells exceed the warehouse's ", d.cells);
  KW_CHECK(d.basis() || (d.num_local == 0 && d.start == 0), "attention: numLocal and start need numBasis > 0");
  KW_CHECK(d.norm != KwNorm::BatchNormTrain || d.batch > 1,
           "attention: BatchNorm1d in training mode needs more than 1 sample per batch, got ", d.batch);
  numel({d.batch, d.channels, d.spatial});
  numel({d.batch, d.mixtures, d.slots()});
  numel({d.num_local + d.num_basis + 1, d.mixtures});  // fc2_out() stays in range
  numel({d.batch, d.fc2_out(), d.hidden});
  numel({d.hidden, d.channels});
  numel({d.cells - d.num_local, d.num_basis});
  d.temperature = float(arg_number(info, i + 1, "temperature"));
  d.eps = float(arg_number(info, i + 2, "eps"));
  d.momentum = float(arg_number(info, i + 3, "momentum"));
  KW_CHECK(d.eps > 0.f, "'eps' must be positive, got ", d.eps);
  return d;
}

StoragePtr need(const Napi::CallbackInfo& info, size_t i, const char* name, const Shape& shape) {
  auto s = arg_storage(info, i, name);
  check_tensor(s, shape, DType::F32, name);
  return s;
}

// A tensor that must be present exactly when `wanted`.
StoragePtr optional(const Napi::CallbackInfo& info, size_t i, const char* name, const Shape& shape, bool wanted,
                    const char* why) {
  auto s = arg_storage_or_null(info, i, name);
  KW_CHECK(bool(s) == wanted, "'", name, "' must be ", wanted ? "given" : "null", " ", why);
  if (s) check_tensor(s, shape, DType::F32, name);
  return s;
}

const float* ptr(const StoragePtr& s) { return s ? s->as<float>() : nullptr; }

struct AttentionArgs {
  StoragePtr fc1_w, fc1_b, norm_w, norm_b, rmean, rvar, fc2_w, fc2_b, fc3_w, basis_bias, temp_bias;
  KwAttentionParams params() const {
    KwAttentionParams p;
    p.fc1_w = ptr(fc1_w), p.fc1_b = ptr(fc1_b), p.norm_w = ptr(norm_w), p.norm_b = ptr(norm_b);
    p.running_mean = rmean ? rmean->as<float>() : nullptr;
    p.running_var = rvar ? rvar->as<float>() : nullptr;
    p.fc2_w = ptr(fc2_w), p.fc2_b = ptr(fc2_b), p.fc3_w = ptr(fc3_w), p.basis_bias = ptr(basis_bias);
    p.temp_bias = ptr(temp_bias);
    return p;
  }
};

// Parameters from argument i on: fc1W, fc1B, normW, normB, runningMean, runningVar, fc2W, fc2B,
// fc3W, basisBias, tempBias. Running stats are needed only by the BatchNorm modes.
AttentionArgs arg_attention_params(const Napi::CallbackInfo& info, size_t i, const KwAttentionDims& d,
                                   bool need_stats) {
  const int64_t H = d.hidden, C = d.channels, MP = d.mixtures * d.slots();
  const bool bn = d.norm != KwNorm::LayerNorm;
  AttentionArgs a;
  a.fc1_w = need(info, i, "fc1Weight", {H, C});
  a.fc1_b = arg_storage_or_null(info, i + 1, "fc1Bias");
  if (a.fc1_b) check_tensor(a.fc1_b, {H}, DType::F32, "fc1Bias");
  a.norm_w = need(info, i + 2, "normWeight", {H});
  a.norm_b = need(info, i + 3, "normBias", {H});
  a.rmean = optional(info, i + 4, "runningMean", {H}, bn && need_stats, "(running stats go with BatchNorm1d)");
  a.rvar = optional(info, i + 5, "runningVar", {H}, bn && need_stats, "(running stats go with BatchNorm1d)");
  a.fc2_w = need(info, i + 6, "fc2Weight", {d.fc2_out(), H});
  a.fc2_b = optional(info, i + 7, "fc2Bias", {MP}, !d.basis(), "(fc2 has a bias exactly without the basis)");
  a.fc3_w = optional(info, i + 8, "fc3Weight", {d.cells - d.num_local, d.num_basis}, d.basis(),
                     "(fc3 exists exactly with the basis)");
  a.basis_bias = optional(info, i + 9, "basisBias", {MP}, d.basis(), "(basis_bias exists exactly with the basis)");
  a.temp_bias = need(info, i + 10, "tempBias", {MP});
  return a;
}

// kwAttentionForward(x, dims, temperature, eps, momentum, fc1W, fc1B, normW, normB, runningMean,
// runningVar, fc2W, fc2B, fc3W, basisBias, tempBias) → [alpha, workspace]
Napi::Value AttentionForward(const Napi::CallbackInfo& info) {
  auto x = arg_storage(info, 0, "x");
  KwAttentionDims d = arg_attention_dims(info, 1);
  check_tensor(x, {d.batch, d.channels, d.spatial}, DType::F32, "x");
  AttentionArgs a = arg_attention_params(info, 5, d, true);
  auto alpha = new_storage(DType::F32, d.batch * d.mixtures * d.cells);
  auto ws = new_storage(DType::F32, KwAttentionWorkspace(d).total);
  backend_of(x).kw->attention_forward(d, x->as<float>(), a.params(), alpha->as<float>(), ws->as<float>());
  auto out = Napi::Array::New(info.Env(), 2);
  out.Set(0u, wrap(info.Env(), alpha));
  out.Set(1u, wrap(info.Env(), ws));
  return out;
}

// kwAttentionBackward(dalpha, workspace, dims, temperature, eps, momentum, fc1W, fc1B, normW,
// normB, fc2W, fc2B, fc3W, basisBias) → [dx, dfc1W, dfc1B, dnormW, dnormB, dfc2W, dfc2B,
// dfc3W, dbasisBias], null where the layer has no such parameter.
Napi::Value AttentionBackward(const Napi::CallbackInfo& info) {
  auto dalpha = arg_storage(info, 0, "dalpha");
  auto ws = arg_storage(info, 1, "workspace");
  KwAttentionDims d = arg_attention_dims(info, 2);
  check_tensor(dalpha, {d.batch * d.mixtures, d.cells}, DType::F32, "dalpha");
  check_tensor(ws, {KwAttentionWorkspace(d).total}, DType::F32, "workspace");
  const int64_t H = d.hidden, C = d.channels, MP = d.mixtures * d.slots();
  AttentionArgs a;
  a.fc1_w = need(info, 6, "fc1Weight", {H, C});
  a.fc1_b = arg_storage_or_null(info, 7, "fc1Bias");
  if (a.fc1_b) check_tensor(a.fc1_b, {H}, DType::F32, "fc1Bias");
  a.norm_w = need(info, 8, "normWeight", {H});
  a.norm_b = need(info, 9, "normBias", {H});
  a.fc2_w = need(info, 10, "fc2Weight", {d.fc2_out(), H});
  a.fc2_b = optional(info, 11, "fc2Bias", {MP}, !d.basis(), "(fc2 has a bias exactly without the basis)");
  a.fc3_w = optional(info, 12, "fc3Weight", {d.cells - d.num_local, d.num_basis}, d.basis(),
                     "(fc3 exists exactly with the basis)");
  a.basis_bias = optional(info, 13, "basisBias", {MP}, d.basis(), "(basis_bias exists exactly with the basis)");

  auto mk = [](bool present, int64_t n) { return present ? new_storage(DType::F32, n) : StoragePtr(); };
  StoragePtr outs[9] = {
      mk(true, d.batch * C * d.spatial), mk(true, H * C), mk(bool(a.fc1_b), H), mk(true, H), mk(true, H),
      mk(true, d.fc2_out() * H), mk(bool(a.fc2_b), MP), mk(bool(a.fc3_w), (d.cells - d.num_local) * d.num_basis),
      mk(bool(a.basis_bias), MP)};
  auto f = [](const StoragePtr& s) { return s ? s->as<float>() : nullptr; };
  KwAttentionGrads g;
  g.dx = f(outs[0]), g.fc1_w = f(outs[1]), g.fc1_b = f(outs[2]), g.norm_w = f(outs[3]), g.norm_b = f(outs[4]);
  g.fc2_w = f(outs[5]), g.fc2_b = f(outs[6]), g.fc3_w = f(outs[7]), g.basis_bias = f(outs[8]);
  backend_of(dalpha).kw->attention_backward(d, dalpha->as<float>(), a.params(), ws->as<float>(), g);
  auto out = Napi::Array::New(info.Env(), 9);
  for (uint32_t k = 0; k < 9; k++) out.Set(k, outs[k] ? wrap(info.Env(), outs[k]) : info.Env().Null());
  return out;
}

}  // namespace

// dims = [B, m, n, gs, goc, gic, co, ci, ck]
KwAssemblyDims arg_assembly_dims(const Napi::CallbackInfo& info, size_t i) {
  Shape v = arg_dims(info, i, 9, "[batch, mixtures, cells, gs, goc, gic, co, ci, ck]");
  KwAssemblyDims d;
  d.batch = v[0], d.mixtures = v[1], d.cells = v[2], d.gs = v[3], d.goc = v[4], d.gic = v[5];
  d.co = v[6], d.ci = v[7], d.ck = v[8];
  for (int64_t e : v) KW_CHECK(e >= 1, "assembly dims must be positive, got ", shape_str(v));
  KW_CHECK(d.gs * d.goc * d.gic == d.mixtures, "assembly: mixtures ", d.mixtures, " must equal gs·goc·gic = ",
           d.gs, "·", d.goc, "·", d.gic);
  numel({d.batch, d.mixtures, d.cells});
  numel({d.cells, d.co, d.ci, d.ck});
  numel({d.batch, d.goc, d.co, d.gic, d.ci, d.gs, d.ck});
  return d;
}

namespace {

// kwAssemble(alpha, cells, dims) → weight [B, goc·co, gic·ci, gs·ck]
Napi::Value Assemble(const Napi::CallbackInfo& info) {
  auto alpha = arg_storage(info, 0, "alpha");
  auto cells = arg_storage(info, 1, "cells");
  KwAssemblyDims d = arg_assembly_dims(info, 2);
  check_tensor(alpha, {d.batch * d.mixtures, d.cells}, DType::F32, "alpha");
  check_tensor(cells, {d.cells, d.cell_size()}, DType::F32, "cells");
  auto w = new_storage(DType::F32, d.batch * d.weight_size());
  backend_of(alpha).kw->assemble_forward(d, alpha->as<float>(), cells->as<float>(), w->as<float>());
  return wrap(info.Env(), w);
}

// kwAssembleBackward(dweight, alpha, cells, dims, needAlpha, needCells) → [dalpha | null, dcells | null]
Napi::Value AssembleBackward(const Napi::CallbackInfo& info) {
  auto dw = arg_storage(info, 0, "dweight");
  auto alpha = arg_storage(info, 1, "alpha");
  auto cells = arg_storage(info, 2, "cells");
  KwAssemblyDims d = arg_assembly_dims(info, 3);
  bool need_alpha = arg_bool(info, 4, "needAlpha"), need_cells = arg_bool(info, 5, "needCells");
  check_tensor(dw, {d.batch * d.weight_size()}, DType::F32, "dweight");
  check_tensor(alpha, {d.batch * d.mixtures, d.cells}, DType::F32, "alpha");
  check_tensor(cells, {d.cells, d.cell_size()}, DType::F32, "cells");
  StoragePtr da = need_alpha ? new_storage(DType::F32, alpha->numel) : nullptr;
  StoragePtr dc = need_cells ? new_storage(DType::F32, cells->numel) : nullptr;
  backend_of(dw).kw->assemble_backward(d, dw->as<float>(), alpha->as<float>(), cells->as<float>(),
                                       da ? da->as<float>() : nullptr, dc ? dc->as<float>() : nullptr);
  auto out = Napi::Array::New(info.Env(), 2);
  out.Set(0u, da ? wrap(info.Env(), da) : info.Env().Null());
  out.Set(1u, dc ? wrap(info.Env(), dc) : info.Env().Null());
  return out;
}

}  // namespace

void RegisterKw(Napi::Env env, Napi::Object exports) {
  export_fn<AttentionForward>(env, exports, "kwAttentionForward");
  export_fn<AttentionBackward>(env, exports, "kwAttentionBackward");
  export_fn<Assemble>(env, exports, "kwAssemble");
  export_fn<AssembleBackward>(env, exports, "kwAssembleBackward");
  RegisterKwConv(env, exports);
}

}  // namespace kw::binding
