// Shared by the fuzz targets: an invariant check that fires in every build (assert is gone under NDEBUG,
// and the regression runners are built in Release too), and a reader of the few knobs a target takes from the
// front of its input.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

// Aborts with the failed condition: libFuzzer saves the input as a crash, and ctest fails the regression run.
#define FUZZ_CHECK(cond)                                                     \
  do {                                                                       \
    if (!(cond)) ::pooler::fuzz::check_failed(#cond, __FILE__, __LINE__);    \
  } while (false)

namespace pooler::fuzz {

[[noreturn]] inline void check_failed(const char* what, const char* file, int line) {
  std::fprintf(stderr, "%s:%d: fuzz invariant failed: %s\n", file, line, what);
  std::abort();
}

inline std::string_view as_view(const std::uint8_t* data, std::size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

// Consumes an input from the front. Reads past the end yield zeros, so every input is usable.
class Input {
 public:
  explicit Input(std::string_view data) : data_(data) {}

  std::uint8_t byte() {
    if (data_.empty()) return 0;
    auto b = static_cast<std::uint8_t>(data_.front());
    data_.remove_prefix(1);
    return b;
  }
  std::uint64_t u64() {
    std::uint64_t v = 0;
    for (int i = 0; i < 8; ++i) v = (v << 8) | byte();
    return v;
  }
  // Up to the next NUL, which is consumed; everything left when there is none.
  std::string_view until_nul() {
    auto nul = data_.find('\0');
    auto part = data_.substr(0, nul);
    data_.remove_prefix(nul == std::string_view::npos ? data_.size() : nul + 1);
    return part;
  }
  std::string_view rest() {
    auto all = data_;
    data_ = {};
    return all;
  }

 private:
  std::string_view data_;
};

// A small deterministic generator (splitmix64) for choices the fuzzer steers through a seed in its input.
class Rng {
 public:
  explicit Rng(std::uint64_t seed) : state_(seed) {}
  std::uint64_t next() {
    std::uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  // Uniform enough in [0, n); n > 0.
  std::size_t below(std::size_t n) { return static_cast<std::size_t>(next() % n); }

 private:
  std::uint64_t state_;
};

}  // namespace pooler::fuzz
