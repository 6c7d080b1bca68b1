#include "agent/keystore.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "agent/config.h"
#include "shared/core/log.h"
#include "shared/crypto/seal.h"
#include "tests/unit/temp_dir.h"

namespace tg::agent {
namespace {

constexpr const char* kKey = "sk-KEYSTORETEST-4b1d9e";
constexpr const char* kPin = "sha256/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

std::string errors_of(const LoadResult& r) {
  std::string all;
  for (const auto& d : r.errors) all += d.to_string() + "\n";
  return all;
}

// ---- pure pieces -------------------------------------------------------------

TEST(Keystore, SealContextNamesSectionAndType) {
  EXPECT_EQ(seal_context("openai-main", "openai"), "[provider openai-main] type openai");
}

TEST(Keystore, CheckApiKey) {
  EXPECT_TRUE(check_api_key(kKey).ok());
  EXPECT_TRUE(check_api_key(std::string(kMaxApiKeyBytes, 'k')).ok());
  EXPECT_EQ(check_api_key("").message(), "the key is empty");
  EXPECT_EQ(check_api_key(std::string(kMaxApiKeyBytes + 1, 'k')).message(),
            "the key is longer than 1024 bytes (1025)");
  for (const char* bad : {"sk x", "sk\tx", "sk\x01x", "sk\xc3\xa9x", "sk\x7fx"}) {
    EXPECT_EQ(check_api_key(bad).message(),
              "the key has a space, control or non-ASCII byte at position 3 (vendor keys are "
              "printable ASCII)");
  }
}

std::string rewrite(std::string_view text, std::vector<ApiKeyEdit> edits) {
  auto r = rewrite_api_keys(text, edits);
  EXPECT_TRUE(r.ok()) << r.status().message();
  return r.ok() ? *r : std::string();
}

TEST(Keystore, RewriteReplacesOnlyTheValue) {
  const std::string text =
      "# head\n"
      "hub = x\n"
      "[provider a]\n"
      "type = openai\n"
      "  api_key   =   sk-old  \n"
      "models = m\n"
      "[provider b]\n"
      "api_key = sk-b\n";
  EXPECT_EQ(rewrite(text, {{"a", "sealed:v1:keyfile:AAAA"}}),
            "# head\n"
            "hub = x\n"
            "[provider a]\n"
            "type = openai\n"
            "  api_key   = sealed:v1:keyfile:AAAA\n"
            "models = m\n"
            "[provider b]\n"
            "api_key = sk-b\n");
}

TEST(Keystore, RewriteKeepsCrlfBomCommentsAndQuotes) {
  const std::string text =
      "\xef\xbb\xbfhub = x\r\n"
      "[ provider   a ]\r\n"
      "#api_key = commented\r\n"
      "; api_key = commented too\r\n"
      "api_key=\"sk-quoted \"\r\n"
      "[provider b]\r\n";
  EXPECT_EQ(rewrite(text, {{"a", "T1"}, {"b", "T2"}}),
            "\xef\xbb\xbfhub = x\r\n"
            "[ provider   a ]\r\n"
            "#api_key = commented\r\n"
            "; api_key = commented too\r\n"
            "api_key= T1\r\n"
            "[provider b]\r\n"
            "api_key = T2\r\n");
}

TEST(Keystore, RewriteAddsAMissingLineAfterTheHeader) {
  EXPECT_EQ(rewrite("[provider a]\ntype = openai\n[provider b]\napi_key = x\n", {{"a", "T"}}),
            "[provider a]\napi_key = T\ntype = openai\n[provider b]\napi_key = x\n");
  // A header on the last line without a newline.
  EXPECT_EQ(rewrite("hub = x\n[provider a]", {{"a", "T"}}), "hub = x\n[provider a]\napi_key = T\n");
  EXPECT_EQ(rewrite("[provider a]\r", {{"a", "T"}}), "[provider a]\r\napi_key = T\r\n");
  // api_key of another section type or of the global section is not touched.
  EXPECT_EQ(rewrite("api_key = g\n[tunnel]\napi_key = t\n[provider a]\n", {{"a", "T"}}),
            "api_key = g\n[tunnel]\napi_key = t\n[provider a]\napi_key = T\n");
}

TEST(Keystore, RewriteErrors) {
  auto missing = rewrite_api_keys("[provider a]\n", {{"b", "T"}});
  EXPECT_EQ(missing.status().message(), "no section [provider b]");
  auto dup = rewrite_api_keys("[provider a]\n[provider a]\n", {{"a", "T"}});
  EXPECT_EQ(dup.status().message(), "duplicate section [provider a]");
  auto dup_key = rewrite_api_keys("[provider a]\napi_key = 1\napi_key = 2\n", {{"a", "T"}});
  EXPECT_EQ(dup_key.status().message(), "duplicate api_key in [provider a]");
  for (const char* bad : {"", "two words", "line\nbreak", "\"quoted"}) {
    auto r = rewrite_api_keys("[provider a]\n", {{"a", bad}});
    EXPECT_EQ(r.status().message(), "api_key for [provider a]: the new value is not one "
                                    "printable token");
  }
  auto twice = rewrite_api_keys("[provider a]\n", {{"a", "T"}, {"a", "U"}});
  EXPECT_EQ(twice.status().message(), "[provider a] is edited twice");
}

// Feeds `input` to read_api_key() through a pipe.
Result<Secret> read_from_pipe(const std::string& input) {
  int fds[2];
  EXPECT_EQ(pipe(fds), 0);
  EXPECT_EQ(write(fds[1], input.data(), input.size()), static_cast<ssize_t>(input.size()));
  close(fds[1]);
  auto r = read_api_key(fds[0], "prompt: ");
  close(fds[0]);
  return r;
}

TEST(Keystore, ReadApiKeyTakesOneLine) {
  for (const std::string& in : {std::string(kKey) + "\n", std::string(kKey) + "\r\n",
                               std::string(kKey)}) {
    auto r = read_from_pipe(in);
    ASSERT_TRUE(r.ok()) << r.status().message();
    EXPECT_EQ(r->reveal(), kKey);
  }
  auto longest = read_from_pipe(std::string(kMaxApiKeyBytes, 'k') + "\r\n");
  EXPECT_TRUE(longest.ok());
}

TEST(Keystore, ReadApiKeyRefusesBadInputWithoutEchoingIt) {
  struct Case {
    std::string in;
    std::string want;
  } cases[] = {
      {"", "no key given (empty input); e.g.: tokengo-agent keys set NAME < key.txt"},
      {"\n", "no key given (empty input); e.g.: tokengo-agent keys set NAME < key.txt"},
      {std::string(kKey) + "\nsecond\n", "more than one line; give only the key, on one line"},
      {std::string(kKey) + "\n\n", "more than one line; give only the key, on one line"},
      {std::string(kMaxApiKeyBytes + 1, 'k'), "the key is longer than 1024 bytes (1025)"},
      {std::string(kMaxApiKeyBytes + 3, 'k'), "the key is longer than 1024 bytes"},
      {"sk-with space\n", "the key has a space, control or non-ASCII byte at position 8 (vendor "
                          "keys are printable ASCII)"},
  };
  for (const Case& c : cases) {
    auto r = read_from_pipe(c.in);
    ASSERT_FALSE(r.ok()) << c.in;
    EXPECT_EQ(r.status().message(), c.want);
  }
}

// ---- files -------------------------------------------------------------------

// A fresh directory per test, removed with its files at the end; the
// passphrase variable is cleared around each test.
class KeystoreFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    unsetenv(kPassphraseEnv);
  }
  void TearDown() override {
    unsetenv(kPassphraseEnv);
    log::set_sink(nullptr, nullptr);
  }
  std::string write(const std::string& name, const std::string& content, mode_t mode = 0600) {
    std::string path = dir_ + "/" + name;
    std::ofstream(path, std::ios::binary | std::ios::trunc) << content;
    EXPECT_EQ(chmod(path.c_str(), mode), 0);
    return path;
  }
  SealSettings keyfile_settings() {
    SealSettings s;
    s.key_file = dir_ + "/seal.key";
    return s;
  }
  // A config with one openai provider whose api_key line is `api_key_line`.
  std::string conf(const std::string& global, const std::string& provider,
                   const std::string& api_key_line) {
    return "hub = wss://hub.test:8443/tunnel\nhub_pin = " + std::string(kPin) + "\n" + global +
           "[provider " + provider + "]\ntype = openai\n" + api_key_line + "\nmodels = m\n";
  }
  std::string seal_key_line(const std::string& provider, const std::string& type = "openai") {
    Keyring k(keyfile_settings());
    auto t = k.seal(seal_context(provider, type), kKey);
    EXPECT_TRUE(t.ok()) << t.status().message();
    return "api_key = " + (t.ok() ? *t : std::string());
  }
  test::TempDir tmp_{"tg-keystore-test"};
  std::string dir_ = tmp_.path();
};

