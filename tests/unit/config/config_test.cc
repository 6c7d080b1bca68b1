#include "shared/config/config.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <string>

namespace tg::config {
namespace {

const Schema& schema() {
  static const Schema s{{
      {"", false, false,
       {
           {"hub", Type::string, nullptr, 0, 0, nullptr, "hub address"},
           {"max_parallel", Type::integer, "16", 1, 256},
           {"offset", Type::integer, "0", -100, 100},
           {"big", Type::integer, "0", INT64_MIN, INT64_MAX},
           {"verbose", Type::boolean, "false"},
           {"timeout", Type::duration, "15s", 1, 3600000},
           {"buffer", Type::size, "64KiB", 1024, int64_t{1} << 30},
           {"log_level", Type::choice, "info", 0, 0, "debug|info|warn|error"},
           {"label", Type::string, ""},
           {"motto", Type::string, "hello"},
           {"token", Type::secret, ""},
       }},
      {"provider", true, true,
       {
           {"kind", Type::choice, nullptr, 0, 0, "openai|anthropic|local"},
           {"api_key", Type::secret, nullptr},
           {"base_url", Type::string, ""},
       }},
      {"limits", false, false, {{"rps", Type::integer, "10", 1, 1000}}},
      {"route", false, true, {{"model", Type::string, nullptr}}},
      {"tls", true, false, {{"cert", Type::string, nullptr}}},
  }};
  return s;
}

// Parses with the test schema; `text` must not repeat `hub` (it is prepended).
ParseResult parse_ok_prefix(const std::string& text) {
  return parse("hub = h\n" + text, "agent.conf", schema());
}

const Config& ok(const ParseResult& r) {
  for (const Diagnostic& d : r.errors) ADD_FAILURE() << d.to_string();
  EXPECT_TRUE(r.config.has_value());
  return *r.config;
}

// The only diagnostic, as "file:line: message".
std::string only_error(const std::string& text) {
  ParseResult r = parse(text, "agent.conf", schema());
  EXPECT_FALSE(r.config.has_value());
  EXPECT_EQ(r.errors.size(), 1u);
  std::string all;
  for (const Diagnostic& d : r.errors) all += (all.empty() ? "" : " | ") + d.to_string();
  return all;
}

// ---- syntax ------------------------------------------------------------------

TEST(ConfigSyntax, ParsesGlobalKeyValue) {
  ParseResult r = parse("hub = hub.example.com:443\n", "agent.conf", schema());
  EXPECT_EQ(ok(r).global().str("hub"), "hub.example.com:443");
}

TEST(ConfigSyntax, AcceptsMissingFinalNewline) {
  ParseResult r = parse("hub = x", "agent.conf", schema());
  EXPECT_EQ(ok(r).global().str("hub"), "x");
}

TEST(ConfigSyntax, SkipsBlankLinesAndComments) {
  ParseResult r = parse_ok_prefix("\n   \n# comment\n  ; other comment\n\t# tabbed\n");
  EXPECT_TRUE(ok(r).global().is_set("hub"));
}

TEST(ConfigSyntax, ValueMayContainHash) {
  ParseResult r = parse_ok_prefix("label = abc#def ; not a comment\n");
  EXPECT_EQ(ok(r).global().str("label"), "abc#def ; not a comment");
}

TEST(ConfigSyntax, TrimsSpacesAroundKeyAndValue) {
  ParseResult r = parse_ok_prefix("  label\t=   a b  \t\n");
  EXPECT_EQ(ok(r).global().str("label"), "a b");
}

TEST(ConfigSyntax, QuotedValueKeepsSpacesAndEscapes) {
  ParseResult r = parse_ok_prefix("label = \"  a \\\"q\\\" \\\\ b  \"\n");
  EXPECT_EQ(ok(r).global().str("label"), "  a \"q\" \\ b  ");
}

TEST(ConfigSyntax, QuoteInsideUnquotedValueIsLiteral) {
  ParseResult r = parse_ok_prefix("label = a\"b\"\n");
  EXPECT_EQ(ok(r).global().str("label"), "a\"b\"");
}

TEST(ConfigSyntax, AcceptsCrlfLineEndings) {
  ParseResult r = parse("hub = x\r\nmax_parallel = 3\r\n", "agent.conf", schema());
  EXPECT_EQ(ok(r).global().integer("max_parallel"), 3);
}

TEST(ConfigSyntax, SkipsUtf8ByteOrderMark) {
  ParseResult r = parse("\xef\xbb\xbfhub = x\n", "agent.conf", schema());
  EXPECT_EQ(ok(r).global().str("hub"), "x");
}

TEST(ConfigSyntax, AcceptsUtf8InValues) {
  ParseResult r = parse_ok_prefix("label = caf\xc3\xa9 \xe2\x82\xac\n");
  EXPECT_EQ(ok(r).global().str("label"), "caf\xc3\xa9 \xe2\x82\xac");
}

TEST(ConfigSyntax, RejectsBadEscapeInQuotes) {
  EXPECT_EQ(only_error("hub = x\nlabel = \"a\\nb\"\n"),
            "agent.conf:2: bad escape in quoted value at column 3 (only \\\" and \\\\ are allowed)");
}

TEST(ConfigSyntax, RejectsUnterminatedQuote) {
  EXPECT_EQ(only_error("hub = x\nlabel = \"abc\n"),
            "agent.conf:2: unterminated quoted value (missing closing '\"')");
}

TEST(ConfigSyntax, RejectsTextAfterClosingQuote) {
  EXPECT_EQ(only_error("hub = x\nlabel = \"abc\" def\n"),
            "agent.conf:2: text after the closing quote");
}

TEST(ConfigSyntax, RejectsLineWithoutEquals) {
  EXPECT_EQ(only_error("hub = x\nverbose\n"),
            "agent.conf:2: malformed line starting with 'verbose' (expected 'key = value')");
}

TEST(ConfigSyntax, MalformedLineDoesNotEchoUnknownContent) {
  EXPECT_EQ(only_error("hub = x\nsk-live-ABCDEF\n"),
            "agent.conf:2: malformed line (expected 'key = value', '[section]' or a comment)");
}

TEST(ConfigSyntax, RejectsMissingKeyName) {
  EXPECT_EQ(only_error("hub = x\n = 5\n"), "agent.conf:2: missing key name before '='");
}

TEST(ConfigSyntax, RejectsInvalidKeyCharacter) {
  EXPECT_EQ(only_error("hub = x\nMax_parallel = 5\n"),
            "agent.conf:2: invalid character 'M' in key name at column 1 (keys use a-z, 0-9, _)");
}

TEST(ConfigSyntax, RejectsMalformedHeader) {
  EXPECT_EQ(only_error("hub = x\n[limits\n"),
            "agent.conf:2: malformed section header (expected '[type]' or '[type name]')");
}

TEST(ConfigSyntax, RejectsCommentAfterHeader) {
  EXPECT_EQ(only_error("hub = x\n[limits] # no inline comments\n"),
            "agent.conf:2: malformed section header (expected '[type]' or '[type name]')");
}

TEST(ConfigSyntax, RejectsHeaderWithThreeWords) {
  EXPECT_EQ(only_error("hub = x\n[provider a b]\n"),
            "agent.conf:2: malformed section header (expected '[type]' or '[type name]')");
}

TEST(ConfigSyntax, RejectsInvalidSectionName) {
  EXPECT_EQ(only_error("hub = x\n[provider a/b]\n"),
            "agent.conf:2: invalid section name 'a/b' (allowed: A-Z, a-z, 0-9, '.', '_', '-'; "
            "at most 64 bytes)");
}

TEST(ConfigSyntax, RejectsInvalidSectionType) {
  EXPECT_EQ(only_error("hub = x\n[Provider a]\n"),
            "agent.conf:2: invalid section type 'Provider' (allowed: a-z, 0-9, _)");
}

TEST(ConfigSyntax, RejectsInvalidUtf8) {
  EXPECT_EQ(only_error("hub = x\nlabel = a\xc3\x28\n"), "agent.conf:2: invalid UTF-8 at column 10");
}

TEST(ConfigSyntax, RejectsOverlongUtf8) {
  EXPECT_EQ(only_error("hub = x\nlabel = \xc0\xaf\n"), "agent.conf:2: invalid UTF-8 at column 9");
}

TEST(ConfigSyntax, RejectsUtf16Surrogate) {
  EXPECT_EQ(only_error("hub = x\nlabel = \xed\xa0\x80\n"),
            "agent.conf:2: invalid UTF-8 at column 9");
}

TEST(ConfigSyntax, RejectsNulByte) {
  EXPECT_EQ(only_error(std::string("hub = x\nlabel = a\0b\n", 18)),
            "agent.conf:2: NUL byte at column 10");
}

TEST(ConfigSyntax, RejectsControlCharacter) {
  EXPECT_EQ(only_error("hub = x\nlabel = a\x1b[31m\n"),
            "agent.conf:2: control character 0x1b at column 10");
}

// ---- sections ------------------------------------------------------------------

TEST(ConfigSections, NamedSectionIsFoundByTypeAndName) {
  ParseResult r = parse_ok_prefix("[provider openai-main]\nkind = openai\napi_key = k\n");
  const Section* p = ok(r).section("provider", "openai-main");
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p->str("kind"), "openai");
  EXPECT_EQ(p->line(), 2);
  EXPECT_EQ(p->label(), "[provider openai-main]");
}

TEST(ConfigSections, RepeatableSectionsKeepFileOrder) {
  ParseResult r = parse_ok_prefix(
      "[provider b]\nkind = local\napi_key = k\n[provider a]\nkind = openai\napi_key = k\n");
  auto list = ok(r).sections("provider");
  ASSERT_EQ(list.size(), 2u);
  EXPECT_EQ(list[0]->name(), "b");
  EXPECT_EQ(list[1]->name(), "a");
}

TEST(ConfigSections, GlobalKeysMayFollowNoHeaderOnly) {
  // After a header, `hub` belongs to [limits], which has no such key.
  ParseResult r = parse("[limits]\nhub = x\n", "agent.conf", schema());
  ASSERT_EQ(r.errors.size(), 2u);
  EXPECT_EQ(r.errors[0].to_string(), "agent.conf:2: unknown key 'hub'");
  EXPECT_EQ(r.errors[1].to_string(), "agent.conf: missing required key 'hub'");
}

TEST(ConfigSections, RepeatableUnnamedSectionsAreAllowed) {
  ParseResult r = parse_ok_prefix("[route]\nmodel = a\n[route]\nmodel = b\n");
  EXPECT_EQ(ok(r).sections("route").size(), 2u);
}

TEST(ConfigSections, AbsentSingleSectionExistsWithDefaults) {
  ParseResult r = parse_ok_prefix("");
  const Section* limits = ok(r).section("limits");
  ASSERT_NE(limits, nullptr);
  EXPECT_EQ(limits->line(), 0);
  EXPECT_EQ(limits->integer("rps"), 10);
}

TEST(ConfigSections, AbsentNamedSectionIsNull) {
  ParseResult r = parse_ok_prefix("");
  EXPECT_EQ(ok(r).section("provider", "x"), nullptr);
  EXPECT_TRUE(ok(r).sections("provider").empty());
}

TEST(ConfigSections, RejectsUnknownSectionTypeWithSuggestion) {
  EXPECT_EQ(only_error("hub = x\n[provder a]\n"),
            "agent.conf:2: unknown section type 'provder' (did you mean 'provider'?)");
}

TEST(ConfigSections, KeysOfBadSectionAreNotReportedAgain) {
  EXPECT_EQ(only_error("hub = x\n[nonsense]\nfoo = 1\nbar = 2\n"),
            "agent.conf:2: unknown section type 'nonsense'");
}

TEST(ConfigSections, RejectsMissingName) {
  EXPECT_EQ(only_error("hub = x\n[provider]\n"),
            "agent.conf:2: section [provider] needs a name: [provider <name>]");
}

TEST(ConfigSections, RejectsNameOnUnnamedSection) {
  EXPECT_EQ(only_error("hub = x\n[limits main]\n"),
            "agent.conf:2: section [limits] takes no name, got 'main'");
}

TEST(ConfigSections, RejectsDuplicateNamedSection) {
  EXPECT_EQ(only_error("hub = x\n[provider a]\nkind = local\napi_key = k\n[provider a]\n"),
            "agent.conf:5: duplicate section [provider a] (first at line 2)");
}

TEST(ConfigSections, RejectsRepeatedSingleSection) {
  EXPECT_EQ(only_error("hub = x\n[limits]\n[limits]\n"),
            "agent.conf:3: section [limits] may appear only once (first at line 2)");
}

TEST(ConfigSections, RejectsSecondNamedNonRepeatableSection) {
  EXPECT_EQ(only_error("hub = x\n[tls a]\ncert = c\n[tls b]\ncert = d\n"),
            "agent.conf:4: section [tls] may appear only once (first at line 2)");
}

TEST(ConfigSections, RejectsKeyBeforeHeaderWithoutGlobalSection) {
  Schema s{{{"limits", false, false, {{"rps", Type::integer, "10", 1, 1000}}}}};
  ParseResult r = parse("rps = 5\n", "x.conf", s);
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_EQ(r.errors[0].to_string(), "x.conf:1: key 'rps' before any [section] header");
}

// ---- keys ------------------------------------------------------------------------

TEST(ConfigKeys, UnknownKeySuggestsClosest) {
  EXPECT_EQ(only_error("hub = x\nmax_paralel = 4\n"),
            "agent.conf:2: unknown key 'max_paralel' (did you mean 'max_parallel'?)");
}

TEST(ConfigKeys, UnknownKeyWithoutCloseMatch) {
  EXPECT_EQ(only_error("hub = x\nfrobnicate = 4\n"), "agent.conf:2: unknown key 'frobnicate'");
}

TEST(ConfigKeys, RejectsDuplicateKey) {
  EXPECT_EQ(only_error("hub = x\nverbose = on\nverbose = off\n"),
            "agent.conf:3: duplicate key 'verbose' (first set at line 2)");
}

TEST(ConfigKeys, MissingRequiredKeyNamesSection) {
  EXPECT_EQ(only_error("hub = x\n\n[provider openai-main]\nkind = openai\n"),
            "agent.conf:3: [provider openai-main]: missing required key 'api_key'");
}

TEST(ConfigKeys, MissingRequiredGlobalKey) {
  EXPECT_EQ(only_error("verbose = on\n"), "agent.conf: missing required key 'hub'");
}

TEST(ConfigKeys, DefaultsApplyAndAreNotSet) {
  ParseResult r = parse_ok_prefix("");
  const Section& g = ok(r).global();
  EXPECT_EQ(g.integer("max_parallel"), 16);
  EXPECT_FALSE(g.boolean("verbose"));
  EXPECT_EQ(g.duration_ms("timeout"), 15000u);
  EXPECT_EQ(g.size("buffer"), 65536u);
  EXPECT_EQ(g.str("log_level"), "info");
  EXPECT_EQ(g.str("label"), "");
  EXPECT_TRUE(g.secret("token").empty());
  EXPECT_FALSE(g.is_set("max_parallel"));
  EXPECT_EQ(g.line_of("max_parallel"), 0);
}

TEST(ConfigKeys, LineOfAndIsSetForWrittenKey) {
  ParseResult r = parse_ok_prefix("\nmax_parallel = 8\n");
  EXPECT_TRUE(ok(r).global().is_set("max_parallel"));
  EXPECT_EQ(ok(r).global().line_of("max_parallel"), 3);
}

TEST(ConfigKeys, WhereNamesKeyLineOrSectionOrFile) {
  ParseResult r = parse_ok_prefix("[provider a]\nkind = local\napi_key = k\n");
  const Config& c = ok(r);
  const Section* p = c.section("provider", "a");
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(c.where(*p, "kind"), "agent.conf:3");
  EXPECT_EQ(c.where(*p, "base_url"), "agent.conf:2");
  EXPECT_EQ(c.where(c.global(), "verbose"), "agent.conf");
}

TEST(ConfigKeys, CollectsEveryError) {
  ParseResult r = parse("max_parallel = 0\nverbose = maybe\nnope = 1\n", "agent.conf", schema());
  EXPECT_FALSE(r.config.has_value());
  ASSERT_EQ(r.errors.size(), 4u);  // three bad lines and the missing hub
  EXPECT_EQ(r.errors[0].line, 1);
  EXPECT_EQ(r.errors[1].line, 2);
  EXPECT_EQ(r.errors[2].line, 3);
  EXPECT_EQ(r.errors[3].line, 0);
}

TEST(ConfigKeysDeathTest, GetterForKeyNotInSchemaAborts) {
  ParseResult r = parse_ok_prefix("");
  const Section& g = ok(r).global();
  EXPECT_DEATH((void)g.integer("no_such_key"), "programming error");
}

TEST(ConfigKeysDeathTest, GetterOfWrongTypeAborts) {
  ParseResult r = parse_ok_prefix("");
  const Section& g = ok(r).global();
  EXPECT_DEATH((void)g.integer("verbose"), "programming error");
}

// ---- values -------------------------------------------------------------------------

TEST(ConfigValues, IntegerInRange) {
  ParseResult r = parse_ok_prefix("max_parallel = 256\noffset = -100\n");
  EXPECT_EQ(ok(r).global().integer("max_parallel"), 256);
  EXPECT_EQ(ok(r).global().integer("offset"), -100);
}

TEST(ConfigValues, IntegerAcceptsPlusSign) {
  ParseResult r = parse_ok_prefix("max_parallel = +7\n");
  EXPECT_EQ(ok(r).global().integer("max_parallel"), 7);
}

TEST(ConfigValues, IntegerOutOfRangeMessage) {
  EXPECT_EQ(only_error("hub = x\nmax_parallel = 0\n"),
            "agent.conf:2: max_parallel must be 1..256, got 0");
}

TEST(ConfigValues, IntegerNotANumber) {
  EXPECT_EQ(only_error("hub = x\nmax_parallel = 12abc\n"),
            "agent.conf:2: max_parallel must be an integer in 1..256, got '12abc'");
}

TEST(ConfigValues, IntegerRejectsSpacesAndHex) {
  EXPECT_EQ(only_error("hub = x\nmax_parallel = 0x10\n"),
            "agent.conf:2: max_parallel must be an integer in 1..256, got '0x10'");
}

TEST(ConfigValues, IntegerExtremesParse) {
  ParseResult r = parse_ok_prefix("big = -9223372036854775808\n");
  EXPECT_EQ(ok(r).global().integer("big"), INT64_MIN);
}

TEST(ConfigValues, IntegerOverflowIsCaught) {
  EXPECT_EQ(only_error("hub = x\nbig = 9223372036854775808\n"),
            "agent.conf:2: big must be an integer in -9223372036854775808..9223372036854775807, "
            "got '9223372036854775808'");
}

TEST(ConfigValues, BooleanSpellings) {
  const char* yes[] = {"true", "yes", "on", "1"};
  const char* no[] = {"false", "no", "off", "0"};
  for (const char* v : yes) {
    ParseResult r = parse_ok_prefix(std::string("verbose = ") + v + "\n");
    EXPECT_TRUE(ok(r).global().boolean("verbose")) << v;
  }
  for (const char* v : no) {
    ParseResult r = parse_ok_prefix(std::string("verbose = ") + v + "\n");
    EXPECT_FALSE(ok(r).global().boolean("verbose")) << v;
  }
}

TEST(ConfigValues, BooleanRejectsOtherWords) {
  EXPECT_EQ(only_error("hub = x\nverbose = True\n"),
            "agent.conf:2: verbose must be true or false (or yes/no, on/off, 1/0), got 'True'");
}

TEST(ConfigValues, DurationUnits) {
  const std::pair<const char*, uint64_t> cases[] = {
      {"250ms", 250}, {"15s", 15000}, {"2m", 120000}, {"1h", 3600000}};
  for (auto& c : cases) {
    ParseResult r = parse_ok_prefix(std::string("timeout = ") + c.first + "\n");
    EXPECT_EQ(ok(r).global().duration_ms("timeout"), c.second) << c.first;
  }
}

TEST(ConfigValues, DurationRequiresUnit) {
  EXPECT_EQ(only_error("hub = x\ntimeout = 30\n"),
            "agent.conf:2: timeout must be a duration like 250ms, 15s, 2m or 1h in 1ms..1h, "
            "got '30'");
}

TEST(ConfigValues, DurationRejectsFractionAndSpace) {
  EXPECT_NE(only_error("hub = x\ntimeout = 1.5s\n").find("must be a duration"), std::string::npos);
  EXPECT_NE(only_error("hub = x\ntimeout = 15 s\n").find("must be a duration"), std::string::npos);
}

TEST(ConfigValues, DurationBareZeroIsAllowedThenRangeChecked) {
  EXPECT_EQ(only_error("hub = x\ntimeout = 0\n"), "agent.conf:2: timeout must be 1ms..1h, got 0");
}

TEST(ConfigValues, DurationOutOfRangeUsesUnits) {
  EXPECT_EQ(only_error("hub = x\ntimeout = 90m\n"),
            "agent.conf:2: timeout must be 1ms..1h, got 90m");
}

TEST(ConfigValues, DurationOverflowIsCaught) {
  EXPECT_NE(only_error("hub = x\ntimeout = 9223372036854775807h\n").find("must be a duration"),
            std::string::npos);
}

TEST(ConfigValues, SizeUnits) {
  const std::pair<const char*, uint64_t> cases[] = {
      {"1024", 1024}, {"64KiB", 65536}, {"1MiB", 1048576}, {"1GiB", 1073741824}};
  for (auto& c : cases) {
    ParseResult r = parse_ok_prefix(std::string("buffer = ") + c.first + "\n");
    EXPECT_EQ(ok(r).global().size("buffer"), c.second) << c.first;
  }
}

TEST(ConfigValues, SizeRejectsDecimalUnits) {
  EXPECT_EQ(only_error("hub = x\nbuffer = 1MB\n"),
            "agent.conf:2: buffer must be a size like 512, 64KiB, 1MiB or 2GiB in 1KiB..1GiB, "
            "got '1MB'");
}

TEST(ConfigValues, SizeOutOfRangeUsesUnits) {
  EXPECT_EQ(only_error("hub = x\nbuffer = 2GiB\n"),
            "agent.conf:2: buffer must be 1KiB..1GiB, got 2GiB");
}

TEST(ConfigValues, SizeRejectsNegative) {
  EXPECT_NE(only_error("hub = x\nbuffer = -1KiB\n").find("must be a size"), std::string::npos);
}

TEST(ConfigValues, ChoiceAcceptsListedValue) {
  ParseResult r = parse_ok_prefix("log_level = debug\n");
  EXPECT_EQ(ok(r).global().str("log_level"), "debug");
}

TEST(ConfigValues, ChoiceRejectsOtherValue) {
  EXPECT_EQ(only_error("hub = x\nlog_level = verbose\n"),
            "agent.conf:2: log_level must be one of debug|info|warn|error, got 'verbose'");
}

TEST(ConfigValues, ChoiceRejectsPrefixOfChoice) {
  EXPECT_NE(only_error("hub = x\nlog_level = inf\n").find("must be one of"), std::string::npos);
}

TEST(ConfigValues, RequiredStringMustNotBeEmpty) {
  EXPECT_EQ(only_error("hub =\n"), "agent.conf:1: hub must not be empty");
}

TEST(ConfigValues, StringWithNonEmptyDefaultMustNotBeEmpty) {
  EXPECT_EQ(only_error("hub = x\nmotto = \"\"\n"), "agent.conf:2: motto must not be empty");
}

TEST(ConfigValues, StringWithEmptyDefaultMayBeEmpty) {
  ParseResult r = parse_ok_prefix("label =\n");
  EXPECT_TRUE(ok(r).global().is_set("label"));
  EXPECT_EQ(ok(r).global().str("label"), "");
}

TEST(ConfigValues, SecretIsStored) {
  ParseResult r = parse_ok_prefix("[provider p]\nkind = openai\napi_key = sk-123#=\n");
  const Section* p = ok(r).section("provider", "p");
  ASSERT_NE(p, nullptr);
  EXPECT_TRUE(p->secret("api_key").equals("sk-123#="));
}

TEST(ConfigValues, RequiredSecretMustNotBeEmpty) {
  EXPECT_EQ(only_error("hub = x\n[provider p]\nkind = openai\napi_key = \"\"\n"),
            "agent.conf:4: api_key must not be empty");
}

TEST(ConfigValues, SecretNeverAppearsInErrors) {
  ParseResult r = parse(
      "hub = x\n"
      "token = SECRETVALUE0\n"
      "token = SECRETVALUE1\n"             // duplicate
      "[provider a]\nkind = openai\n"
      "api_key SECRETVALUE2\n"              // no '='
      "SECRETVALUE3\n"                      // pasted alone
      "Api_key = SECRETVALUE4\n"            // bad key name
      "api_key = \"SECRETVALUE5\n"          // unterminated quote
      "[provider b]\nkind = openai\n"
      "api_key = \"SECRETVALUE6\\x\"\n"     // bad escape
      "[provider c]\nkind = openai\n"
      "api_key = \"SECRETVALUE7\" x\n"      // text after quote
      "[provider d]\nkind = openai\n"
      "api_key = SECRETVALUE8\x01\n"        // control character
      "[provider e]\nkind = openai\n"
      "api_key = SECRETVALUE9\xff\n",       // bad UTF-8
      "agent.conf", schema());
  ASSERT_FALSE(r.config.has_value());
  EXPECT_GE(r.errors.size(), 10u);
  for (const Diagnostic& d : r.errors) {
    EXPECT_EQ(d.to_string().find("SECRET"), std::string::npos) << d.to_string();
  }
}

TEST(ConfigValues, LongValueIsTruncatedInMessage) {
  std::string v(100, 'z');
  EXPECT_EQ(only_error("hub = x\nlog_level = " + v + "\n"),
            "agent.conf:2: log_level must be one of debug|info|warn|error, got '" +
                std::string(64, 'z') + "'...");
}

TEST(ConfigValues, MessageEscapesControlAndQuoteBytes) {
  EXPECT_EQ(only_error("hub = x\nlog_level = a'b\\c\xc3\xa9\n"),
            "agent.conf:2: log_level must be one of debug|info|warn|error, got "
            "'a\\'b\\\\c\\xc3\\xa9'");
}

TEST(ConfigSchema, BadDefaultIsReported) {
  Schema s{{{"", false, false, {{"n", Type::integer, "500", 1, 10}}}}};
  ParseResult r = parse("", "x.conf", s);
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_EQ(r.errors[0].to_string(),
            "x.conf: schema error: default of global section key 'n': n must be 1..10, got 500");
}

// ---- limits ---------------------------------------------------------------------

TEST(ConfigLimits, FileTooLarge) {
  std::string text(kMaxFileBytes + 1, '#');
  EXPECT_EQ(only_error(text), "agent.conf: file is larger than 1MiB (1048577 bytes)");
}

TEST(ConfigLimits, LineTooLongStopsParsing) {
  std::string text = "hub = x\nlabel = " + std::string(kMaxLineBytes, 'a') + "\nbad line\n";
  EXPECT_EQ(only_error(text), "agent.conf:2: line is longer than 4096 bytes");
}

TEST(ConfigLimits, LongestLineIsAccepted) {
  std::string value(kMaxLineBytes - 8, 'a');
  ParseResult r = parse_ok_prefix("label = " + value + "\n");
  EXPECT_EQ(ok(r).global().str("label"), value);
}

TEST(ConfigLimits, TooManySectionsStopsParsing) {
  std::string text = "hub = x\n";
  for (size_t i = 0; i < kMaxSections; ++i) text += "[route]\nmodel = m\n";
  EXPECT_EQ(only_error(text), "agent.conf:2048: more than 1024 sections");
}

TEST(ConfigLimits, TooManyKeysInSectionStopsParsing) {
  static std::vector<std::string> names;
  Schema s{{{"", false, false, {}}}};
  for (size_t i = 0; i <= kMaxKeysPerSection; ++i) names.push_back("k" + std::to_string(i));
  std::string text;
  for (const std::string& n : names) {
    s.sections[0].keys.push_back({n.c_str(), Type::integer, "0", 0, 10});
    text += n + " = 1\n";
  }
  ParseResult r = parse(text, "x.conf", s);
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_EQ(r.errors[0].to_string(), "x.conf:257: more than 256 keys in global section");
}

TEST(ConfigLimits, TooManyErrorsStopsParsing) {
  std::string text = "hub = x\n";
  for (int i = 0; i < 500; ++i) text += "nope = 1\n";
  ParseResult r = parse(text, "agent.conf", schema());
  ASSERT_EQ(r.errors.size(), kMaxDiagnostics + 1);
  EXPECT_EQ(r.errors.back().to_string(), "agent.conf: too many errors (more than 100); stopping");
}

// ---- load --------------------------------------------------------------------------

TEST(ConfigLoad, ReadsFile) {
  char path[] = "/tmp/tg-config-test-XXXXXX";
  int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  close(fd);
  std::ofstream(path) << "hub = from-file\n";
  ParseResult r = load(path, schema());
  std::remove(path);
  EXPECT_EQ(ok(r).global().str("hub"), "from-file");
  EXPECT_EQ(ok(r).file(), path);
}

TEST(ConfigLoad, MissingFileIsLineZeroDiagnostic) {
  ParseResult r = load("/nonexistent/agent.conf", schema());
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_EQ(r.errors[0].to_string(),
            "/nonexistent/agent.conf: cannot open: No such file or directory");
}

TEST(ConfigLoad, DirectoryIsRefused) {
  ParseResult r = load("/tmp", schema());
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_EQ(r.errors[0].to_string(), "/tmp: not a regular file");
}

}  // namespace
}  // namespace tg::config

