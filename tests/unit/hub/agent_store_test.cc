#include "hub/agent_store.h"
#include "hub/schema.h"

#include <unistd.h>

#include <atomic>
#include <thread>

#include <gtest/gtest.h>

#include "shared/crypto/ed25519.h"
#include "shared/crypto/hash.h"
#include "tests/unit/temp_dir.h"

namespace tg::hub {
namespace {

constexpr int64_t kT0 = 1700000000000;  // a fixed "now" in unix ms
constexpr int64_t kHour = 3600 * 1000;

std::string new_key() { return crypto::KeyPair::generate().public_base64(); }

class AgentStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = dir_ + "/registry.db";
    store_ = open_store();
  }
  void TearDown() override {
    store_.reset();
  }
  std::unique_ptr<AgentStore> open_store() {
    auto s = AgentStore::open(path_);
    EXPECT_TRUE(s.ok()) << s.status().to_string();
    if (!s.ok()) return nullptr;
    return std::make_unique<AgentStore>(std::move(s).value());
  }
  std::vector<AgentEvent> events(int64_t after = 0) {
    auto e = store_->events_since(after);
    EXPECT_TRUE(e.ok()) << e.status().to_string();
    return e.ok() ? *e : std::vector<AgentEvent>();
  }
  AgentRecord must_lookup(const std::string& key) {
    auto r = store_->lookup(key);
    EXPECT_TRUE(r.ok()) << r.status().to_string();
    EXPECT_TRUE(r.ok() && r->has_value());
    return r.ok() && r->has_value() ? **r : AgentRecord();
  }
  std::string token(const char* owner = "alice", int64_t tier = 900000) {
    auto t = store_->create_enroll_token(owner, tier, 24 * kHour, kT0);
    EXPECT_TRUE(t.ok()) << t.status().to_string();
    return t.ok() ? *t : "";
  }

  test::TempDir tmp_{"tg-hub"};
  std::string dir_ = tmp_.path();
  std::string path_;
  std::unique_ptr<AgentStore> store_;
};

TEST_F(AgentStoreTest, OpenWithoutCreateRefusesMissingFile) {
  auto s = AgentStore::open(dir_ + "/absent.db", false);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), Errc::not_found);
}

TEST_F(AgentStoreTest, ReopenKeepsDataAndSchemaVersion) {
  std::string key = new_key();
  ASSERT_TRUE(store_->approve(key, "alice", 1000000, kT0).ok());
  store_.reset();
  store_ = open_store();
  ASSERT_NE(store_, nullptr);
  EXPECT_EQ(*store_->db().user_version(), static_cast<int64_t>(migrations().size()));
  EXPECT_EQ(must_lookup(key).owner, "alice");
}

TEST_F(AgentStoreTest, ApproveCreatesRecordAndEvent) {
  std::string key = new_key();
  auto r = store_->approve(key, "alice", 850000, kT0);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(*r, ApproveOutcome::created);
  AgentRecord a = must_lookup(key);
  EXPECT_EQ(a.pubkey, key);
  EXPECT_EQ(a.owner, "alice");
  EXPECT_EQ(a.status, AgentStatus::approved);
  EXPECT_EQ(a.tier_ppm, 850000u);
  EXPECT_FALSE(a.first_seen_ms.has_value());
  EXPECT_FALSE(a.last_seen_ms.has_value());
  EXPECT_EQ(a.last_addr, "");
  EXPECT_EQ(a.created_at_ms, kT0);
  EXPECT_EQ(a.updated_at_ms, kT0);
  EXPECT_FALSE(a.online);
  auto ev = events();
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].pubkey, key);
  EXPECT_EQ(ev[0].kind, AgentEventKind::approved);
  EXPECT_EQ(ev[0].at_ms, kT0);
}

TEST_F(AgentStoreTest, ApproveRejectsAKeyThatIsNot32BytesOfBase64) {
  for (const char* bad : {"", "not base64!", "AAAA", "QUJD\n", "a2V5"}) {
    auto r = store_->approve(bad, "alice", 1000000, kT0);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().code(), Errc::invalid_argument);
    EXPECT_NE(r.status().message().find("32 bytes"), std::string::npos) << r.status().message();
  }
  std::string raw33(33, 'k');
  EXPECT_FALSE(store_->approve(crypto::base64_encode(raw33), "alice", 1000000, kT0).ok());
  EXPECT_TRUE(events().empty());
}

