// The global operator new/delete of the programs that link it (freed_scan.h).
#include "tests/support/freed_scan.h"

#include <cstdlib>
#include <cstring>
#include <new>

namespace {

// Every block starts with its size; 16 bytes keep malloc's alignment.
constexpr size_t kBlockHeader = 16;

bool g_armed = false;
std::string_view g_needle;
size_t g_hits = 0;

void* allocate(size_t n) {
  void* base = std::malloc(n + kBlockHeader);
  if (!base) std::abort();  // a test program: out of memory ends it
  std::memcpy(base, &n, sizeof n);
  return static_cast<char*>(base) + kBlockHeader;
}

void release(void* p) noexcept {
  if (!p) return;
  char* base = static_cast<char*>(p) - kBlockHeader;
  size_t n = 0;
  std::memcpy(&n, base, sizeof n);
  if (g_armed && !g_needle.empty() &&
      std::string_view(static_cast<const char*>(p), n).find(g_needle) != std::string_view::npos) {
    ++g_hits;
  }
  std::free(base);
}

}  // namespace

// Every form that pairs with the plain deletes is replaced, the nothrow
// news included (std::stable_sort's temporary buffer uses one and frees it
// with a sized delete): a block from another allocator (ASan's, say) given
// to release() would be read before its start. The aligned forms are left
// to the runtime as a family of their own.
void* operator new(std::size_t n) { return allocate(n); }
void* operator new[](std::size_t n) { return allocate(n); }
void* operator new(std::size_t n, const std::nothrow_t&) noexcept { return allocate(n); }
void* operator new[](std::size_t n, const std::nothrow_t&) noexcept { return allocate(n); }
void operator delete(void* p) noexcept { release(p); }
void operator delete[](void* p) noexcept { release(p); }
void operator delete(void* p, std::size_t) noexcept { release(p); }
void operator delete[](void* p, std::size_t) noexcept { release(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { release(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { release(p); }

namespace tg::test::freed_scan {

void arm(std::string_view needle) noexcept {
  g_needle = needle;
  g_hits = 0;
  g_armed = true;
}

size_t hits() noexcept { return g_hits; }

size_t disarm() noexcept {
  g_armed = false;
  g_needle = {};
  return g_hits;
}

}  // namespace tg::test::freed_scan
