// The addon's entry point: registers every op family's functions on the exports object.
#include "binding/register.h"

namespace kw::binding {

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  RegisterStorage(env, exports);
  RegisterElementwise(env, exports);
  RegisterReduce(env, exports);
  RegisterGemm(env, exports);
  RegisterLayout(env, exports);
  RegisterRandom(env, exports);
  RegisterConv(env, exports);
  RegisterNorm(env, exports);
  RegisterPool(env, exports);
  RegisterLoss(env, exports);
  RegisterKw(env, exports);
  RegisterOptim(env, exports);
  RegisterComm(env, exports);
  return exports;
}

NODE_API_MODULE(kernelwarehouse, Init)

}  // namespace kw::binding
