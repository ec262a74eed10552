// The event catalog against the schemas' own examples: every valid example
// validates, every invalid one is rejected naming the expected field, and the
// RiskAssessed v1 -> v2 upcaster reproduces every documented pair.
#include "caseledger/domain/catalog.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>

#include "caseledger/domain/case.h"

namespace caseledger::domain {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;

const fs::path kSchemas = fs::path(CASELEDGER_SOURCE_DIR) / "schemas";

Json ReadJson(const fs::path& p) {
  std::ifstream in(p);
  return Json::parse(in);
}

class CatalogTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto c = EventCatalog::Load();
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    catalog_ = *c;
  }
  static std::shared_ptr<const EventCatalog> catalog_;
};
std::shared_ptr<const EventCatalog> CatalogTest::catalog_;

// Every array has maxItems and every string that is not a code has
// maxLength: without them a body's validation cost is not bounded by its
// size (uniqueItems compares every pair; patterns run on any length).
TEST_F(CatalogTest, EveryArrayAndEveryStringHasALimit) {
  size_t arrays = 0, strings = 0;
  std::function<void(const Json&, const std::string&)> walk =
      [&](const Json& node, const std::string& where) {
        if (node.is_array()) {
          for (size_t i = 0; i < node.size(); ++i) {
            walk(node[i], where + "/" + std::to_string(i));
          }
          return;
        }
        if (!node.is_object()) return;
        if (node.value("type", "") == "array") {
          ++arrays;
          EXPECT_TRUE(node.contains("maxItems")) << where;
        }
        if (node.value("type", "") == "string" && !node.contains("enum") &&
            !node.contains("const")) {
          ++strings;
          EXPECT_TRUE(node.contains("maxLength")) << where;
        }
        // std::regex recurses once per character an unbounded repetition
        // matches: every repetition in a pattern is bounded.
        const std::string pattern = node.value("pattern", "");
        bool in_class = false;
        for (size_t i = 0; i < pattern.size(); ++i) {
          const char c = pattern[i];
          if (c == '\\') {
            ++i;  // an escaped character
          } else if (c == '[') {
            in_class = true;
          } else if (c == ']') {
            in_class = false;
          } else if (!in_class && (c == '+' || c == '*')) {
            ADD_FAILURE() << where << ": unbounded repetition in " << pattern;
          }
        }
        for (const auto& [key, child] : node.items()) {
          walk(child, where + "/" + key);
        }
      };
  for (const auto& entry : fs::directory_iterator(kSchemas / "events")) {
    walk(ReadJson(entry.path()), entry.path().filename().string());
  }
  EXPECT_GT(arrays, 25u);
  EXPECT_GT(strings, 10u);
}

// What once took 32 s (8,000 duplicate items: valijson compares every pair)
// or could overflow the stack (a pattern run on a long string) is rejected
// at the limit, naming the field. Fifty thousand items would take hours if
// the check were still quadratic.
TEST_F(CatalogTest, HostileSizesAreRejectedAtTheirLimitNamingTheField) {
  const Json valid =
      ReadJson(kSchemas / "examples" / "ConcernReported" / "valid-1.json");
  ASSERT_TRUE(catalog_->Validate("ConcernReported", 1, valid).ok());
  Json dup = valid;
  dup["categories"] = Json::array();
  for (int i = 0; i < 50000; ++i) {
    dup["categories"].push_back(valid["categories"][0]);
  }
  Status s = catalog_->Validate("ConcernReported", 1, dup);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.field().value_or("<none>"), "/categories") << s.ToString();

  Json people = valid;
  for (int i = 0; i < 20000; ++i) {
    people["people_involved"].push_back(valid["people_involved"][0]);
  }
  s = catalog_->Validate("ConcernReported", 1, people);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.field().value_or("<none>"), "/people_involved") << s.ToString();

  // A timestamp with half a million digits of fraction, and an id as long.
  Json when = valid;
  when["occurred_at"] = "2026-03-01T10:00:00." + std::string(500000, '7') + "Z";
  s = catalog_->Validate("ConcernReported", 1, when);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.field().value_or("<none>"), "/occurred_at") << s.ToString();
  Json text = valid;
  text["people_involved"][0]["person_ref"] = std::string(500000, 'a');
  s = catalog_->Validate("ConcernReported", 1, text);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.field().value_or("<none>"), "/people_involved/0/person_ref")
      << s.ToString();
  // An e-mail address as long as the largest text (the second pass runs
  // every pattern on the cut-down copy).
  Json mail = valid;
  mail["people_involved"][0]["contact"] = {
      {"email", std::string(30000, 'a') + "@" + std::string(30000, 'b')}};
  s = catalog_->Validate("ConcernReported", 1, mail);
  ASSERT_FALSE(s.ok());
  // Cutting the copy down never splits a character: a long text of
  // four-byte characters is still refused for its length.
  Json wide = valid;
  std::string emoji;
  for (int i = 0; i < 30000; ++i) emoji += "\xF0\x9F\x98\x80";
  wide["facts"] = emoji;
  s = catalog_->Validate("ConcernReported", 1, wide);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.field().value_or("<none>"), "/facts") << s.ToString();
}