TEST_F(AgentStoreTest, ApproveRejectsBadOwnerAndTier) {
  std::string key = new_key();
  EXPECT_EQ(store_->approve(key, "bad owner", 1000000, kT0).status().code(), Errc::invalid_argument);
  EXPECT_EQ(store_->approve(key, "alice", 1000001, kT0).status().code(), Errc::invalid_argument);
  EXPECT_EQ(store_->approve(key, "alice", -1, kT0).status().code(), Errc::invalid_argument);
  auto r = store_->lookup(key);
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->has_value());
}

TEST_F(AgentStoreTest, ApproveTwiceWithSameValuesChangesNothing) {
  std::string key = new_key();
  ASSERT_TRUE(store_->approve(key, "alice", 1000000, kT0).ok());
  auto r = store_->approve(key, "alice", 1000000, kT0 + 5);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, ApproveOutcome::unchanged);
  EXPECT_EQ(events().size(), 1u);
  EXPECT_EQ(must_lookup(key).updated_at_ms, kT0);
}

TEST_F(AgentStoreTest, ApproveWithNewTierLogsTierEvent) {
  std::string key = new_key();
  ASSERT_TRUE(store_->approve(key, "alice", 1000000, kT0).ok());
  auto r = store_->approve(key, "alice", 500000, kT0 + 5);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, ApproveOutcome::tier_changed);
  EXPECT_EQ(must_lookup(key).tier_ppm, 500000u);
  auto ev = events();
  ASSERT_EQ(ev.size(), 2u);
  EXPECT_EQ(ev[1].kind, AgentEventKind::tier);
}

TEST_F(AgentStoreTest, ApproveForAnotherOwnerNeedsRevokeFirst) {
  std::string key = new_key();
  ASSERT_TRUE(store_->approve(key, "alice", 1000000, kT0).ok());
  auto r = store_->approve(key, "bob", 1000000, kT0);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Errc::permission);
  EXPECT_NE(r.status().message().find("'alice'"), std::string::npos);
  EXPECT_EQ(must_lookup(key).owner, "alice");
}

TEST_F(AgentStoreTest, NonCanonicalBase64NamesTheSameKey) {
  std::string key = new_key();
  ASSERT_TRUE(store_->approve(key, "alice", 1000000, kT0).ok());
  // The last base64 digit before '=' carries 2 unused bits; set one.
  static const std::string kAlphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string odd = key;
  odd[42] = kAlphabet[kAlphabet.find(odd[42]) | 1];
  auto r = store_->lookup(odd);
  if (r.ok()) {  // accepted: it must canonicalise to the stored key
    ASSERT_TRUE(r->has_value());
    EXPECT_EQ((*r)->pubkey, key);
  } else {
    EXPECT_EQ(r.status().code(), Errc::invalid_argument);
  }
}

TEST_F(AgentStoreTest, RevokeMarksRevokedAndLogsEvent) {
  std::string key = new_key();
  ASSERT_TRUE(store_->approve(key, "alice", 1000000, kT0).ok());
  auto r = store_->revoke(key, kT0 + 10);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_TRUE(*r);
  AgentRecord a = must_lookup(key);
  EXPECT_EQ(a.status, AgentStatus::revoked);
  EXPECT_EQ(a.updated_at_ms, kT0 + 10);
  auto ev = events();
  ASSERT_EQ(ev.size(), 2u);
  EXPECT_EQ(ev[1].kind, AgentEventKind::revoked);
  EXPECT_EQ(ev[1].pubkey, key);
  EXPECT_EQ(ev[1].at_ms, kT0 + 10);
}

TEST_F(AgentStoreTest, RevokeTwiceLogsOnce) {
  std::string key = new_key();
  ASSERT_TRUE(store_->approve(key, "alice", 1000000, kT0).ok());
  ASSERT_TRUE(*store_->revoke(key, kT0));
  auto r = store_->revoke(key, kT0);
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(*r);
  EXPECT_EQ(events().size(), 2u);
}

TEST_F(AgentStoreTest, RevokeUnknownKeyIsNotFound) {
  auto r = store_->revoke(new_key(), kT0);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Errc::not_found);
}

