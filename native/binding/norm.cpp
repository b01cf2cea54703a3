// N-API glue for the norm op family (to be filled).
#include "binding/napi_util.h"
#include "binding/register.h"

namespace kw::binding {

void RegisterNorm(Napi::Env env, Napi::Object exports) {}

}  // namespace kw::binding
