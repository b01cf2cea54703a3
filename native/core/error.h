// Errors raised by native code. Kernels throw KwError; the binding turns it into a JS Error,
// so a bad argument never reaches memory and never crashes the process.
#pragma once
#include <sstream>
#include <stdexcept>
#include <string>

namespace kw {

struct KwError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

template <typename... Parts>
[[noreturn]] void fail(const Parts&... parts) {
  std::ostringstream os;
  (os << ... << parts);
  throw KwError(os.str());
}

}  // namespace kw

#define KW_CHECK(cond, ...)                  \
  do {                                       \
    if (!(cond)) ::kw::fail(__VA_ARGS__);    \
  } while (0)
