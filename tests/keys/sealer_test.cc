// The sealer: every personal field of every event type's examples sealed
// and opened again unchanged; the key a field takes; ciphertext moved to
// another event, field or case refused; erased and withheld markers.
#include "caseledger/keys/sealer.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "caseledger/domain/catalog.h"
#include "tests/support/test_support.h"

namespace caseledger::keys {
namespace {

namespace fs = std::filesystem;
using ::caseledger::testing::IsOk;
using ::caseledger::testing::TempDir;
using Json = nlohmann::json;

const fs::path kExamples = fs::path(CASELEDGER_SOURCE_DIR) / "schemas/examples";

Json ReadJson(const fs::path& p) {
  std::ifstream in(p);
  return Json::parse(in);
}

// Every string under `value`.
void Strings(const Json& value, std::vector<std::string>* out) {
  if (value.is_string()) {
    out->push_back(value.get<std::string>());
  } else if (value.is_structured()) {
    for (const auto& v : value) Strings(v, out);
  }
}

class SealerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto catalog = domain::EventCatalog::Load();
    ASSERT_THAT(catalog, IsOk());
    catalog_ = *catalog;
    KeyStoreOptions o;
    o.destroyed_list = tmp_.path() + "/destroyed";
    ASSERT_THAT(
        KeyStore::Open(o, tmp_.path() + "/keys", Kek::Generate(), {}, &keys_),
        IsOk());
    sealer_ = std::make_unique<Sealer>(catalog_, keys_.get());
  }

  Json Concern() {
    return ReadJson(kExamples / "ConcernReported" / "valid-1.json");
  }

  TempDir tmp_;
  std::shared_ptr<const domain::EventCatalog> catalog_;
  std::unique_ptr<KeyStore> keys_;
  std::unique_ptr<Sealer> sealer_;
  EventId id_ = EventId::NewV7();
};

TEST_F(SealerTest, EveryExampleOfEveryTypeSealsAndOpensUnchanged) {
  int sealed_examples = 0;
  for (const auto& dir : fs::directory_iterator(kExamples)) {
    if (!dir.is_directory()) continue;
    std::string type = dir.path().filename().string();
    uint32_t version = 1;
    if (auto dot = type.find(".v"); dot != std::string::npos) {
      version = static_cast<uint32_t>(std::stoul(type.substr(dot + 2)));
      type = type.substr(0, dot);
    }
    for (const auto& file : fs::directory_iterator(dir.path())) {
      const std::string name = file.path().filename().string();
      if (name.rfind("valid-", 0) != 0) continue;
      SCOPED_TRACE(type + " " + name);
      const Json original = ReadJson(file.path());
      // The strings under personal fields, before sealing.
      std::vector<std::string> personal;
      std::vector<std::string> paths = catalog_->PersonalPaths(type, version);
      // Text written for sharing is sealed as well, until it is released.
      for (const std::string& p : catalog_->ShareablePaths(type, version)) {
        paths.push_back(p);
      }
      if (type == "EventAmended") {
        // Personal as the amended event's schema says, field by field.
        paths = {"/reason"};
        for (const std::string& p : catalog_->ShareablePaths(
                 original.value("amends_event_type", ""),
                 original.value("amends_schema_version", 1u))) {
          paths.push_back("/corrected_fields" + p);
        }
        for (const std::string& p : catalog_->PersonalPaths(
                 original.value("amends_event_type", ""),
                 original.value("amends_schema_version", 1u))) {
          paths.push_back("/corrected_fields" + p);
        }
      }
      for (const std::string& p : paths) {
        if (p.find('-') != std::string::npos) continue;  // arrays: below
        const Json::json_pointer ptr(p);
        if (original.contains(ptr)) Strings(original.at(ptr), &personal);
      }
      Json payload = original;
      const EventId id = EventId::NewV7();
      ASSERT_THAT(sealer_->Seal("case-x", id, type, version, &payload), IsOk());
      const std::string stored = payload.dump();
      for (const std::string& s : personal) {
        if (s.size() >= 4) {
          EXPECT_EQ(stored.find(s), std::string::npos) << s;
        }
      }
      if (payload != original) ++sealed_examples;
      // The sealed payload is still valid JSON of the same shape outside
      // the personal fields, and opens to the original.
      ASSERT_THAT(sealer_->UnsealEvent("case-x", id, &payload), IsOk());
      EXPECT_EQ(payload, original);
    }
  }
  EXPECT_GT(sealed_examples, 25);
}

TEST_F(SealerTest, PeopleTakeTheirOwnKeyAndTheNarrativeTheCases) {
  Json p = Concern();
  ASSERT_THAT(sealer_->Seal("case-1", id_, "ConcernReported", 1, &p), IsOk());
  const auto token = [](const Json& v) {
    EXPECT_TRUE(Sealer::IsSealed(v)) << v.dump();
    return v.value("$sealed", "");
  };
  EXPECT_THAT(token(p["people_involved"][0]["name"]),
              ::testing::StartsWith("1|person:person-1|" + id_.ToString() +
                                    "|/people_involved/0/name|"));
  EXPECT_THAT(token(p["people_involved"][1]["description"]),
              ::testing::StartsWith("1|person:person-2|"));
  EXPECT_THAT(token(p["people_involved"][0]["contact"]),
              ::testing::StartsWith("1|person:person-1|"));
  EXPECT_THAT(token(p["facts"]), ::testing::StartsWith("1|case|"));
  // What is not personal stays as it was.
  EXPECT_EQ(p["people_involved"][0]["person_ref"], "person-1");
  EXPECT_EQ(p["people_involved"][0]["age_band"], "18_64");
  EXPECT_EQ(p["categories"], Concern()["categories"]);
  EXPECT_EQ(p["kind"], "incident");
  // Two seals of the same value differ (a fresh nonce each time).
  Json again = Concern();
  ASSERT_THAT(sealer_->Seal("case-1", id_, "ConcernReported", 1, &again),
              IsOk());
  EXPECT_NE(again["facts"], p["facts"]);
}