TEST_F(AgentStoreTest, ReapprovingARevokedKeyApprovesItAgain) {
  std::string key = new_key();
  ASSERT_TRUE(store_->approve(key, "alice", 1000000, kT0).ok());
  ASSERT_TRUE(store_->revoke(key, kT0).ok());
  auto r = store_->approve(key, "bob", 700000, kT0 + 1);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(*r, ApproveOutcome::reapproved);
  AgentRecord a = must_lookup(key);
  EXPECT_EQ(a.status, AgentStatus::approved);
  EXPECT_EQ(a.owner, "bob");
  EXPECT_EQ(a.tier_ppm, 700000u);
  EXPECT_EQ(a.created_at_ms, kT0);
  auto ev = events();
  ASSERT_EQ(ev.size(), 3u);
  EXPECT_EQ(ev[2].kind, AgentEventKind::approved);
}

TEST_F(AgentStoreTest, LookupOfUnknownKeyIsEmpty) {
  auto r = store_->lookup(new_key());
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->has_value());
}

TEST_F(AgentStoreTest, ListIsOrderedByOwnerAndShowsOnline) {
  std::string k1 = new_key(), k2 = new_key(), k3 = new_key();
  ASSERT_TRUE(store_->approve(k1, "carol", 1000000, kT0).ok());
  ASSERT_TRUE(store_->approve(k2, "alice", 1000000, kT0).ok());
  ASSERT_TRUE(store_->approve(k3, "bob", 1000000, kT0).ok());
  ASSERT_TRUE(store_->session_open(k3, "10.0.0.3:5000", 42, kT0).ok());
  auto l = store_->list();
  ASSERT_TRUE(l.ok()) << l.status().to_string();
  ASSERT_EQ(l->size(), 3u);
  EXPECT_EQ((*l)[0].owner, "alice");
  EXPECT_EQ((*l)[1].owner, "bob");
  EXPECT_EQ((*l)[2].owner, "carol");
  EXPECT_FALSE((*l)[0].online);
  EXPECT_TRUE((*l)[1].online);
  EXPECT_FALSE((*l)[2].online);
}

TEST_F(AgentStoreTest, ListOfEmptyRegistryIsEmpty) {
  auto l = store_->list();
  ASSERT_TRUE(l.ok());
  EXPECT_TRUE(l->empty());
}

TEST_F(AgentStoreTest, RecordSeenKeepsFirstAndUpdatesLast) {
  std::string key = new_key();
  ASSERT_TRUE(store_->approve(key, "alice", 1000000, kT0).ok());
  ASSERT_TRUE(store_->record_seen(key, "192.0.2.1:4000", kT0 + 1).ok());
  ASSERT_TRUE(store_->record_seen(key, "192.0.2.2:4001", kT0 + 2).ok());
  AgentRecord a = must_lookup(key);
  EXPECT_EQ(a.first_seen_ms, kT0 + 1);
  EXPECT_EQ(a.last_seen_ms, kT0 + 2);
  EXPECT_EQ(a.last_addr, "192.0.2.2:4001");
}

TEST_F(AgentStoreTest, RecordSeenOfUnknownKeyIsNotFound) {
  EXPECT_EQ(store_->record_seen(new_key(), "192.0.2.1:1", kT0).code(), Errc::not_found);
}

TEST_F(AgentStoreTest, RecordSeenRejectsOverlongAddress) {
  std::string key = new_key();
  ASSERT_TRUE(store_->approve(key, "alice", 1000000, kT0).ok());
  EXPECT_EQ(store_->record_seen(key, std::string(kMaxAddrBytes + 1, 'a'), kT0).code(),
            Errc::invalid_argument);
}

TEST_F(AgentStoreTest, SessionOpenCloseAndClear) {
  std::string k1 = new_key(), k2 = new_key();
  ASSERT_TRUE(store_->approve(k1, "alice", 1000000, kT0).ok());
  ASSERT_TRUE(store_->approve(k2, "alice", 1000000, kT0).ok());
  ASSERT_TRUE(store_->session_open(k1, "a:1", 7, kT0).ok());
  ASSERT_TRUE(store_->session_open(k1, "a:2", 7, kT0 + 1).ok());  // a replacement session
  ASSERT_TRUE(store_->session_open(k2, "b:1", 7, kT0).ok());
  EXPECT_TRUE(must_lookup(k1).online);
  ASSERT_TRUE(store_->session_close(k1).ok());
  EXPECT_FALSE(must_lookup(k1).online);
  EXPECT_TRUE(must_lookup(k2).online);
  ASSERT_TRUE(store_->sessions_clear().ok());
  EXPECT_FALSE(must_lookup(k2).online);
  EXPECT_TRUE(store_->session_close(k2).ok());  // closing twice is harmless
}

