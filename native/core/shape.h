// Shapes of contiguous row-major tensors, and the checked arithmetic on them.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "core/error.h"

namespace kw {

using Shape = std::vector<int64_t>;

// Largest element count we accept: keeps every byte size well inside int64/size_t.
constexpr int64_t kMaxNumel = int64_t(1) << 40;

inline int64_t numel(const Shape& s) {
  int64_t n = 1;
  for (int64_t d : s) {
    KW_CHECK(d >= 0, "negative dimension ", d);
    if (d != 0 && n > kMaxNumel / d) fail("tensor too large");
    n *= d;
  }
  return n;
}

inline std::string shape_str(const Shape& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); i++) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

inline Shape contiguous_strides(const Shape& s) {
  Shape st(s.size());
  int64_t acc = 1;
  for (size_t i = s.size(); i-- > 0;) {
    st[i] = acc;
    acc *= s[i];
  }
  return st;
}

// numpy-style broadcast of two shapes; throws naming both shapes when they do not fit.
inline Shape broadcast_shapes(const Shape& a, const Shape& b) {
  size_t n = std::max(a.size(), b.size());
  Shape out(n);
  for (size_t i = 0; i < n; i++) {
    int64_t da = i < n - a.size() ? 1 : a[i - (n - a.size())];
    int64_t db = i < n - b.size() ? 1 : b[i - (n - b.size())];
    KW_CHECK(da == db || da == 1 || db == 1, "shapes ", shape_str(a), " and ", shape_str(b),
             " cannot be broadcast together");
    out[i] = da == 1 ? db : da;
  }
  return out;
}

}  // namespace kw
