// Element types a storage can hold. Math kernels run on float32; the integer types carry
// labels, indices and raw image bytes.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

#include "core/error.h"

namespace kw {

enum class DType : int { F32 = 0, I32 = 1, I64 = 2, U8 = 3 };

inline size_t dtype_size(DType t) {
  switch (t) {
    case DType::F32: return 4;
    case DType::I32: return 4;
    case DType::I64: return 8;
    case DType::U8: return 1;
  }
  return 0;
}

inline const char* dtype_name(DType t) {
  switch (t) {
    case DType::F32: return "float32";
    case DType::I32: return "int32";
    case DType::I64: return "int64";
    case DType::U8: return "uint8";
  }
  return "?";
}

inline DType dtype_from_name(const std::string& s) {
  if (s == "float32") return DType::F32;
  if (s == "int32") return DType::I32;
  if (s == "int64") return DType::I64;
  if (s == "uint8") return DType::U8;
  fail("unknown dtype '", s, "' (expected float32, int32, int64 or uint8)");
}

}  // namespace kw
