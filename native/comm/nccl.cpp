// libkw_comm_nccl.so: the NCCL implementation of the communication table (comm_api.h), built
// only where NCCL, the CUDA runtime and MPI are found. MPI starts the job and broadcasts the
// NCCL unique id; each rank drives the GPU local_rank % devices. Collectives on device memory
// go through NCCL on a private stream; host memory (eval results, resume metadata) through MPI.
// Not exercised on the CPU-only build machine: only a single-rank run on a GPU machine has
// checked it (see README, "Distributed training").
#include <cuda_runtime.h>
#include <mpi.h>
#include <nccl.h>

#include <cstdio>

#include "comm_api.h"

const KwCommApi* kw_comm_mpi_api();  // mpi.cpp, compiled into this library

namespace {

ncclComm_t comm = nullptr;
cudaStream_t stream = nullptr;

bool on_device(const void* p) {
  cudaPointerAttributes a{};
  if (cudaPointerGetAttributes(&a, p) != cudaSuccess) {
    cudaGetLastError();  // a plain host pointer on older runtimes: clear the sticky error
    return false;
  }
  return a.type == cudaMemoryTypeDevice || a.type == cudaMemoryTypeManaged;
}

int nccl_report(ncclResult_t r, const char* what, char* err, int errlen) {
  if (r == ncclSuccess) return 0;
  std::snprintf(err, size_t(errlen), "%s failed: %s", what, ncclGetErrorString(r));
  return 1;
}

int cuda_report(cudaError_t r, const char* what, char* err, int errlen) {
  if (r == cudaSuccess) return 0;
  std::snprintf(err, size_t(errlen), "%s failed: %s", what, cudaGetErrorString(r));
  return 1;
}

int sync(char* err, int errlen) { return cuda_report(cudaStreamSynchronize(stream), "cudaStreamSynchronize", err, errlen); }

int init(int* rank, int* size, int* local_rank, int* local_size, char* err, int errlen) {
  if (kw_comm_mpi_api()->init(rank, size, local_rank, local_size, err, errlen)) return 1;
  if (comm) return 0;
  int devices = 0;
  if (cuda_report(cudaGetDeviceCount(&devices), "cudaGetDeviceCount", err, errlen)) return 1;
  if (devices < 1) {
    std::snprintf(err, size_t(errlen), "NCCL: no CUDA device visible");
    return 1;
  }
  if (cuda_report(cudaSetDevice(*local_rank % devices), "cudaSetDevice", err, errlen)) return 1;
  ncclUniqueId id;
  if (*rank == 0 && nccl_report(ncclGetUniqueId(&id), "ncclGetUniqueId", err, errlen)) return 1;
  if (kw_comm_mpi_api()->broadcast(&id, sizeof id, 0, err, errlen)) return 1;
  if (nccl_report(ncclCommInitRank(&comm, *size, id, *rank), "ncclCommInitRank", err, errlen)) return 1;
  return cuda_report(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), "cudaStreamCreate", err, errlen);
}

int allreduce(float* data, int64_t n, int average, char* err, int errlen) {
  if (!on_device(data)) return kw_comm_mpi_api()->allreduce_f32(data, n, average, err, errlen);
  if (nccl_report(ncclAllReduce(data, data, size_t(n), ncclFloat, average ? ncclAvg : ncclSum, comm, stream),
                  "ncclAllReduce", err, errlen))
    return 1;
  return sync(err, errlen);
}

int broadcast(void* data, int64_t bytes, int root, char* err, int errlen) {
  if (!on_device(data)) return kw_comm_mpi_api()->broadcast(data, bytes, root, err, errlen);
  if (nccl_report(ncclBroadcast(data, data, size_t(bytes), ncclUint8, root, comm, stream), "ncclBroadcast", err, errlen))
    return 1;
  return sync(err, errlen);
}

int allgather(const float* in, int64_t n, float* out, char* err, int errlen) {
  if (!on_device(in)) return kw_comm_mpi_api()->allgather_f32(in, n, out, err, errlen);
  if (nccl_report(ncclAllGather(in, out, size_t(n), ncclFloat, comm, stream), "ncclAllGather", err, errlen)) return 1;
  return sync(err, errlen);
}

// eval results are a few host floats: gather stays on MPI
int gather(const float* in, int64_t n, float* out, int root, char* err, int errlen) {
  return kw_comm_mpi_api()->gather_f32(in, n, out, root, err, errlen);
}

int barrier(char* err, int errlen) { return kw_comm_mpi_api()->barrier(err, errlen); }

int finalize(char* err, int errlen) {
  if (comm) {
    ncclCommDestroy(comm);
    comm = nullptr;
  }
  if (stream) {
    cudaStreamDestroy(stream);
    stream = nullptr;
  }
  return kw_comm_mpi_api()->finalize(err, errlen);
}

void abort_job(int code, const char* msg) {
  if (comm) ncclCommAbort(comm);
  kw_comm_mpi_api()->abort(code, msg);
}

KwCommApi make_api() {
  static char version[64];
  int v = 0;
  ncclGetVersion(&v);
  std::snprintf(version, sizeof version, "NCCL %d.%d.%d over %s", v / 10000, (v / 100) % 100, v % 100,
                kw_comm_mpi_api()->version);
  KwCommApi a{};
  a.abi = KW_COMM_ABI;
  a.name = "nccl";
  a.version = version;
  a.init = init;
  a.allreduce_f32 = allreduce;
  a.broadcast = broadcast;
  a.allgather_f32 = allgather;
  a.gather_f32 = gather;
  a.barrier = barrier;
  a.finalize = finalize;
  a.abort = abort_job;
  return a;
}

}  // namespace

extern "C" __attribute__((visibility("default"))) const KwCommApi* kw_comm_api(void) {
  static const KwCommApi api = make_api();
  return &api;
}