TEST_F(KeystoreFileTest, SealCreatesTheKeyFile0600AndOpens) {
  Keyring k(keyfile_settings());
  auto token = k.seal(seal_context("a", "openai"), kKey);
  ASSERT_TRUE(token.ok()) << token.status().message();
  EXPECT_TRUE(k.created_key_file());
  struct stat st {};
  ASSERT_EQ(stat((dir_ + "/seal.key").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  EXPECT_EQ(st.st_size, 32);
  EXPECT_FALSE(contains(*token, kKey));
  // A second Keyring loads the file instead of making one.
  Keyring again(keyfile_settings());
  auto opened = again.open(*token, seal_context("a", "openai"));
  ASSERT_TRUE(opened.ok()) << opened.status().message();
  EXPECT_EQ(opened->reveal(), kKey);
  EXPECT_FALSE(again.created_key_file());
}

TEST_F(KeystoreFileTest, OpenWithoutTheKeyFileSaysWhichFile) {
  Keyring maker(keyfile_settings());
  auto token = maker.seal(seal_context("a", "openai"), kKey);
  ASSERT_TRUE(token.ok());
  ASSERT_EQ(unlink((dir_ + "/seal.key").c_str()), 0);
  Keyring k(keyfile_settings());
  auto r = k.open(*token, seal_context("a", "openai"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), dir_ + "/seal.key: cannot open seal key file: No such file or "
                                         "directory");
  EXPECT_TRUE(k.check_seal_source().ok());  // missing is fine for sealing: seal() makes it
}

TEST_F(KeystoreFileTest, KeyFileOpenToOthersIsRefused) {
  write("seal.key", std::string(32, 'k'), 0644);
  Keyring k(keyfile_settings());
  Status s = k.check_seal_source();
  EXPECT_EQ(s.message(), dir_ + "/seal.key: seal key file is accessible by group or others "
                                "(mode 0644); run: chmod 600 " + dir_ + "/seal.key");
  EXPECT_FALSE(k.seal(seal_context("a", "openai"), kKey).ok());
}

TEST_F(KeystoreFileTest, PassphraseFromTheEnvironmentOrAFile) {
  SealSettings s = keyfile_settings();
  s.with = "passphrase";
  Keyring none(s);
  EXPECT_EQ(none.check_seal_source().message(),
            "no passphrase: set seal_passphrase_file in the config or the environment variable "
            "TOKENGO_PASSPHRASE");

  setenv(kPassphraseEnv, "env words", 1);
  Keyring by_env(s);
  auto token = by_env.seal(seal_context("a", "openai"), kKey);
  ASSERT_TRUE(token.ok()) << token.status().message();
  EXPECT_EQ(token->rfind("sealed:v1:argon2id:", 0), 0u);
  unsetenv(kPassphraseEnv);

  s.passphrase_file = write("pass", "env words\n");
  Keyring by_file(s);
  auto opened = by_file.open(*token, seal_context("a", "openai"));
  ASSERT_TRUE(opened.ok()) << opened.status().message();
  EXPECT_EQ(opened->reveal(), kKey);

  s.passphrase_file = write("pass2", "other words\n");
  Keyring wrong(s);
  auto bad = wrong.open(*token, seal_context("a", "openai"));
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(), "sealed value does not open with this passphrase (wrong key, "
                                    "or the value was altered) [passphrase from " +
                                        s.passphrase_file + "]");
}

TEST_F(KeystoreFileTest, OneKeyringSealsWithOneSalt) {
  SealSettings s = keyfile_settings();
  s.with = "passphrase";
  setenv(kPassphraseEnv, "pw", 1);
  Keyring k(s);
  auto a = k.seal(seal_context("a", "openai"), kKey);
  auto b = k.seal(seal_context("b", "openai"), kKey);
  ASSERT_TRUE(a.ok() && b.ok());
  auto va = crypto::parse_sealed(*a);
  auto vb = crypto::parse_sealed(*b);
  ASSERT_TRUE(va.ok() && vb.ok());
  EXPECT_EQ(va->salt, vb->salt);
  Keyring reuse(s);
  reuse.reuse_salt(va->salt);
  auto c = reuse.seal(seal_context("c", "openai"), kKey);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(crypto::parse_sealed(*c)->salt, va->salt);
}

// ---- agent.conf with sealed keys ---------------------------------------------

TEST_F(KeystoreFileTest, LoadOpensASealedKey) {
  const std::string line = seal_key_line("p");
  const std::string path = write("agent.conf", conf("", "p", line));
  auto r = load(path);
  ASSERT_TRUE(r.config) << errors_of(r);
  EXPECT_EQ(r.config->providers[0].api_key.reveal(), kKey);
  EXPECT_TRUE(r.warnings.empty());
  EXPECT_EQ(r.config->seal.key_file, dir_ + "/seal.key");  // resolved next to the file
  EXPECT_EQ(r.config->seal.with, "keyfile");
}

TEST_F(KeystoreFileTest, LoadOpensAPassphraseSealedKey) {
  SealSettings s = keyfile_settings();
  s.with = "passphrase";
  s.passphrase_file = write("pass", "words\n");
  Keyring k(s);
  auto t = k.seal(seal_context("p", "openai"), kKey);
  ASSERT_TRUE(t.ok());
  const std::string path =
      write("agent.conf", conf("seal_passphrase_file = pass\n", "p", "api_key = " + *t));
  auto r = load(path);
  ASSERT_TRUE(r.config) << errors_of(r);
  EXPECT_EQ(r.config->providers[0].api_key.reveal(), kKey);
  EXPECT_EQ(r.config->seal.passphrase_file, dir_ + "/pass");

  // Without a passphrase source the error says how to give one.
  const std::string path2 = write("agent2.conf", conf("", "p", "api_key = " + *t));
  auto r2 = load(path2);
  ASSERT_FALSE(r2.config);
  EXPECT_EQ(errors_of(r2), path2 + ":5: [provider p]: api_key: no passphrase: set "
                                   "seal_passphrase_file in the config or the environment "
                                   "variable TOKENGO_PASSPHRASE; to store the key again: "
                                   "tokengo-agent keys set p\n");
}

TEST_F(KeystoreFileTest, ASealedKeyMovedToAnotherProviderIsRefused) {
  const std::string line = seal_key_line("a");
  const std::string path = write("agent.conf", conf("", "b", line));
  auto r = load(path);
  ASSERT_FALSE(r.config);
  const std::string e = errors_of(r);
  EXPECT_EQ(e, path + ":5: [provider b]: api_key: value was sealed for [provider a] type openai, "
                      "not for [provider b] type openai [seal key file " + dir_ +
                   "/seal.key]; to store the key again: tokengo-agent keys set b\n");
  EXPECT_FALSE(contains(e, kKey));
  // A type change is refused the same way.
  const std::string line2 = seal_key_line("b", "anthropic");
  auto r2 = load(write("agent.conf", conf("", "b", line2)));
  ASSERT_FALSE(r2.config);
  EXPECT_TRUE(contains(errors_of(r2), "sealed for [provider b] type anthropic, not for "
                                      "[provider b] type openai"));
}

TEST_F(KeystoreFileTest, TamperedOrMalformedSealedKeysNameTheLine) {
  std::string line = seal_key_line("p");
  // Flip one base64 character in the middle of the box.
  size_t at = line.size() - 20;
  line[at] = line[at] == 'A' ? 'B' : 'A';
  const std::string path = write("agent.conf", conf("", "p", line));
  auto r = load(path);
  ASSERT_FALSE(r.config);
  EXPECT_EQ(errors_of(r), path + ":5: [provider p]: api_key: sealed value does not open with "
                                 "this seal key file (wrong key, or the value was altered) [seal "
                                 "key file " + dir_ + "/seal.key]; to store the key again: "
                                 "tokengo-agent keys set p\n");

  auto bad = parse(conf("", "p", "api_key = sealed:v1:keyfile:%%%%"), "agent.conf");
  EXPECT_EQ(errors_of(bad), "agent.conf:5: [provider p]: api_key: sealed value: box: base64: "
                            "invalid character or padding at offset 0; to store the key again: "
                            "tokengo-agent keys set p\n");
  auto ver = parse(conf("", "p", "api_key = sealed:v9:keyfile:AAAA"), "agent.conf");
  EXPECT_TRUE(contains(errors_of(ver), "agent.conf:5: [provider p]: api_key: sealed value has "
                                       "unknown version 'v9'"));
}

TEST_F(KeystoreFileTest, WrongKeyFileIsRefused) {
  const std::string line = seal_key_line("p");
  ASSERT_EQ(unlink((dir_ + "/seal.key").c_str()), 0);
  write("seal.key", std::string(32, 'w'));
  auto r = load(write("agent.conf", conf("", "p", line)));
  ASSERT_FALSE(r.config);
  EXPECT_TRUE(contains(errors_of(r), "does not open with this seal key file"));
}

TEST_F(KeystoreFileTest, PlainKeysWarnOncePerProviderWithoutTheKey) {
  std::vector<std::string> lines;
  log::set_sink([](log::Level, const char* line, void* user) {
    static_cast<std::vector<std::string>*>(user)->push_back(line);
  }, &lines);
  const std::string text = conf("", "a", std::string("api_key = ") + kKey) +
                           "[provider b]\ntype = anthropic\napi_key = " + kKey + "-2\nmodels = n\n" +
                           "[provider c]\ntype = local\nurl = http://127.0.0.1:1\nmodels = o\n";
  const std::string path = write("agent.conf", text);
  auto r = load(path);
  ASSERT_TRUE(r.config) << errors_of(r);
  ASSERT_EQ(r.warnings.size(), 2u);
  EXPECT_EQ(r.warnings[0].to_string(),
            path + ":5: api_key of [provider a] is stored in plain text; run 'tokengo-agent keys "
                   "set a' or 'keys seal-all'");
  EXPECT_EQ(r.warnings[1].line, 9);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_TRUE(contains(lines[0], " WARN  agent: " + path + ":5: api_key of [provider a] is "
                                                           "stored in plain text"))
      << lines[0];
  for (const auto& l : lines) EXPECT_FALSE(contains(l, kKey)) << l;

  // log_level = error keeps load() quiet; parse() never logs.
  lines.clear();
  auto quiet = load(write("quiet.conf", "log_level = error\n" + text));
  EXPECT_EQ(quiet.warnings.size(), 2u);
  auto parsed = parse(text, "agent.conf");
  EXPECT_EQ(parsed.warnings.size(), 2u);
  EXPECT_TRUE(lines.empty());
}

TEST_F(KeystoreFileTest, SeveralSealedKeysOpenWithOneKeyFile) {
  // Two providers sealed with one key file: both open with one key load.
  Keyring k(keyfile_settings());
  auto ta = k.seal(seal_context("a", "openai"), "sk-a-111");
  auto tb = k.seal(seal_context("b", "openai"), "sk-b-222");
  ASSERT_TRUE(ta.ok() && tb.ok());
  const std::string text = conf("", "a", "api_key = " + *ta) +
                           "[provider b]\ntype = openai\napi_key = " + *tb + "\nmodels = n\n";
  auto r = load(write("agent.conf", text));
  ASSERT_TRUE(r.config) << errors_of(r);
  EXPECT_EQ(r.config->providers[0].api_key.reveal(), "sk-a-111");
  EXPECT_EQ(r.config->providers[1].api_key.reveal(), "sk-b-222");
}

TEST(Keystore, ExampleConfigDocumentsTheSealSettings) {
  auto r = load(std::string(TG_SOURCE_DIR) + "/configs/agent.conf");
  ASSERT_TRUE(r.config) << errors_of(r);
  EXPECT_EQ(r.config->seal.with, "keyfile");
  EXPECT_EQ(r.config->seal.key_file, std::string(TG_SOURCE_DIR) + "/configs/seal.key");
  EXPECT_EQ(r.config->seal.passphrase_file, "");
}

}  // namespace
}  // namespace tg::agent
