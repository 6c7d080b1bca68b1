#include "shared/core/secret.h"

#include <gtest/gtest.h>

#include <sstream>
#include <string>
#include <type_traits>

namespace tg {
namespace {

template <typename T, typename = void>
struct Streamable : std::false_type {};
template <typename T>
struct Streamable<T, std::void_t<decltype(std::declval<std::ostream&>() << std::declval<const T&>())>>
    : std::true_type {};

// The type itself refuses every way into a log line.
static_assert(!Streamable<Secret>::value, "a Secret must not be streamable");
static_assert(!std::is_convertible_v<Secret, std::string>, "no implicit string");
static_assert(!std::is_convertible_v<Secret, std::string_view>, "no implicit view");
static_assert(!std::is_convertible_v<Secret, const char*>, "no implicit char*");
static_assert(!std::is_copy_constructible_v<Secret>, "not copyable");
static_assert(!std::is_trivially_copyable_v<Secret>, "cannot pass through printf varargs");

TEST(Secret, HoldsBytesUntilRevealed) {
  Secret s("sk-test-123");
  EXPECT_EQ(s.size(), 11u);
  EXPECT_EQ(s.reveal(), "sk-test-123");
}

TEST(Secret, ConstantTimeEquality) {
  Secret s("abc");
  EXPECT_TRUE(s.equals("abc"));
  EXPECT_FALSE(s.equals("abd"));
  EXPECT_FALSE(s.equals("ab"));
}

TEST(Secret, MoveLeavesSourceEmpty) {
  Secret a("key");
  Secret b(std::move(a));
  EXPECT_TRUE(a.empty());  // NOLINT(bugprone-use-after-move): the contract under test
  EXPECT_EQ(b.reveal(), "key");
  Secret c;
  c = std::move(b);
  EXPECT_EQ(c.reveal(), "key");
}

TEST(Secret, EmptyIsFine) {
  Secret s;
  EXPECT_TRUE(s.empty());
  EXPECT_TRUE(s.equals(""));
}

}  // namespace
}  // namespace tg
