// The C ABI between the addon and an optional communication library (libkw_comm_mpi.so, and
// libkw_comm_nccl.so where NCCL is found). The addon dlopens the library at run time, so it
// loads on machines without MPI; only this plain-C table crosses the boundary (no C++ types,
// no N-API), so the library and the addon need not share a compiler or a runtime.
// Every function returns 0 on success, else non-zero with a message in err[0..errlen).
#pragma once
#include <stdint.h>

#define KW_COMM_ABI 1

extern "C" {

typedef struct KwCommApi {
  int abi;               // KW_COMM_ABI of the library; the addon refuses a different one
  const char* name;      // "mpi" or "nccl"
  const char* version;   // the engine's version string (MPI_Get_library_version's first line)
  // Starts the engine (MPI_Init_thread, FUNNELED: only the JS main thread calls in).
  int (*init)(int* rank, int* size, int* local_rank, int* local_size, char* err, int errlen);
  // In-place sum over all ranks (divided by the world size when average != 0).
  int (*allreduce_f32)(float* data, int64_t n, int average, char* err, int errlen);
  // Rank root's bytes replace everyone else's.
  int (*broadcast)(void* data, int64_t bytes, int root, char* err, int errlen);
  // out (size·n floats) receives every rank's n floats in rank order, on every rank.
  int (*allgather_f32)(const float* in, int64_t n, float* out, char* err, int errlen);
  // As allgather, but only rank root's out is written (others may pass null).
  int (*gather_f32)(const float* in, int64_t n, float* out, int root, char* err, int errlen);
  int (*barrier)(char* err, int errlen);
  int (*finalize)(char* err, int errlen);
  // Stops every rank of the job (MPI_Abort) after printing msg on stderr; does not return.
  void (*abort)(int code, const char* msg);
} KwCommApi;

// The one exported symbol of a communication library.
const KwCommApi* kw_comm_api(void);
}