TEST_F(SealerTest, CiphertextMovedToAnotherFieldEventOrCaseDoesNotOpen) {
  Json p = Concern();
  ASSERT_THAT(sealer_->Seal("case-1", id_, "ConcernReported", 1, &p), IsOk());

  Json moved_field = p;
  moved_field["persons_own_words"] = p["facts"];
  EXPECT_TRUE(sealer_->UnsealEvent("case-1", id_, &moved_field).IsCorruption());

  Json same = p;
  EXPECT_TRUE(
      sealer_->UnsealEvent("case-1", EventId::NewV7(), &same).IsCorruption());

  // Rewriting the token's own path to where it now sits does not help: the
  // path is part of the associated data.
  Json relabelled = p;
  std::string t = p["facts"]["$sealed"];
  t.replace(t.find("|/facts|"), 8, "|/persons_own_words|");
  relabelled["persons_own_words"]["$sealed"] = t;
  EXPECT_TRUE(sealer_->UnsealEvent("case-1", id_, &relabelled).IsCorruption());
  EXPECT_TRUE(sealer_->UnsealDocument("case-1", &relabelled).IsCorruption());

  // Another case, even with a key of its own for the same scope.
  Json other = p;
  ASSERT_THAT(keys_->GetOrCreate("case-2", {Scope::Case()}), IsOk());
  EXPECT_TRUE(sealer_->UnsealDocument("case-2", &other).IsCorruption());

  // One flipped character of the ciphertext.
  Json altered = p;
  std::string a = p["facts"]["$sealed"];
  a[a.size() - 6] = a[a.size() - 6] == 'A' ? 'B' : 'A';
  altered["facts"]["$sealed"] = a;
  EXPECT_TRUE(sealer_->UnsealEvent("case-1", id_, &altered).IsCorruption());
}

TEST_F(SealerTest, ADocumentOpensWhereverItsValuesWereCopied) {
  Json p = Concern();
  ASSERT_THAT(sealer_->Seal("case-1", id_, "ConcernReported", 1, &p), IsOk());
  Json doc = {{"people", p["people_involved"]},
              {"report", {{"facts", p["facts"]}, {"kind", p["kind"]}}}};
  ASSERT_THAT(sealer_->UnsealDocument("case-1", &doc), IsOk());
  EXPECT_EQ(doc["people"], Concern()["people_involved"]);
  EXPECT_EQ(doc["report"]["facts"], Concern()["facts"]);
}

TEST_F(SealerTest, ErasingOnePersonLeavesTheRestReadable) {
  Json p = Concern();
  ASSERT_THAT(sealer_->Seal("case-1", id_, "ConcernReported", 1, &p), IsOk());
  ASSERT_THAT(keys_->Destroy("case-1", Scope::Person("person-2"), "test"),
              IsOk());
  Json opened = p;
  ASSERT_THAT(sealer_->UnsealEvent("case-1", id_, &opened), IsOk());
  EXPECT_EQ(opened["people_involved"][1]["name"], kErasedMarker);
  EXPECT_EQ(opened["people_involved"][1]["description"], kErasedMarker);
  EXPECT_EQ(opened["people_involved"][0]["name"], "Person A");
  EXPECT_EQ(opened["facts"], Concern()["facts"]);

  Json withheld = p;
  sealer_->Withhold("case-1", &withheld);
  EXPECT_EQ(withheld["people_involved"][1]["name"], kErasedMarker);
  EXPECT_EQ(withheld["people_involved"][0]["name"], kWithheldMarker);
  EXPECT_EQ(withheld["facts"], kWithheldMarker);

  // Nothing more may be recorded about the erased person.
  Json more = Concern();
  EXPECT_TRUE(
      sealer_->Seal("case-1", EventId::NewV7(), "ConcernReported", 1, &more)
          .IsFailedPrecondition());
}

TEST_F(SealerTest, AnAmendmentSealsTheCorrectedFieldsByTheAmendedSchema) {
  Json a = {{"amends_event_id", id_.ToString()},
            {"amends_event_type", "ConcernReported"},
            {"amends_schema_version", 1},
            {"corrected_fields",
             {{"categories", {"psychological"}},
              {"facts", "Person B said something else."},
              {"people_involved",
               {{{"person_ref", "person-1"},
                 {"roles", {"person_affected"}},
                 {"name", "Person A-B"}}}}}},
            {"reason", "The report misheard the words."}};
  const Json original = a;
  ASSERT_THAT(sealer_->Seal("case-1", id_, "EventAmended", 1, &a), IsOk());
  EXPECT_EQ(a["corrected_fields"]["categories"],
            original["corrected_fields"]["categories"]);
  EXPECT_TRUE(Sealer::IsSealed(a["corrected_fields"]["facts"]));
  EXPECT_TRUE(
      Sealer::IsSealed(a["corrected_fields"]["people_involved"][0]["name"]));
  EXPECT_EQ(a["corrected_fields"]["people_involved"][0]["person_ref"],
            "person-1");
  EXPECT_TRUE(Sealer::IsSealed(a["reason"]));
  ASSERT_THAT(sealer_->UnsealEvent("case-1", id_, &a), IsOk());
  EXPECT_EQ(a, original);
}

}  // namespace
}  // namespace caseledger::keys
