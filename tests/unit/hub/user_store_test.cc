#include "hub/user_store.h"

#include <gtest/gtest.h>

#include <optional>
#include <string>

#include "hub/agent_store.h"
#include "hub/schema.h"
#include "tests/unit/hub/hub_test_util.h"

namespace tg::hub {
namespace {

class UserStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = UserStore::open(dir.file("hub.db"));
    ASSERT_TRUE(s.ok()) << s.status().to_string();
    store.emplace(std::move(s.value()));
  }
  testing::TempDir dir;
  std::optional<UserStore> store;
};

TEST_F(UserStoreTest, SharesOneSchemaVersionWithTheAgentRegistry) {
  auto agents = AgentStore::open(dir.file("hub.db"));
  ASSERT_TRUE(agents.ok());
  EXPECT_EQ(*store->db().user_version(), static_cast<int64_t>(migrations().size()));
  EXPECT_EQ(*agents->db().user_version(), static_cast<int64_t>(migrations().size()));
}

TEST_F(UserStoreTest, TokenIsRandomAndOnlyItsHashIsStored) {
  ASSERT_TRUE(store->add_user("alice", 1).ok());
  auto a = store->create_token("alice", 2);
  auto b = store->create_token("alice", 3);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_TRUE(is_user_token(a->token)) << a->token;
  EXPECT_EQ(a->token.size(), 70u);
  EXPECT_NE(a->token, b->token);
  auto st = store->db().prepare("SELECT token_sha256, hint FROM user_tokens WHERE id = ?");
  ASSERT_TRUE(st.ok());
  ASSERT_TRUE(st->bind_int64(1, a->id).ok());
  ASSERT_EQ(*st->step(), sqlite::Step::row);
  EXPECT_EQ(st->column_text(0).size(), 64u);
  EXPECT_EQ(st->column_text(0).find(a->token.substr(6, 16)), std::string::npos);
  EXPECT_EQ(st->column_text(1), "sk-tg-..." + a->token.substr(66));
}

TEST_F(UserStoreTest, AuthenticateFindsTheOwner) {
  ASSERT_TRUE(store->add_user("alice", 1).ok());
  auto t = store->create_token("alice", 2);
  ASSERT_TRUE(t.ok());
  auto who = store->authenticate(t->token);
  ASSERT_TRUE(who.ok());
  ASSERT_TRUE(who->has_value());
  EXPECT_EQ((*who)->user, "alice");
  EXPECT_EQ((*who)->token_id, t->id);
  std::string wrong = t->token;
  wrong.back() = wrong.back() == '0' ? '1' : '0';
  EXPECT_FALSE(store->authenticate(wrong)->has_value());
  EXPECT_FALSE(store->authenticate("sk-other")->has_value());
  EXPECT_FALSE(store->authenticate("")->has_value());
}

TEST_F(UserStoreTest, RevocationByAnotherConnectionIsSeenAtOnce) {
  ASSERT_TRUE(store->add_user("alice", 1).ok());
  auto t = store->create_token("alice", 2);
  ASSERT_TRUE(t.ok());
  ASSERT_TRUE(store->authenticate(t->token)->has_value());  // now cached
  auto cli = UserStore::open(dir.file("hub.db"), false);
  ASSERT_TRUE(cli.ok());
  bool changed = false;
  auto rec = cli->revoke_token(std::to_string(t->id), 5, &changed);
  ASSERT_TRUE(rec.ok()) << rec.status().to_string();
  EXPECT_TRUE(changed);
  EXPECT_EQ(rec->revoked_at_ms, 5);
  EXPECT_FALSE(store->authenticate(t->token)->has_value());
}

TEST_F(UserStoreTest, RevokeByTokenTwiceReportsNoChange) {
  ASSERT_TRUE(store->add_user("alice", 1).ok());
  auto t = store->create_token("alice", 2);
  ASSERT_TRUE(t.ok());
  bool changed = false;
  ASSERT_TRUE(store->revoke_token(t->token, 3, &changed).ok());
  EXPECT_TRUE(changed);
  ASSERT_TRUE(store->revoke_token(t->token, 4, &changed).ok());
  EXPECT_FALSE(changed);
  EXPECT_FALSE(store->authenticate(t->token)->has_value());
  EXPECT_EQ(store->revoke_token("999", 5).status().code(), Errc::not_found);
  EXPECT_EQ(store->revoke_token("garbage", 5).status().code(), Errc::invalid_argument);
}

TEST_F(UserStoreTest, UsersAndTokensAreListed) {
  ASSERT_TRUE(store->add_user("bob", 1).ok());
  ASSERT_TRUE(store->add_user("alice", 1).ok());
  EXPECT_EQ(store->add_user("alice", 1).status().code(), Errc::invalid_argument);
  EXPECT_EQ(store->add_user("bad name", 1).status().code(), Errc::invalid_argument);
  auto t1 = store->create_token("alice", 2);
  auto t2 = store->create_token("alice", 3);
  ASSERT_TRUE(t1.ok() && t2.ok());
  ASSERT_TRUE(store->revoke_token(std::to_string(t1->id), 4).ok());
  auto users = store->list_users();
  ASSERT_TRUE(users.ok());
  ASSERT_EQ(users->size(), 2u);
  EXPECT_EQ((*users)[0].name, "alice");
  EXPECT_EQ((*users)[0].active_tokens, 1);
  auto tokens = store->list_tokens("alice");
  ASSERT_TRUE(tokens.ok());
  ASSERT_EQ(tokens->size(), 2u);
  EXPECT_EQ((*tokens)[0].id, t2->id);
  EXPECT_FALSE((*tokens)[0].revoked_at_ms.has_value());
  EXPECT_EQ((*tokens)[1].revoked_at_ms, 4);
  EXPECT_EQ(store->create_token("carol", 5).status().code(), Errc::not_found);
  EXPECT_EQ(store->list_tokens("carol").status().code(), Errc::not_found);
}

}  // namespace
}  // namespace tg::hub
