// Finds and opens libkw_cuda.so (see device.h). The outcome, success or the reason for
// failure, is decided once and cached: every later CUDA request gets the same answer.
#include "core/device.h"

#include <dlfcn.h>
#include <sys/stat.h>

#include <cstdlib>
#include <mutex>

#include "core/error.h"

namespace kw {
namespace {

thread_local Device g_current = Device::CPU;

std::string dir_of_this_addon() {
  Dl_info info{};
  if (dladdr(reinterpret_cast<void*>(&cuda_library_path), &info) && info.dli_fname) {
    std::string p = info.dli_fname;
    auto slash = p.rfind('/');
    return slash == std::string::npos ? "." : p.substr(0, slash);
  }
  return ".";
}

struct Loaded {
  const DeviceRuntime* rt = nullptr;
  std::string error;
};

Loaded load() {
  Loaded r;
#ifndef KW_CUDA_BUILT
  // The library may still exist (KW_CUDA_LIB): a CPU-only addon honours an explicit path.
  if (!std::getenv("KW_CUDA_LIB")) {
    r.error = "device 'cuda' is not available: kernelwarehouse was built without CUDA "
              "(install the CUDA toolkit so nvcc is found, then rebuild: npx cmake-js compile --CDKW_CUDA=ON)";
    return r;
  }
#endif
  std::string path = cuda_library_path();
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) {
    r.error = "device 'cuda' is not available: libkw_cuda.so not found at " + path +
              " (rebuild with nvcc installed: npx cmake-js compile --CDKW_CUDA=ON, or set KW_CUDA_LIB)";
    return r;
  }
  // RTLD_LOCAL: the library's own symbols (static cudart) stay out of the global namespace.
  void* h = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!h) {
    r.error = std::string("device 'cuda' is not available: cannot load ") + path + ": " + dlerror();
    return r;
  }
  auto entry = reinterpret_cast<KwCudaEntry>(dlsym(h, "kw_cuda_runtime"));
  if (!entry) {
    r.error = "device 'cuda' is not available: " + path + " has no kw_cuda_runtime (not a kernelwarehouse CUDA backend)";
    return r;
  }
  char err[512] = {0};
  const DeviceRuntime* rt = entry(err, sizeof err);
  if (!rt) {
    r.error = std::string("device 'cuda' is not available: ") + err;
    return r;  // keep the library open: unloading CUDA's runtime mid-process is not safe
  }
  if (rt->abi != kDeviceAbi) {
    r.error = "device 'cuda' is not available: " + path + " speaks ABI " + std::to_string(rt->abi) +
              ", this addon " + std::to_string(kDeviceAbi) + " (rebuild both together)";
    return r;
  }
  r.rt = rt;
  return r;
}

const Loaded& loaded() {
  static Loaded l = load();  // thread-safe one-time initialisation
  return l;
}

}  // namespace

bool cuda_built() {
#ifdef KW_CUDA_BUILT
  return true;
#else
  return false;
#endif
}

std::string cuda_library_path() {
  if (const char* p = std::getenv("KW_CUDA_LIB")) return p;
  return dir_of_this_addon() + "/libkw_cuda.so";
}

const DeviceRuntime& cuda_runtime() {
  const Loaded& l = loaded();
  if (!l.rt) throw KwError(l.error);
  return *l.rt;
}

bool cuda_available(std::string* why) {
  const Loaded& l = loaded();
  if (!l.rt && why) *why = l.error;
  return l.rt != nullptr;
}

Device current_device() { return g_current; }
void set_current_device(Device d) { g_current = d; }

}  // namespace kw
