// Errors: one exception type that carries its context (file, tensor, field) so the CLI can print one
// line and exit non-zero. Loaders check every size and offset before touching memory and throw this.
#pragma once
#include <fmt/format.h>

#include <stdexcept>
#include <string>

namespace qb {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

// Throws qb::Error with a fmt-formatted message.
template <typename... Args>
[[noreturn]] void fail(fmt::format_string<Args...> f, Args&&... args) {
  throw Error(fmt::format(f, std::forward<Args>(args)...));
}

// Re-throws `e` with `context` prefixed ("file.gguf: tensor 'x': ..."), keeping one line.
[[noreturn]] inline void rethrow_with_context(const std::exception& e, const std::string& context) {
  throw Error(context + ": " + e.what());
}

}  // namespace qb

// Checks an invariant on untrusted input; the message says what was wrong.
#define QB_CHECK(cond, ...)                       \
  do {                                            \
    if (!(cond)) ::qb::fail(__VA_ARGS__);         \
  } while (0)
