/* OpenBLAS sgemm reference for bench/bench.ts: plain C, multi-threaded OpenBLAS on all cores.
 * Build: cc -O2 bench/gemm_ref.c -o gemm_ref -I/usr/include/x86_64-linux-gnu/openblas-pthread -lopenblas
 * Usage: gemm_ref REPS N...   prints "threads T", then "N median_ms cores" per size, where
 * cores = process CPU time / wall time over the timed runs. */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int cmp(const void* a, const void* b) {
  double x = *(const double*)a, y = *(const double*)b;
  return x < y ? -1 : x > y;
}

int main(int argc, char** argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: %s REPS N...\n", argv[0]);
    return 2;
  }
  int reps = atoi(argv[1]);
  if (reps < 1 || reps > 1000) return 2;
  printf("threads %d\n", openblas_get_num_threads());
  for (int a = 2; a < argc; a++) {
    int n = atoi(argv[a]);
    if (n < 1 || n > 16384) return 2;
    size_t nn = (size_t)n * n;
    float *A = malloc(nn * sizeof(float)), *B = malloc(nn * sizeof(float)), *C = malloc(nn * sizeof(float));
    double* t = malloc(reps * sizeof(double));
    if (!A || !B || !C || !t) return 1;
    for (size_t i = 0; i < nn; i++) {
      A[i] = (float)((i * 7919) % 1000) / 1000.f - 0.5f;
      B[i] = (float)((i * 104729) % 1000) / 1000.f - 0.5f;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.f, A, n, B, n, 0.f, C, n); /* warm-up */
    double wall = 0;
    clock_t c0 = clock();
    for (int r = 0; r < reps; r++) {
      double t0 = now_ms();
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.f, A, n, B, n, 0.f, C, n);
      t[r] = now_ms() - t0;
      wall += t[r];
    }
    double cpu_ms = (double)(clock() - c0) * 1e3 / CLOCKS_PER_SEC;
    qsort(t, reps, sizeof(double), cmp);
    double med = t[reps / 2];
    printf("%d %.3f %.2f\n", n, med, cpu_ms / wall);
    free(A), free(B), free(C), free(t);
  }
  return 0;
}
