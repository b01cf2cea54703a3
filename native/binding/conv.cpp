// N-API glue for the conv op family (to be filled).
#include "binding/napi_util.h"
#include "binding/register.h"

namespace kw::binding {

void RegisterConv(Napi::Env env, Napi::Object exports) {}

}  // namespace kw::binding
