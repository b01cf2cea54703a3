// libkw_comm_mpi.so: the MPI implementation of the communication table (comm_api.h), built
// only when CMake finds MPI. Ranks exchange float32 gradients and raw bytes over MPI_COMM_WORLD.
// Errors return (MPI_ERRORS_RETURN) so the addon can throw a JS error naming the call, instead of
// MPI's default of killing the process from inside the library.
#include <mpi.h>

#include <dlfcn.h>
#include <algorithm>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "comm_api.h"

namespace {

// MPI counts are int: long buffers go in chunks of this many elements.
constexpr int64_t kChunk = int64_t(1) << 28;

int world_size = 1, world_rank = 0;
std::string version_line;

int report(int rc, const char* what, char* err, int errlen) {
  if (rc == MPI_SUCCESS) return 0;
  char msg[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(rc, msg, &len);
  std::snprintf(err, size_t(errlen), "%s failed: %.*s", what, len, msg);
  return 1;
}

int initialized(const char* what, char* err, int errlen) {
  int flag = 0, fin = 0;
  MPI_Initialized(&flag);
  MPI_Finalized(&fin);
  if (flag && !fin) return 0;
  std::snprintf(err, size_t(errlen), "%s: MPI is %s", what, fin ? "already finalized" : "not initialized (call init first)");
  return 1;
}

int comm_init(int* rank, int* size, int* local_rank, int* local_size, char* err, int errlen) {
  int flag = 0;
  MPI_Initialized(&flag);
  if (!flag) {
    // Open MPI opens its plugins with dlopen and they need libmpi's symbols globally; the addon
    // opened us RTLD_GLOBAL, and this promotes libmpi itself in case it came in as a dependency.
    for (const char* soname : {"libmpi.so.40", "libmpi.so.12", "libmpi.so"})
      if (dlopen(soname, RTLD_NOW | RTLD_GLOBAL | RTLD_NOLOAD)) break;
    int provided = 0;
    int rc = MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided);
    if (report(rc, "MPI_Init_thread", err, errlen)) return 1;
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  }
  MPI_Comm_rank(MPI_COMM_WORLD, &world_rank);
  MPI_Comm_size(MPI_COMM_WORLD, &world_size);
  // ranks sharing this machine: they split its cores between them
  MPI_Comm node;
  if (report(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, world_rank, MPI_INFO_NULL, &node),
             "MPI_Comm_split_type", err, errlen))
    return 1;
  MPI_Comm_rank(node, local_rank);
  MPI_Comm_size(node, local_size);
  MPI_Comm_free(&node);
  *rank = world_rank;
  *size = world_size;
  return 0;
}

int comm_allreduce(float* data, int64_t n, int average, char* err, int errlen) {
  if (initialized("allreduce", err, errlen)) return 1;
  for (int64_t off = 0; off < n; off += kChunk) {
    int c = int(std::min(kChunk, n - off));
    if (report(MPI_Allreduce(MPI_IN_PLACE, data + off, c, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD), "MPI_Allreduce", err, errlen))
      return 1;
  }
  if (average && world_size > 1) {
    // divide rather than multiply by 1/size: two ranks then give exactly (a + b) / 2
    const float s = float(world_size);
    for (int64_t i = 0; i < n; i++) data[i] /= s;
  }
  return 0;
}

int comm_broadcast(void* data, int64_t bytes, int root, char* err, int errlen) {
  if (initialized("broadcast", err, errlen)) return 1;
  auto* p = static_cast<char*>(data);
  for (int64_t off = 0; off < bytes; off += kChunk) {
    int c = int(std::min(kChunk, bytes - off));
    if (report(MPI_Bcast(p + off, c, MPI_BYTE, root, MPI_COMM_WORLD), "MPI_Bcast", err, errlen)) return 1;
  }
  return 0;
}

int comm_allgather(const float* in, int64_t n, float* out, char* err, int errlen) {
  if (initialized("allgather", err, errlen)) return 1;
  if (n > INT_MAX) {
    std::snprintf(err, size_t(errlen), "allgather: %lld floats per rank is more than MPI's int count", (long long)n);
    return 1;
  }
  return report(MPI_Allgather(in, int(n), MPI_FLOAT, out, int(n), MPI_FLOAT, MPI_COMM_WORLD), "MPI_Allgather", err, errlen);
}

int comm_gather(const float* in, int64_t n, float* out, int root, char* err, int errlen) {
  if (initialized("gather", err, errlen)) return 1;
  if (n > INT_MAX) {
    std::snprintf(err, size_t(errlen), "gather: %lld floats per rank is more than MPI's int count", (long long)n);
    return 1;
  }
  return report(MPI_Gather(in, int(n), MPI_FLOAT, out, int(n), MPI_FLOAT, root, MPI_COMM_WORLD), "MPI_Gather", err, errlen);
}

int comm_barrier(char* err, int errlen) {
  if (initialized("barrier", err, errlen)) return 1;
  return report(MPI_Barrier(MPI_COMM_WORLD), "MPI_Barrier", err, errlen);
}

int comm_finalize(char* err, int errlen) {
  int flag = 0, fin = 0;
  MPI_Initialized(&flag);
  MPI_Finalized(&fin);
  if (!flag || fin) return 0;
  return report(MPI_Finalize(), "MPI_Finalize", err, errlen);
}

void comm_abort(int code, const char* msg) {
  if (msg && *msg) std::fprintf(stderr, "%s\n", msg);
  std::fflush(stderr);
  int flag = 0, fin = 0;
  MPI_Initialized(&flag);
  MPI_Finalized(&fin);
  if (flag && !fin) MPI_Abort(MPI_COMM_WORLD, code);
  std::_Exit(code);
}

KwCommApi make_api() {
  char v[MPI_MAX_LIBRARY_VERSION_STRING];
  int len = 0;
  MPI_Get_library_version(v, &len);  // callable before MPI_Init
  version_line.assign(v, size_t(len));
  version_line = version_line.substr(0, version_line.find_first_of("\n,"));
  KwCommApi a{};
  a.abi = KW_COMM_ABI;
  a.name = "mpi";
  a.version = version_line.c_str();
  a.init = comm_init;
  a.allreduce_f32 = comm_allreduce;
  a.broadcast = comm_broadcast;
  a.allgather_f32 = comm_allgather;
  a.gather_f32 = comm_gather;
  a.barrier = comm_barrier;
  a.finalize = comm_finalize;
  a.abort = comm_abort;
  return a;
}

}  // namespace

// The MPI table, also used by nccl.cpp for bootstrapping and host-memory collectives.
const KwCommApi* kw_comm_mpi_api() {
  static const KwCommApi api = make_api();
  return &api;
}

#ifndef KW_COMM_EMBEDDED  // nccl.cpp exports its own table
extern "C" __attribute__((visibility("default"))) const KwCommApi* kw_comm_api(void) { return kw_comm_mpi_api(); }
#endif
