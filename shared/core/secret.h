// Secret: bytes that must never be printed (vendor keys, private keys, tokens).
// Held in libsodium guarded memory (mlock'ed where the OS allows), wiped on
// destruction. Not copyable, not streamable, not convertible to a string: the
// only way to the bytes is the explicitly named reveal().
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace tg {

class Secret {
 public:
  Secret() noexcept = default;
  // Copies `bytes` into guarded memory. Callers wipe their own copy.
  explicit Secret(std::string_view bytes);
  ~Secret();
  Secret(Secret&& other) noexcept;
  Secret& operator=(Secret&& other) noexcept;
  Secret(const Secret&) = delete;
  Secret& operator=(const Secret&) = delete;

  bool empty() const noexcept { return size_ == 0; }
  size_t size() const noexcept { return size_; }
  // The raw bytes; valid while this Secret lives. Never pass them to a log.
  std::string_view reveal() const noexcept {
    return std::string_view(static_cast<const char*>(data_), size_);
  }
  const uint8_t* bytes() const noexcept { return static_cast<const uint8_t*>(data_); }
  // Constant-time equality.
  bool equals(std::string_view other) const noexcept;

 private:
  void* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace tg