namespace tg::config {
namespace {

Schema path_schema() {
  Schema s;
  s.sections.push_back({"", false, false, {Key{"file", Type::string, "x.db", 0, 0, nullptr, nullptr},
                                           Key{"n", Type::integer, "1", 0, 9, nullptr, nullptr}}});
  return s;
}

TEST(ConfigHelpers, ResolvePathIsRelativeToTheFile) {
  auto r = parse("", "/etc/tokengo/hub.conf", path_schema());
  ASSERT_TRUE(r.config);
  EXPECT_EQ(r.config->resolve_path("state/hub.db"), "/etc/tokengo/state/hub.db");
  EXPECT_EQ(r.config->resolve_path("/var/lib/x"), "/var/lib/x");
  EXPECT_EQ(r.config->resolve_path(""), "");
  auto bare = parse("", "hub.conf", path_schema());
  EXPECT_EQ(bare.config->resolve_path("x.db"), "x.db");
}

TEST(ConfigHelpers, DiagnosticSitsOnTheKeysLine) {
  auto r = parse("\n\nn = 3\n", "a.conf", path_schema());
  ASSERT_TRUE(r.config);
  EXPECT_EQ(r.config->diagnostic(r.config->global(), "n", "n is odd").to_string(), "a.conf:3: n is odd");
  EXPECT_EQ(r.config->diagnostic(r.config->global(), "file", "no file").to_string(), "a.conf: no file");
}

}  // namespace
}  // namespace tg::config
