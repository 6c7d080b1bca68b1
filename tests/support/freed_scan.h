// Finds copies of a secret left in freed memory. Linking freed_scan.cc into a
// test program replaces its global operator new and delete: every block
// freed through operator delete while the scan is armed is searched for the
// needle. Only for a test program of its own (the replacement applies to the
// whole program), and only blocks of operator new are seen: not malloc's
// (mbedTLS, SQLite, libuv), not a std::string's inline buffer.
#pragma once

#include <cstddef>
#include <string_view>

namespace tg::test::freed_scan {

// Starts counting frees of blocks holding `needle` (which must stay valid
// until disarm) and resets the count.
void arm(std::string_view needle) noexcept;
// The count since arm(), armed or not.
size_t hits() noexcept;
// Stops counting; returns the count since arm().
size_t disarm() noexcept;

}  // namespace tg::test::freed_scan
