// ParseStoredJson must make exactly the document nlohmann's parser makes,
// value types included (a fold reads them), for any text.
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "caseledger/service/case_service.h"
#include "caseledger/service/seed.h"
#include "tests/support/json_same.h"
#include "tests/support/seeding.h"
#include "tests/support/test_support.h"

namespace caseledger::service {
namespace {

using Json = nlohmann::json;

using testing::SameJson;

void ExpectSame(const std::string& text) {
  const Json want = Json::parse(text, nullptr, false);
  const Json got = ParseStoredJson(text);
  EXPECT_EQ(got.is_discarded(), want.is_discarded()) << text;
  if (!want.is_discarded() && !got.is_discarded()) {
    EXPECT_TRUE(SameJson(got, want))
        << text << "\n got " << got.dump() << "\nwant " << want.dump();
  }
}

TEST(StoredJsonTest, EdgeCasesReadAsNlohmannReadsThem) {
  const std::vector<std::string> texts = {
      "{}", "[]", "null", "true", "false", "0", "-0", "-0.0", "0.0", "-1",
      "1.5", "1e2", "1E-2", "-1.25e+3", "1e400", "-1e400", "5e-324",
      "9223372036854775807", "9223372036854775808", "-9223372036854775808",
      "-9223372036854775809", "18446744073709551615", "18446744073709551616",
      "123456789012345678901234567890", "0.1", "2.2250738585072014e-308",
      R"("")", R"("a\"b\\c\/d\b\f\n\r\t")", R"("\u00e9\u20ac\ud83d\ude00")",
      "\"Zo\xc3\xab\"", R"("\u0000x")", R"("\ud800")", R"("\udc00\ud800")",
      "\"\xff\"", "\"\xc3\"", R"({"a":1,"a":2})",
      R"({"a":{"b":[1,{"c":null}]}})", R"({"b":1,"a":2,"c":[3,2,1]})",
      R"([1,"x",true,null,{"k":-2.5}])", "{", "}", "[1,]", R"({"a":1,})", "01",
      "1.", ".5", "+1", "NaN", "Infinity", "tru", R"({"a" 1})", "", " ", "{} x",
      " {} ", "\t[1]\n", R"({"a":-0})", R"([-0,-0.0,0])",
      // Raw control characters in a string, a byte-order mark, DEL.
      "\"a\x01b\"", "\"a\tb\"", "\"a\nb\"", "\xef\xbb\xbf{}", "\xef\xbb\xbf[1]",
      "\"\x7f\"", std::string("\"a\0b\"", 5), std::string("{}\0", 3)};
  for (const std::string& t : texts) ExpectSame(t);
  // Deeper than simdjson goes by default.
  ExpectSame(std::string(3000, '[') + std::string(3000, ']'));
}

// Random documents: nested objects and arrays of strings (escapes,
// multi-byte), integers of every range, floats and literals, written by
// nlohmann's dump and by hand with other number spellings.
TEST(StoredJsonTest, RandomDocumentsReadAsNlohmannReadsThem) {
  std::mt19937_64 rng(20261205);
  const std::vector<std::string> words = {"a", "é", "\"",  "\\", "\n", "\x01",
                                          "€", "😀", "key", " ",  "/"};
  std::function<Json(int)> make = [&](int depth) -> Json {
    switch (depth > 4 ? rng() % 6 : rng() % 8) {
      case 0:
        return Json(static_cast<int64_t>(rng()));
      case 1:
        return Json(static_cast<uint64_t>(rng()));
      case 2:
        return Json(static_cast<int64_t>(rng() % 2000) - 1000);
      case 3: {
        std::string s;
        for (size_t i = rng() % 4; i > 0; --i) s += words[rng() % words.size()];
        return Json(s);
      }
      case 4:
        return Json(std::ldexp(static_cast<double>(rng() % 100000) - 50000.0,
                               static_cast<int>(rng() % 80) - 40));
      case 5:
        return rng() % 3 == 0 ? Json(nullptr) : Json(rng() % 2 == 0);
      case 6: {
        Json o = Json::object();
        for (size_t i = rng() % 5; i > 0; --i) {
          o[words[rng() % words.size()] + std::to_string(rng() % 3)] =
              make(depth + 1);
        }
        return o;
      }
      default: {
        Json a = Json::array();
        for (size_t i = rng() % 5; i > 0; --i) a.push_back(make(depth + 1));
        return a;
      }
    }
  };
  for (int i = 0; i < 5000; ++i) {
    const Json doc = make(0);
    ExpectSame(doc.dump());
    ExpectSame(doc.dump(2));
  }
  // Other spellings of numbers than nlohmann's own.
  for (int i = 0; i < 2000; ++i) {
    const int64_t mantissa = static_cast<int64_t>(rng() % 2000000) - 1000000;
    const int exponent = static_cast<int>(rng() % 40) - 20;
    ExpectSame("[" + std::to_string(mantissa) + "e" + std::to_string(exponent) +
               "," + std::to_string(mantissa) + ".0" + "," +
               std::to_string(mantissa) + "E+" + std::to_string(exponent % 5) +
               "]");
  }
}

// Every payload the seed generator writes: what a fold reads in practice.
TEST(StoredJsonTest, SeededPayloadsReadAsNlohmannReadsThem) {
  testing::TempDir dir;
  Options o;
  o.sync = false;
  auto store = testing::OpenStore(dir.path(), o);
  auto catalog = domain::EventCatalog::Load();
  ASSERT_OK(catalog);
  SeedOptions so;
  so.cases = 30;
  testing::TestKeys keys(*catalog);
  ASSERT_OK(testing::SeedCases(*store, *catalog, keys.sealer(), so));
  auto events = store->ReadAll(GlobalPosition(0), 1u << 20);
  ASSERT_OK(events);
  ASSERT_GT(events->size(), 100u);
  for (const RecordedEvent& e : *events) ExpectSame(e.payload);
}

}  // namespace
}  // namespace caseledger::service
