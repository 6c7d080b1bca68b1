#include "shared/core/secret.h"

#include <sodium.h>

#include <cstdlib>
#include <cstring>

namespace tg {

Secret::Secret(std::string_view bytes) {
  if (bytes.empty()) return;
  if (sodium_init() < 0) std::abort();
  data_ = sodium_malloc(bytes.size());
  if (!data_) std::abort();  // out of memory for secrets: nothing sane to do
  std::memcpy(data_, bytes.data(), bytes.size());
  size_ = bytes.size();
  sodium_mprotect_readonly(data_);
}

Secret::~Secret() {
  if (data_) sodium_free(data_);  // wipes before unmapping
}

Secret::Secret(Secret&& other) noexcept : data_(other.data_), size_(other.size_) {
  other.data_ = nullptr;
  other.size_ = 0;
}

Secret& Secret::operator=(Secret&& other) noexcept {
  if (this != &other) {
    if (data_) sodium_free(data_);
    data_ = other.data_;
    size_ = other.size_;
    other.data_ = nullptr;
    other.size_ = 0;
  }
  return *this;
}

bool Secret::equals(std::string_view other) const noexcept {
  if (other.size() != size_) return false;
  if (size_ == 0) return true;
  return sodium_memcmp(data_, other.data(), size_) == 0;
}

}  // namespace tg