TEST_F(CatalogTest, KnowsEveryEventTypeAndItsCurrentVersion) {
  for (const char* type : {"ConcernReported",
                           "CaseTriaged",
                           "LeadAssigned",
                           "LeadReassigned",
                           "DesiredOutcomesRecorded",
                           "ParticipationAgreed",
                           "ConsentRecorded",
                           "ConsentOverridden",
                           "RiskAssessed",
                           "SafetyPlanAgreed",
                           "EscalationRaised",
                           "EscalationAcknowledged",
                           "EscalationOutcomeRecorded",
                           "ReviewScheduled",
                           "ReviewCompleted",
                           "CaseClosed",
                           "CaseReopened",
                           "EventAmended",
                           "LearningRecorded",
                           "ActionAssigned",
                           "ActionCompleted",
                           "AuditFindingRecorded",
                           "ReauditScheduled",
                           "CapacityAssessed",
                           "InformationShared",
                           "PersonInformedOfReport"}) {
    EXPECT_TRUE(catalog_->Knows(type)) << type;
  }
  EXPECT_EQ(catalog_->CurrentVersion("RiskAssessed"), 2u);
  EXPECT_EQ(catalog_->CurrentVersion("ConcernReported"), 1u);
  EXPECT_FALSE(catalog_->Knows("common"));
  EXPECT_EQ(catalog_->CurrentVersion("NoSuchEvent"), 0u);
}

// A case keeps one shared name of each of these types for all its events
// (CaseEvents): a type left out would work, but copied into every case.
TEST_F(CatalogTest, CasesShareTheNameOfEveryEventType) {
  for (const std::string& type : catalog_->Types()) {
    if (IsSystemEventType(type)) continue;  // never a case's
    EXPECT_TRUE(CaseEvents::Shared(type)) << type;
  }
  EXPECT_FALSE(CaseEvents::Shared("NotAnEventType"));
}

TEST_F(CatalogTest, EveryExampleIsJudgedAsItsExpectationSays) {
  size_t valid = 0, invalid = 0;
  for (const auto& dir : fs::directory_iterator(kSchemas / "examples")) {
    std::string name = dir.path().filename().string();
    std::string type = name;
    uint32_t version = 1;
    if (size_t dot = name.find(".v"); dot != std::string::npos) {
      type = name.substr(0, dot);
      version = static_cast<uint32_t>(std::stoul(name.substr(dot + 2)));
    }
    ASSERT_TRUE(catalog_->Knows(type)) << name;
    for (const auto& f : fs::directory_iterator(dir.path())) {
      std::string file = f.path().filename().string();
      if (file.find(".expect.") != std::string::npos) continue;
      Json payload = ReadJson(f.path());
      Status s = catalog_->Validate(type, version, payload);
      if (file.rfind("valid-", 0) == 0) {
        EXPECT_TRUE(s.ok()) << name << "/" << file << ": " << s.ToString();
        ++valid;
      } else if (file.rfind("invalid-", 0) == 0) {
        fs::path expect = f.path();
        expect.replace_extension(".expect.json");
        Json e = ReadJson(expect);
        ASSERT_FALSE(s.ok()) << name << "/" << file << " was accepted";
        EXPECT_TRUE(s.IsInvalidArgument());
        ASSERT_TRUE(s.field().has_value());
        // The examples' pointers are jsonschema's (check_schemas.py): a
        // missing property is reported at the object that lacks it; the
        // catalog names the property itself, one level down.
        std::string got = *s.field();
        if (s.message().find("Missing required property") !=
            std::string::npos) {
          got = got.substr(0, got.rfind('/'));
        }
        EXPECT_EQ(got, e["pointer"].get<std::string>())
            << name << "/" << file << ": " << s.message() << " (expected "
            << e["reason"] << ")";
        ++invalid;
      }
    }
  }
  EXPECT_GE(valid, 29u);
  EXPECT_GE(invalid, 29u);
}

TEST_F(CatalogTest, EveryEventTypeHasValidAndInvalidExamples) {
  for (const std::string& type : catalog_->Types()) {
    for (uint32_t v = 1; v <= catalog_->CurrentVersion(type); ++v) {
      fs::path dir = kSchemas / "examples" /
                     (v == 1 ? type : type + ".v" + std::to_string(v));
      EXPECT_TRUE(fs::exists(dir / "valid-1.json")) << dir;
      EXPECT_TRUE(fs::exists(dir / "invalid-1.json")) << dir;
      EXPECT_TRUE(fs::exists(dir / "invalid-1.expect.json")) << dir;
    }
  }
}

