// Data-parallel communication (issue 10): opens an optional communication library
// (libkw_comm_mpi.so, see native/comm/comm_api.h) with dlopen and exposes it to JS. The addon
// itself never links MPI, so it loads where MPI is not installed; only commOpen then fails.
// Collectives run on the calling (JS main) thread and block it, as torch's do by default.
#include <dlfcn.h>

#include <cstring>
#include <string>
#include <vector>

#include "binding/napi_util.h"
#include "binding/register.h"
#include "comm/comm_api.h"

namespace kw::binding {
namespace {

const KwCommApi* api = nullptr;
bool started = false;
// from commInit: they size gather outputs and bound roots (never taken from JS, where a wrong
// value would let MPI write past the output)
int world_size = 1, world_rank = 0;
char err[512];

const KwCommApi& need(const char* fn, bool init = true) {
  KW_CHECK(api, fn, ": no communication library is open (call commOpen first)");
  KW_CHECK(!init || started, fn, ": the communication library is not initialised (call commInit first)");
  return *api;
}

void check_rc(int rc) {
  if (rc != 0) fail(std::string(err));
}

std::vector<StoragePtr> arg_storages(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (info.Length() <= i || !info[i].IsArray()) fail("'", name, "' must be an array of storages");
  auto a = info[i].As<Napi::Array>();
  std::vector<StoragePtr> out;
  for (uint32_t k = 0; k < a.Length(); k++) {
    std::string item = std::string(name) + "[" + std::to_string(k) + "]";
    StoragePtr s = storage_of(info.Env(), a.Get(k), item.c_str());
    KW_CHECK(s->device == Device::CPU, "'", item, "' must be on the CPU (MPI moves host memory)");
    out.push_back(s);
  }
  return out;
}

int arg_root(const Napi::CallbackInfo& info, size_t i) {
  int64_t root = arg_int(info, i, "root", 0, INT32_MAX);
  KW_CHECK(root < world_size, "'root' must be a rank below the world size (", world_size, "), got ", root);
  return int(root);
}

// commOpen(path) → { name, version }: dlopen RTLD_GLOBAL because Open MPI's own plugins
// (dlopened by libmpi) look up libmpi's symbols in the global scope.
Napi::Value Open(const Napi::CallbackInfo& info) {
  std::string path = arg_string(info, 0, "path");
  if (!api) {
    void* h = dlopen(path.c_str(), RTLD_NOW | RTLD_GLOBAL);
    if (!h) fail("cannot open the communication library ", path, ": ", dlerror());
    auto get = reinterpret_cast<const KwCommApi* (*)()>(dlsym(h, "kw_comm_api"));
    if (!get) fail(path, " has no kw_comm_api symbol: not a kernelwarehouse communication library");
    const KwCommApi* a = get();
    KW_CHECK(a && a->abi == KW_COMM_ABI, path, " has ABI ", a ? a->abi : -1, ", this addon needs ", KW_COMM_ABI,
             ": rebuild both with npx cmake-js compile");
    api = a;
  }
  auto o = Napi::Object::New(info.Env());
  o.Set("name", api->name);
  o.Set("version", api->version);
  return o;
}

Napi::Value Init(const Napi::CallbackInfo& info) {
  const KwCommApi& a = need("commInit", false);
  int rank = 0, size = 1, local_rank = 0, local_size = 1;
  check_rc(a.init(&rank, &size, &local_rank, &local_size, err, sizeof err));
  started = true;
  world_size = size;
  world_rank = rank;
  auto o = Napi::Object::New(info.Env());
  o.Set("rank", rank);
  o.Set("size", size);
  o.Set("localRank", local_rank);
  o.Set("localSize", local_size);
  return o;
}

// commAllreduce(storages, average, bucketElems): sums float32 storages over all ranks, in
// place. Small storages are packed into buckets of up to bucketElems floats so a model's
// hundreds of small gradients cost a few collectives, not hundreds; a storage larger than a
// bucket is reduced where it lies.
Napi::Value Allreduce(const Napi::CallbackInfo& info) {
  const KwCommApi& a = need("commAllreduce");
  auto ss = arg_storages(info, 0, "storages");
  bool average = arg_bool(info, 1, "average");
  int64_t cap = arg_int(info, 2, "bucketElems", 1, int64_t(1) << 32);
  for (size_t k = 0; k < ss.size(); k++) check_float(ss[k], ("storages[" + std::to_string(k) + "]").c_str());
  std::vector<float> bucket;
  std::vector<StoragePtr> members;
  auto flush = [&]() {
    if (members.empty()) return;
    check_rc(a.allreduce_f32(bucket.data(), int64_t(bucket.size()), average, err, sizeof err));
    size_t off = 0;
    for (auto& m : members) {
      std::memcpy(m->data, bucket.data() + off, m->bytes);
      off += size_t(m->numel);
    }
    bucket.clear();
    members.clear();
  };
  for (auto& s : ss) {
    if (s->numel == 0) continue;
    if (s->numel >= cap) {
      check_rc(a.allreduce_f32(s->as<float>(), s->numel, average, err, sizeof err));
      continue;
    }
    if (int64_t(bucket.size()) + s->numel > cap) flush();
    bucket.insert(bucket.end(), s->as<float>(), s->as<float>() + s->numel);
    members.push_back(s);
  }
  flush();
  return info.Env().Undefined();
}

// commBroadcast(storages, root): rank root's contents replace every other rank's (any dtype).
Napi::Value Broadcast(const Napi::CallbackInfo& info) {
  const KwCommApi& a = need("commBroadcast");
  auto ss = arg_storages(info, 0, "storages");
  int root = arg_root(info, 1);
  for (auto& s : ss) check_rc(a.broadcast(s->data, int64_t(s->bytes), root, err, sizeof err));
  return info.Env().Undefined();
}

// commBroadcastBytes(uint8array, root): the same for a JS byte buffer (strings, JSON).
Napi::Value BroadcastBytes(const Napi::CallbackInfo& info) {
  const KwCommApi& a = need("commBroadcastBytes");
  if (info.Length() < 1 || !info[0].IsTypedArray() || info[0].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array)
    fail("'bytes' must be a Uint8Array");
  auto u = info[0].As<Napi::Uint8Array>();
  int root = arg_root(info, 1);
  check_rc(a.broadcast(u.Data(), int64_t(u.ByteLength()), root, err, sizeof err));
  return info.Env().Undefined();
}

// commAllgather(storage) → a storage of size·numel floats, rank r's values at r·numel.
// Every rank must pass the same numel (MPI cannot check that for us).
Napi::Value Allgather(const Napi::CallbackInfo& info) {
  const KwCommApi& a = need("commAllgather");
  auto s = arg_storage(info, 0, "storage");
  check_float(s, "storage");
  auto out = new_storage(DType::F32, s->numel * world_size);
  check_rc(a.allgather_f32(s->as<float>(), s->numel, out->as<float>(), err, sizeof err));
  return wrap(info.Env(), out);
}

// commGather(storage, root) → on root as allgather; elsewhere an empty storage.
Napi::Value Gather(const Napi::CallbackInfo& info) {
  const KwCommApi& a = need("commGather");
  auto s = arg_storage(info, 0, "storage");
  check_float(s, "storage");
  int root = arg_root(info, 1);
  bool is_root = world_rank == root;
  auto out = new_storage(DType::F32, is_root ? s->numel * world_size : 0);
  check_rc(a.gather_f32(s->as<float>(), s->numel, is_root ? out->as<float>() : nullptr, root, err, sizeof err));
  return wrap(info.Env(), out);
}

Napi::Value Barrier(const Napi::CallbackInfo& info) {
  check_rc(need("commBarrier").barrier(err, sizeof err));
  return info.Env().Undefined();
}

Napi::Value Finalize(const Napi::CallbackInfo& info) {
  if (api && started) check_rc(api->finalize(err, sizeof err));
  started = false;
  return info.Env().Undefined();
}

Napi::Value Abort(const Napi::CallbackInfo& info) {
  int code = int(arg_int(info, 0, "code", 1, 255));
  std::string msg = arg_string(info, 1, "message");
  need("commAbort", false).abort(code, msg.c_str());
  return info.Env().Undefined();  // not reached
}

}  // namespace

void RegisterComm(Napi::Env env, Napi::Object exports) {
  export_fn<Open>(env, exports, "commOpen");
  export_fn<Init>(env, exports, "commInit");
  export_fn<Allreduce>(env, exports, "commAllreduce");
  export_fn<Broadcast>(env, exports, "commBroadcast");
  export_fn<BroadcastBytes>(env, exports, "commBroadcastBytes");
  export_fn<Allgather>(env, exports, "commAllgather");
  export_fn<Gather>(env, exports, "commGather");
  export_fn<Barrier>(env, exports, "commBarrier");
  export_fn<Finalize>(env, exports, "commFinalize");
  export_fn<Abort>(env, exports, "commAbort");
}

}  // namespace kw::binding