TEST_F(AgentStoreTest, SessionOfUnknownKeyIsNotFound) {
  EXPECT_EQ(store_->session_open(new_key(), "a:1", 7, kT0).code(), Errc::not_found);
}

TEST_F(AgentStoreTest, EnrollTokenHasTheDocumentedForm) {
  std::string t = token();
  ASSERT_EQ(t.size(), 4 + 64u);
  EXPECT_EQ(t.substr(0, 4), "tge_");
  EXPECT_NE(token(), t);  // random
}

TEST_F(AgentStoreTest, EnrollTokenIsStoredOnlyAsItsHash) {
  std::string t = token();
  auto st = store_->db().prepare("SELECT token_sha256 FROM enroll_tokens");
  ASSERT_TRUE(st.ok());
  ASSERT_EQ(*st->step(), sqlite::Step::row);
  EXPECT_EQ(st->column_text(0), crypto::hex_encode(crypto::as_view(crypto::sha256(t))));
  auto dump = store_->db().prepare(
      "SELECT count(*) FROM enroll_tokens WHERE token_sha256 LIKE '%' || ? || '%' OR "
      "owner LIKE '%' || ? || '%'");
  ASSERT_TRUE(dump.ok());
  ASSERT_TRUE(dump->bind_text(1, t.substr(4)).ok());
  ASSERT_TRUE(dump->bind_text(2, t.substr(4)).ok());
  ASSERT_EQ(*dump->step(), sqlite::Step::row);
  EXPECT_EQ(dump->column_int64(0), 0);
}

TEST_F(AgentStoreTest, ConsumeTokenApprovesKeyWithTokenOwnerAndTier) {
  std::string t = token("alice", 900000);
  std::string key = new_key();
  auto r = store_->consume_enroll_token(t, key, kT0 + kHour);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->pubkey, key);
  EXPECT_EQ(r->owner, "alice");
  EXPECT_EQ(r->tier_ppm, 900000u);
  EXPECT_EQ(r->status, AgentStatus::approved);
  auto ev = events();
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].kind, AgentEventKind::approved);
  auto st = store_->db().prepare("SELECT used_at, used_by_pubkey FROM enroll_tokens");
  ASSERT_TRUE(st.ok());
  ASSERT_EQ(*st->step(), sqlite::Step::row);
  EXPECT_EQ(st->column_int64(0), kT0 + kHour);
  EXPECT_EQ(st->column_text(1), key);
}

TEST_F(AgentStoreTest, TokenWorksOnlyOnce) {
  std::string t = token();
  ASSERT_TRUE(store_->consume_enroll_token(t, new_key(), kT0).ok());
  std::string other = new_key();
  auto r = store_->consume_enroll_token(t, other, kT0);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Errc::limit);
  EXPECT_NE(r.status().message().find("already used"), std::string::npos);
  auto l = store_->lookup(other);
  ASSERT_TRUE(l.ok());
  EXPECT_FALSE(l->has_value());
}

TEST_F(AgentStoreTest, ExpiredTokenIsRefused) {
  std::string t = token();  // valid for 24 h from kT0
  auto r = store_->consume_enroll_token(t, new_key(), kT0 + 24 * kHour);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Errc::timeout);
  EXPECT_NE(r.status().message().find("expired"), std::string::npos);
  EXPECT_TRUE(store_->consume_enroll_token(t, new_key(), kT0 + 24 * kHour - 1).ok());
}

TEST_F(AgentStoreTest, UnknownTokenIsRefused) {
  token();
  std::string unknown = "tge_" + std::string(64, 'a');
  auto r = store_->consume_enroll_token(unknown, new_key(), kT0);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Errc::not_found);
  EXPECT_EQ(r.status().message().find(unknown), std::string::npos);  // never echoed
}

TEST_F(AgentStoreTest, MalformedTokenIsRefused) {
  for (const std::string& bad :
       {std::string(""), std::string("tge_"), "tge_" + std::string(63, 'a'),
        "tge_" + std::string(64, 'A'), "tgx_" + std::string(64, 'a'), std::string(68, 'a')}) {
    auto r = store_->consume_enroll_token(bad, new_key(), kT0);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().code(), Errc::invalid_argument) << bad;
  }
}

