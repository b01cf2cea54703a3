// N-API glue for matrix products.
#include "binding/napi_util.h"
#include "binding/register.h"

namespace kw::binding {
namespace {

// bmm(a, b, batchA, batchB, M, N, K, transA, transB): batchA and batchB are 1 (broadcast) or
// the batch size. a holds batchA matrices of op(A) M×K, b holds batchB of op(B) K×N.
Napi::Value Bmm(const Napi::CallbackInfo& info) {
  auto a = arg_storage(info, 0, "a");
  auto b = arg_storage(info, 1, "b");
  int64_t ba = arg_int(info, 2, "batchA", 1, kMaxNumel), bb = arg_int(info, 3, "batchB", 1, kMaxNumel);
  int64_t M = arg_int(info, 4, "M", 0, kMaxNumel), N = arg_int(info, 5, "N", 0, kMaxNumel),
          K = arg_int(info, 6, "K", 0, kMaxNumel);
  bool ta = arg_bool(info, 7, "transA"), tb = arg_bool(info, 8, "transB");
  KW_CHECK(ba == bb || ba == 1 || bb == 1, "matmul: batch sizes ", ba, " and ", bb, " do not broadcast");
  KW_CHECK(M <= INT32_MAX && N <= INT32_MAX && K <= INT32_MAX, "matmul: dimension too large");
  check_tensor(a, {ba, M, K}, DType::F32, "a");
  check_tensor(b, {bb, K, N}, DType::F32, "b");
  int64_t batch = std::max(ba, bb);
  auto c = new_storage(DType::F32, numel({batch, M, N}));
  backend_of(a).gemm->gemm_batched(batch, ta, tb, M, N, K, 1.f, a->as<float>(), ba == 1 ? 0 : M * K,
                                   b->as<float>(), bb == 1 ? 0 : K * N, 0.f, c->as<float>(), M * N);
  return wrap(info.Env(), c);
}

}  // namespace

void RegisterGemm(Napi::Env env, Napi::Object exports) { export_fn<Bmm>(env, exports, "bmm"); }

}  // namespace kw::binding