TEST_F(CatalogTest, DatesAndTimesAreCheckedToTheDayOfTheMonth) {
  Json review = {{"review_id", "review-1"},
                 {"kind", "with_person"},
                 {"reason", "plan_review_date"}};
  for (const char* good : {"2026-04-30", "2026-02-29", "2026-12-31"}) {
    review["due_date"] = good;
    Status s = catalog_->Validate("ReviewScheduled", 1, review);
    EXPECT_TRUE(s.ok()) << good << ": " << s.ToString();
  }
  for (const char* bad : {"2026-04-31", "2026-02-30", "2026-13-01",
                          "2026-00-10", "26-04-01", "2026-04-01T10:00:00Z"}) {
    review["due_date"] = bad;
    Status s = catalog_->Validate("ReviewScheduled", 1, review);
    EXPECT_TRUE(s.IsInvalidArgument()) << bad;
    EXPECT_EQ(s.field().value_or(""), "/due_date") << bad;
  }
  Json report =
      ReadJson(kSchemas / "examples" / "ConcernReported" / "valid-1.json");
  for (const char* good : {"2026-03-01T10:00:00Z", "2026-03-01T10:00:00.25Z",
                           "2026-03-01T10:00:00+01:00"}) {
    report["occurred_at"] = good;
    Status s = catalog_->Validate("ConcernReported", 1, report);
    EXPECT_TRUE(s.ok()) << good << ": " << s.ToString();
  }
  for (const char* bad :
       {"2026-03-01T24:00:00Z", "2026-02-30T10:00:00Z", "2026-03-01 10:00:00Z",
        "2026-03-01T10:00:00", "2026-03-01T10:00:00+1:00"}) {
    report["occurred_at"] = bad;
    Status s = catalog_->Validate("ConcernReported", 1, report);
    EXPECT_TRUE(s.IsInvalidArgument()) << bad;
    EXPECT_EQ(s.field().value_or(""), "/occurred_at") << bad;
  }
}

TEST_F(CatalogTest, UnknownTypeOrVersionIsRejected) {
  EXPECT_TRUE(
      catalog_->Validate("NoSuchEvent", 1, Json::object()).IsInvalidArgument());
  EXPECT_TRUE(catalog_->Validate("ConcernReported", 9, Json::object())
                  .IsInvalidArgument());
}

TEST_F(CatalogTest, RiskAssessedV1UpcastsToV2ForEveryDocumentedPair) {
  Json upcasts = ReadJson(kSchemas / "upcasts" / "RiskAssessed.v1-to-v2.json");
  ASSERT_GE(upcasts["pairs"].size(), 7u);
  for (const auto& pair : upcasts["pairs"]) {
    ASSERT_TRUE(catalog_->Validate("RiskAssessed", 1, pair["v1"]).ok());
    auto up = catalog_->Upcast("RiskAssessed", 1, pair["v1"]);
    ASSERT_TRUE(up.ok()) << up.status().ToString();
    EXPECT_EQ(*up, pair["v2"]);
    EXPECT_TRUE(catalog_->Validate("RiskAssessed", 2, *up).ok())
        << catalog_->Validate("RiskAssessed", 2, *up).ToString();
  }
  // The current version passes through unchanged.
  Json v2 = upcasts["pairs"][0]["v2"];
  auto same = catalog_->Upcast("RiskAssessed", 2, v2);
  ASSERT_TRUE(same.ok());
  EXPECT_EQ(*same, v2);
  EXPECT_TRUE(
      catalog_->Upcast("RiskAssessed", 3, v2).status().IsInvalidArgument());
}

TEST_F(CatalogTest, LearningScreenedV1UpcastsToV2Unchanged) {
  EXPECT_EQ(catalog_->CurrentVersion("LearningScreened"), 2u);
  for (const char* example : {"valid-1.json"}) {
    const Json v1 =
        ReadJson(kSchemas / "examples" / "LearningScreened" / example);
    auto up = catalog_->Upcast("LearningScreened", 1, v1);
    ASSERT_TRUE(up.ok()) << up.status().ToString();
    EXPECT_EQ(*up, v1);
    EXPECT_TRUE(catalog_->Validate("LearningScreened", 2, *up).ok());
  }
}

TEST_F(CatalogTest, ShareableFieldsComeFromTheSchemaAnnotations) {
  EXPECT_EQ(catalog_->ShareablePaths("LearningRecorded", 1),
            (std::vector<std::string>{"/what_must_change", "/what_went_well"}));
  EXPECT_EQ(catalog_->ShareablePaths("ActionAssigned", 1),
            (std::vector<std::string>{"/shareable_description"}));
  EXPECT_TRUE(catalog_->ShareablePaths("LearningScreened", 2).empty());
}

TEST_F(CatalogTest, PersonalFieldsComeFromTheSchemaAnnotations) {
  auto paths = catalog_->PersonalPaths("ConcernReported", 1);
  auto has = [&](const std::string& p) {
    return std::find(paths.begin(), paths.end(), p) != paths.end();
  };
  EXPECT_TRUE(has("/facts"));
  EXPECT_TRUE(has("/people_involved/-/name"))
      << ::testing::PrintToString(paths);
  EXPECT_FALSE(has("/categories"));
  EXPECT_FALSE(has("/immediate_risk"));
  auto learning = catalog_->PersonalPaths("LearningRecorded", 1);
  EXPECT_EQ(std::find(learning.begin(), learning.end(), "/what_went_well"),
            learning.end());
}

}  // namespace
}  // namespace caseledger::domain