TEST_F(AgentStoreTest, TokenCannotUndoARevocation) {
  std::string key = new_key();
  ASSERT_TRUE(store_->approve(key, "alice", 1000000, kT0).ok());
  ASSERT_TRUE(store_->revoke(key, kT0).ok());
  std::string t = token("alice");
  auto r = store_->consume_enroll_token(t, key, kT0);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Errc::permission);
  EXPECT_EQ(must_lookup(key).status, AgentStatus::revoked);
  EXPECT_TRUE(store_->consume_enroll_token(t, new_key(), kT0).ok());  // token still unused
}

TEST_F(AgentStoreTest, TokenCannotMoveAKeyToAnotherOwner) {
  std::string key = new_key();
  ASSERT_TRUE(store_->approve(key, "bob", 1000000, kT0).ok());
  std::string t = token("alice");
  auto r = store_->consume_enroll_token(t, key, kT0);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Errc::permission);
  EXPECT_EQ(must_lookup(key).owner, "bob");
  EXPECT_TRUE(store_->consume_enroll_token(t, new_key(), kT0).ok());
}

TEST_F(AgentStoreTest, CreateTokenChecksItsArguments) {
  EXPECT_FALSE(store_->create_enroll_token("no spaces", 1000000, kHour, kT0).ok());
  EXPECT_FALSE(store_->create_enroll_token("alice", 1000001, kHour, kT0).ok());
  EXPECT_FALSE(store_->create_enroll_token("alice", 1000000, kMinTokenTtlMs - 1, kT0).ok());
  EXPECT_FALSE(store_->create_enroll_token("alice", 1000000, kMaxTokenTtlMs + 1, kT0).ok());
}

TEST_F(AgentStoreTest, ConcurrentConsumeOfOneTokenSucceedsOnce) {
  std::string t = token();
  std::unique_ptr<AgentStore> a = open_store(), b = open_store();
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  std::string ka = new_key(), kb = new_key();
  std::atomic<int> ready{0};
  Status ra, rb;
  auto run = [&](AgentStore* s, const std::string& key, Status* out) {
    ready++;
    while (ready < 2) std::this_thread::yield();
    auto r = s->consume_enroll_token(t, key, kT0);
    *out = r.ok() ? Status::success() : r.status();
  };
  std::thread ta(run, a.get(), ka, &ra);
  std::thread tb(run, b.get(), kb, &rb);
  ta.join();
  tb.join();
  EXPECT_NE(ra.ok(), rb.ok()) << ra.to_string() << " / " << rb.to_string();
  const Status& loser = ra.ok() ? rb : ra;
  EXPECT_EQ(loser.code(), Errc::limit) << loser.to_string();
  auto l = store_->list();
  ASSERT_TRUE(l.ok());
  EXPECT_EQ(l->size(), 1u);
}

TEST_F(AgentStoreTest, EventsSinceReturnsOnlyNewerEventsInOrder) {
  std::string k1 = new_key(), k2 = new_key();
  ASSERT_TRUE(store_->approve(k1, "alice", 1000000, kT0).ok());
  ASSERT_TRUE(store_->approve(k2, "alice", 1000000, kT0).ok());
  ASSERT_TRUE(store_->revoke(k1, kT0).ok());
  auto all = events();
  ASSERT_EQ(all.size(), 3u);
  EXPECT_LT(all[0].seq, all[1].seq);
  EXPECT_LT(all[1].seq, all[2].seq);
  auto later = events(all[0].seq);
  ASSERT_EQ(later.size(), 2u);
  EXPECT_EQ(later[0].pubkey, k2);
  EXPECT_EQ(later[1].pubkey, k1);
  EXPECT_EQ(later[1].kind, AgentEventKind::revoked);
  EXPECT_TRUE(events(all[2].seq).empty());
  EXPECT_EQ(*store_->latest_event_seq(), all[2].seq);
}

TEST_F(AgentStoreTest, LatestEventSeqOfEmptyLogIsZero) {
  auto s = store_->latest_event_seq();
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(*s, 0);
}

TEST_F(AgentStoreTest, RevokeFromAnotherConnectionIsSeenByPolling) {
  std::string key = new_key();
  ASSERT_TRUE(store_->approve(key, "alice", 1000000, kT0).ok());
  int64_t mark = *store_->latest_event_seq();
  std::unique_ptr<AgentStore> cli = open_store();  // as the CLI process would
  ASSERT_NE(cli, nullptr);
  ASSERT_TRUE(cli->revoke(key, kT0 + 1).ok());
  auto ev = events(mark);
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].kind, AgentEventKind::revoked);
  EXPECT_EQ(ev[0].pubkey, key);
}

}  // namespace
}  // namespace tg::hub
