// Owning wrapper for a heap-allocated libuv handle: destroying it starts uv_close, and the memory is freed
// in the close callback, so the owning object may be destroyed at once without waiting for libuv.
#pragma once

#include <uv.h>

#include <utility>

namespace pooler::daemon {

template <class H>
class UvHandle {
 public:
  UvHandle() = default;
  explicit UvHandle(H* h) : h_(h) {}
  UvHandle(const UvHandle&) = delete;
  UvHandle& operator=(const UvHandle&) = delete;
  UvHandle(UvHandle&& o) noexcept : h_(std::exchange(o.h_, nullptr)) {}
  UvHandle& operator=(UvHandle&& o) noexcept {
    if (this != &o) {
      reset();
      h_ = std::exchange(o.h_, nullptr);
    }
    return *this;
  }
  ~UvHandle() { reset(); }

  // Allocates the handle; the caller runs uv_*_init on get() right after. If init fails, call abandon().
  static UvHandle make() { return UvHandle(new H{}); }

  H* get() const { return h_; }
  H* operator->() const { return h_; }
  explicit operator bool() const { return h_ != nullptr; }

  // Closes the handle (if any). Callbacks already queued see data == nullptr and do nothing.
  void reset() {
    if (h_ == nullptr) return;
    H* h = std::exchange(h_, nullptr);
    h->data = nullptr;
    uv_close(reinterpret_cast<uv_handle_t*>(h), [](uv_handle_t* p) { delete reinterpret_cast<H*>(p); });
  }

  // For a handle whose uv_*_init failed: never initialised, so it must not go through uv_close.
  void abandon() { delete std::exchange(h_, nullptr); }

 private:
  H* h_ = nullptr;
};

}  // namespace pooler::daemon
