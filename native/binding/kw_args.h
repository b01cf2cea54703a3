// Argument readers shared by the KernelWarehouse binding files (kw.cpp, kw_conv.cpp).
#pragma once
#include "binding/napi_util.h"

namespace kw::binding {

// Reads [B, m, n, gs, goc, gic, co, ci, ck] at argument i: all positive, m = gs·goc·gic,
// every derived size in range.
KwAssemblyDims arg_assembly_dims(const Napi::CallbackInfo& info, size_t i);

// Registers kwConvForward / kwConvBackward / kwConvStrategy (kw_conv.cpp); called by RegisterKw.
void RegisterKwConv(Napi::Env env, Napi::Object exports);

}  // namespace kw::binding
