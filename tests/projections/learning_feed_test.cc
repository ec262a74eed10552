// The anonymised learning feed and its summary.
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <rocksdb/db.h>

#include <chrono>
#include <map>
#include <random>
#include <regex>
#include <set>
#include <utility>

#include "caseledger/projections/read_models.h"
#include "caseledger/service/case_service.h"
#include "caseledger/service/seed.h"
#include "tests/support/seeding.h"
#include "tests/support/test_support.h"

namespace caseledger::projections {
namespace {

using Json = nlohmann::json;

constexpr char kKey[] = "test-pseudonym-key-0123456789";

class LearningFeedTest : public testing::StoreTest {
 protected:
  // case-1, reported by a DSL, naming Philippa Quennell.
  void ReportPhilippa(service::CaseService& svc) {
    Json report = testing::ReportBody();
    report["people_involved"][0]["name"] = "Philippa Quennell";
    ASSERT_OK(svc.Execute("case-1", "report", report, dsl_));
  }
  const domain::Actor dsl_{"user:dsl-1", domain::Role::kDsl};
  const domain::Actor reviewer_{"user:reviewer-1", domain::Role::kReviewer};

  // Opens sealed identifiers with the test's keys, as the server's does.
  ReadModels::IdentifierOpener Opener() {
    return
        [this](const std::string& case_id, const std::set<std::string>& sealed,
               service::Identifiers* out) {
          return service::OpenSealedIdentifiers(keys_->sealer(), case_id,
                                                sealed, out);
        };
  }

  // The read models in dir/p, caught up with the log (null if they fail).
  std::unique_ptr<ReadModels> CaughtUp() {
    auto models =
        ReadModels::Open(dir_.path() + "/p", *store_, catalog_, nullptr, kKey);
    EXPECT_OK(models);
    if (!models.ok()) return nullptr;
    (*models)->SetIdentifierOpener(Opener());
    EXPECT_OK((*models)->CatchUp());
    return std::move(*models);
  }
};

using testing::ApprovedScreening;

// An amendment of a LearningRecorded event's what_went_well.
Json LearningCorrection(const EventId& learning_event,
                        const std::string& what_went_well,
                        const std::string& reason) {
  return {{"amends_event_id", learning_event.ToString()},
          {"amends_event_type", "LearningRecorded"},
          {"amends_schema_version", 1},
          {"corrected_fields", {{"what_went_well", what_went_well}}},
          {"reason", reason}};
}

TEST_F(LearningFeedTest, TheFeedCarriesNothingThatIdentifiesAPerson) {
  service::SeedOptions so;
  so.cases = 40;
  ASSERT_OK(
      testing::SeedCases(*store_, catalog_, keys_->sealer(), so, &clock_));

  // A case whose learning text was written carelessly.
  service::CaseService svc(*store_, catalog_, domain::DomainConfig{},
                           keys_->sealer());
  const domain::Actor dsl{"user:dsl-1", domain::Role::kDsl};
  const domain::Actor reviewer{"user:reviewer-1", domain::Role::kReviewer};
  Json report = {
      {"kind", "concern"},
      {"occurred_at", "2026-02-03T10:00:00Z"},
      {"reported_at", "2026-02-03T11:00:00Z"},
      {"setting", "online_session"},
      {"people_involved",
       {{{"person_ref", "person-1"},
         {"roles", {"person_affected"}},
         {"name", "Marguerite Okonkwo-Lindqvist"},
         {"contact",
          {{"email", "m.okonkwo@example.org"}, {"phone", "01632 960123"}}}},
        {{"person_ref", "person-2"},
         {"roles", {"person_alleged_to_cause_harm"}},
         {"name", "Bartholomew Quince"},
         {"description", "screen name QuinceyB_77"}}}},
      {"facts", "Bartholomew Quince shouted at Marguerite in the chat."},
      {"categories", {"harassment"}},
      {"sac_locations_of_risk", {"in_the_community"}},
      {"sac_sources_of_risk", {"other_known_to_individual"}},
      {"immediate_risk", false},
      {"emergency_services_called", false},
      {"person_affected_knows", true},
      {"under_18_involved", false}};
  auto reported = svc.Execute("leaky-case", "report", report, dsl);
  ASSERT_OK(reported);
  ASSERT_OK(svc.Execute("leaky-case", "assign-lead",
                        {{"lead_actor_id", dsl.id},
                         {"role", "dsl"},
                         {"reason", "initial_assignment"}},
                        dsl));
  ASSERT_OK(svc.Execute(
      "leaky-case", "record-learning",
      {{"learning_id", "learning-1"},
       {"what_went_well",
        "Marguerite felt heard; call her on 01632 960123. Ottoline helped."},
       {"what_must_change",
        "Quince must not moderate; write to m.okonkwo@example.org first."},
       {"share_in", {"training"}}},
      dsl));
  ASSERT_OK(svc.Execute("leaky-case", "screen-learning",
                        ApprovedScreening("learning-1"), reviewer));

  // Learning whose first text named someone the case does not, corrected
  // before it was screened; and the ways names, numbers and dates hide.
  auto recorded = svc.Execute(
      "leaky-case", "record-learning",
      {{"learning_id", "learning-2"},
       {"what_went_well", "Zebedee Farthingale spotted it first."},
       {"what_must_change",
        "The Quinces and Okonkwo-Lindqvist's friends; QuinceyB_77 posted on "
        "14 March and on 14/03/2026; ring 01632/960124 or March 14th."},
       {"share_in", {"training"}}},
      dsl);
  ASSERT_OK(recorded);
  ASSERT_OK(
      svc.Execute("leaky-case", "amend",
                  LearningCorrection(recorded->event_ids.at(0),
                                     "A volunteer spotted it first.",
                                     "A name was written into the learning."),
                  dsl));
  ASSERT_OK(svc.Execute("leaky-case", "screen-learning",
                        ApprovedScreening("learning-2"), reviewer));

  // A name the case learns only after its learning was approved (a witness
  // added to the report by an amendment) is scrubbed from it as well.
  Json people = report["people_involved"];
  people.push_back({{"person_ref", "person-3"},
                    {"roles", {"witness"}},
                    {"name", "Ottoline Fairweather"}});
  ASSERT_OK(
      svc.Execute("leaky-case", "amend",
                  {{"amends_event_id", reported->event_ids.at(0).ToString()},
                   {"amends_event_type", "ConcernReported"},
                   {"amends_schema_version", 1},
                   {"corrected_fields", {{"people_involved", people}}},
                   {"reason", "A witness was left out of the report."}},
                  dsl));

  auto models = ReadModels::Open(dir_.path() + "/projections", *store_,
                                 catalog_, nullptr, kKey);
  ASSERT_OK(models);
  (*models)->SetIdentifierOpener(Opener());
  ASSERT_OK((*models)->CatchUp());
  std::string feed;
  size_t records = 0, learning = 0;
  uint64_t after = 0;
  for (;;) {
    auto page = (*models)->Feed(after, 100, "");
    ASSERT_OK(page);
    if (page->records.empty()) break;
    for (const auto& r : page->records) {
      feed += r.dump() + "\n";
      ++records;
      if (r["kind"] == "learning_shared") ++learning;
      EXPECT_EQ(r["seq"], after + 1);
      after = r["seq"];
    }
  }
  ASSERT_GT(records, 40u);
  ASSERT_GT(learning, 0u);
  // Nothing that names, reaches or describes a person; no case id; no date
  // finer than a month.
  std::vector<std::string> forbidden = {
      "Marguerite",   "Okonkwo",      "Lindqvist",
      "Bartholomew",  "Quince",       "m.okonkwo@example.org",
      "01632 960123", "960123",       "shouted",
      "leaky-case",   "case-0000",    "Person A",
      "Person B",     "@example.org", "remarks to",
      "T10:00",       "2026-02-03",   "Zebedee",
      "Farthingale",  "Quinces",      "QuinceyB",
      "14 March",     "14/03",        "960124",
      "March 14",     "Ottoline",     "Fairweather"};
  for (const std::string& f : forbidden) {
    EXPECT_EQ(feed.find(f), std::string::npos) << "'" << f << "' leaked";
  }
  EXPECT_FALSE(std::regex_search(feed, std::regex(R"(\d{4}-\d{2}-\d{2})")))
      << "an exact date leaked";
  EXPECT_NE(feed.find("[redacted]"), std::string::npos);
  EXPECT_NE(feed.find("\"month\":\"2026-"), std::string::npos);
  EXPECT_NE(feed.find("A volunteer spotted it first."), std::string::npos);
}

// An approval releases the learning: the LearningScreened event carries its
// text as corrected, scrubbed of the case's identifiers, and the feed shares
// that. A return releases nothing; an approval that released nothing (a v2
// event without `released`) shares nothing.
TEST_F(LearningFeedTest, AnApprovalRecordsTheReleasedTextAndTheFeedSharesIt) {
  service::CaseService svc(*store_, catalog_, domain::DomainConfig{},
                           keys_->sealer());
  ReportPhilippa(svc);
  const domain::Actor& dsl = dsl_;
  const domain::Actor& reviewer = reviewer_;
  auto recorded = svc.Execute(
      "case-1", "record-learning",
      {{"learning_id", "learning-1"},
       {"what_went_well", "Zebedee was there."},
       {"what_must_change", "Philippa, aged 44, waited until 3 May."},
       {"themes", {"harassment"}},
       {"share_in", {"training"}}},
      dsl);
  ASSERT_OK(recorded);
  ASSERT_OK(svc.Execute(
      "case-1", "amend",
      LearningCorrection(recorded->event_ids.at(0), "A volunteer was there.",
                         "A name the case does not hold."),
      dsl));
  Json returned = ApprovedScreening("learning-1");
  returned["decision"] = "returned_other";
  returned["note"] = "Say what changed.";
  auto back = svc.Execute("case-1", "screen-learning", returned, reviewer);
  ASSERT_OK(back);
  auto approved = svc.Execute("case-1", "screen-learning",
                              ApprovedScreening("learning-1"), reviewer);
  ASSERT_OK(approved);

  auto returned_event = store_->ReadEvent(back->event_ids.at(0));
  ASSERT_OK(returned_event);
  EXPECT_EQ(returned_event->schema_version, 2u);
  EXPECT_FALSE(Json::parse(returned_event->payload).contains("released"));
  auto event = store_->ReadEvent(approved->event_ids.at(0));
  ASSERT_OK(event);
  const Json released = Json::parse(event->payload).at("released");
  EXPECT_EQ(released, (Json{{"what_went_well", "A volunteer was there."},
                            {"what_must_change",
                             "[redacted], [redacted], waited until "
                             "[redacted]."}}));

  // A v2 approval that released nothing (not one the service writes).
  ProposedEvent bare;
  bare.type = "LearningScreened";
  bare.schema_version = 2;
  bare.actor = Actor{reviewer.id, "reviewer"};
  bare.payload = ApprovedScreening("learning-1").dump();
  ASSERT_OK(store_->Append("case-1", ExpectedVersion::Any(), {bare}));

  auto models = CaughtUp();
  ASSERT_NE(models, nullptr);
  auto page = models->Feed(0, 100, "");
  ASSERT_OK(page);
  std::vector<Json> shared;
  for (const Json& r : page->records) {
    if (r["kind"] == "learning_shared") shared.push_back(r);
  }
  ASSERT_EQ(shared.size(), 1u);
  EXPECT_EQ(shared[0]["what_went_well"], "A volunteer was there.");
  EXPECT_EQ(shared[0]["what_must_change"],
            "[redacted], [redacted], waited until [redacted].");
  EXPECT_EQ(shared[0]["themes"], Json::array({"harassment"}));
}

// Shared learning is scrubbed again when it is read, of the case's sealed
// identifiers: read models that cannot open them (no opener given) do not
// give the text out.
TEST_F(LearningFeedTest, SharedLearningThatCannotBeCheckedIsWithheld) {
  service::CaseService svc(*store_, catalog_, domain::DomainConfig{},
                           keys_->sealer());
  ReportPhilippa(svc);
  const domain::Actor& dsl = dsl_;
  const domain::Actor& reviewer = reviewer_;
  ASSERT_OK(svc.Execute("case-1", "record-learning",
                        {{"learning_id", "learning-1"},
                         {"what_went_well", "The lift was on time."},
                         {"what_must_change", "Nothing."},
                         {"share_in", {"training"}}},
                        dsl));
  ASSERT_OK(svc.Execute("case-1", "screen-learning",
                        ApprovedScreening("learning-1"), reviewer));
  auto models =
      ReadModels::Open(dir_.path() + "/p", *store_, catalog_, nullptr, kKey);
  ASSERT_OK(models);
  ASSERT_OK((*models)->CatchUp());
  auto page = (*models)->Feed(0, 100, "");
  ASSERT_OK(page);
  bool seen = false;
  for (const Json& r : page->records) {
    if (r["kind"] != "learning_shared") continue;
    seen = true;
    EXPECT_EQ(r["what_went_well"], "[withheld]");
  }
  EXPECT_TRUE(seen);
  // With the opener, the text (which names no one) is given out.
  (*models)->SetIdentifierOpener(Opener());
  page = (*models)->Feed(0, 100, "");
  ASSERT_OK(page);
  for (const Json& r : page->records) {
    if (r["kind"] == "learning_shared") {
      EXPECT_EQ(r["what_went_well"], "The lift was on time.");
    }
  }
}

// Learning for sharing whose what_went_well names a place (which a
// correction then takes out).
Json PlaceNamingLearning() {
  return {{"learning_id", "learning-1"},
          {"what_went_well", "The team at the Harbourside Annexe acted fast."},
          {"what_must_change", "Check the rota before each session."},
          {"share_in", {"training"}}};
}
// The correction that takes the place out of it.
Json PlaceCorrection(const EventId& learning_event) {
  return LearningCorrection(learning_event, "The team at the venue acted fast.",
                            "The venue could identify the person.");
}

TEST_F(LearningFeedTest, LearningCorrectedAfterItWasSharedIsWithdrawn) {
  service::CaseService svc(*store_, catalog_, domain::DomainConfig{},
                           keys_->sealer());
  const domain::Actor dsl{"user:dsl-1", domain::Role::kDsl};
  const domain::Actor reviewer{"user:reviewer-1", domain::Role::kReviewer};
  ASSERT_OK(svc.Execute("case-1", "report", testing::ReportBody(), dsl));
  ASSERT_OK(svc.Execute("case-1", "assign-lead",
                        {{"lead_actor_id", dsl.id},
                         {"role", "dsl"},
                         {"reason", "initial_assignment"}},
                        dsl));
  auto recorded =
      svc.Execute("case-1", "record-learning", PlaceNamingLearning(), dsl);
  ASSERT_OK(recorded);
  // Approved twice (a second reviewer looked again): two records share it.
  for (int i = 0; i < 2; ++i) {
    ASSERT_OK(svc.Execute("case-1", "screen-learning",
                          ApprovedScreening("learning-1"), reviewer));
  }
  auto models = CaughtUp();
  ASSERT_NE(models, nullptr);
  auto shared_text = [&](const FeedPage& page) {
    std::vector<std::string> out;
    for (const auto& r : page.records) {
      if (r["kind"] == "learning_shared") out.push_back(r["what_went_well"]);
    }
    return out;
  };
  auto page = models->Feed(0, 100, "");
  ASSERT_OK(page);
  const std::string original = "The team at the Harbourside Annexe acted fast.";
  ASSERT_EQ(shared_text(*page), (std::vector<std::string>{original, original}));
  const uint64_t second_seq = page->records.back()["seq"];
  const uint64_t first_seq = page->records[page->records.size() - 2]["seq"];

  // The text named a place; it is corrected after consumers may hold it.
  ASSERT_OK(svc.Execute("case-1", "amend",
                        PlaceCorrection(recorded->event_ids.at(0)), dsl));
  ASSERT_OK(models->CatchUp());
  page = models->Feed(0, 100, "");
  ASSERT_OK(page);
  EXPECT_EQ(shared_text(*page),
            (std::vector<std::string>{"[withdrawn]", "[withdrawn]"}));
  ASSERT_GE(page->records.size(), 2u);
  const Json& last = page->records.back();
  const Json& before_last = page->records[page->records.size() - 2];
  EXPECT_EQ(last["kind"], "learning_withdrawn");
  EXPECT_EQ(before_last["kind"], "learning_withdrawn");
  EXPECT_EQ(before_last["of_seq"], second_seq);
  EXPECT_EQ(last["of_seq"], first_seq);
  EXPECT_EQ(last["case"], page->records.front()["case"]);
  for (const auto& r : page->records) {
    EXPECT_EQ(r.dump().find("Harbourside"), std::string::npos) << r.dump();
  }

  // Approved again, the corrected text is shared; the old one stays
  // withdrawn, and a rebuild gives the same feed.
  ASSERT_OK(svc.Execute("case-1", "screen-learning",
                        ApprovedScreening("learning-1"), reviewer));
  ASSERT_OK(models->CatchUp());
  page = models->Feed(0, 100, "");
  ASSERT_OK(page);
  EXPECT_EQ(shared_text(*page),
            (std::vector<std::string>{"[withdrawn]", "[withdrawn]",
                                      "The team at the venue acted fast."}));
  ASSERT_OK(models->Rebuild());
  auto rebuilt = models->Feed(0, 100, "");
  ASSERT_OK(rebuilt);
  EXPECT_EQ(rebuilt->records, page->records);
}

// The read models keep recently folded cases in memory; a case they do not
// hold (after a restart, or evicted) is folded again from the log, and its
// learning text, with its corrections, must come back with it.
TEST_F(LearningFeedTest, LearningApprovedAfterARestartIsSharedAsCorrected) {
  service::CaseService svc(*store_, catalog_, domain::DomainConfig{},
                           keys_->sealer());
  const domain::Actor dsl{"user:dsl-1", domain::Role::kDsl};
  const domain::Actor reviewer{"user:reviewer-1", domain::Role::kReviewer};
  ASSERT_OK(svc.Execute("case-1", "report", testing::ReportBody(), dsl));
  auto recorded =
      svc.Execute("case-1", "record-learning", PlaceNamingLearning(), dsl);
  ASSERT_OK(recorded);
  ASSERT_OK(svc.Execute("case-1", "amend",
                        PlaceCorrection(recorded->event_ids.at(0)), dsl));
  ASSERT_NE(CaughtUp(), nullptr);  // then closed: a restart
  ASSERT_OK(svc.Execute("case-1", "screen-learning",
                        ApprovedScreening("learning-1"), reviewer));
  auto models = CaughtUp();
  ASSERT_NE(models, nullptr);
  auto page = models->Feed(0, 100, "");
  ASSERT_OK(page);
  std::vector<std::string> shared;
  for (const auto& r : page->records) {
    if (r["kind"] == "learning_shared") shared.push_back(r["what_went_well"]);
  }
  EXPECT_EQ(shared,
            (std::vector<std::string>{"The team at the venue acted fast."}));
  ASSERT_OK(models->Rebuild());
  auto rebuilt = models->Feed(0, 100, "");
  ASSERT_OK(rebuilt);
  EXPECT_EQ(rebuilt->records, page->records);
}

TEST_F(LearningFeedTest, ACaseWhoseLearningConsentIsRefusedLeavesTheFeed) {
  service::CaseService svc(*store_, catalog_, domain::DomainConfig{},
                           keys_->sealer());
  const domain::Actor dsl{"user:dsl-1", domain::Role::kDsl};
  const domain::Actor reviewer{"user:reviewer-1", domain::Role::kReviewer};
  auto run_case = [&](const std::string& id, const char* decision) {
    ASSERT_OK(svc.Execute(id, "report", testing::ReportBody(), dsl));
    ASSERT_OK(svc.Execute(id, "assign-lead",
                          {{"lead_actor_id", dsl.id},
                           {"role", "dsl"},
                           {"reason", "initial_assignment"}},
                          dsl));
    if (decision) {
      ASSERT_OK(svc.Execute(id, "record-consent",
                            {{"consent_id", "consent-learning"},
                             {"person_ref", "person-1"},
                             {"purpose", "use_in_anonymised_learning"},
                             {"decision", decision},
                             {"decided_by", "person"},
                             {"capacity", "assumed"}},
                            dsl));
    }
    ASSERT_OK(svc.Execute(id, "record-learning",
                          {{"learning_id", "learning-1"},
                           {"what_went_well", "Quick response."},
                           {"what_must_change", "Clearer guidance."},
                           {"share_in", {"training"}}},
                          dsl));
    ASSERT_OK(svc.Execute(id, "screen-learning",
                          ApprovedScreening("learning-1"), reviewer));
  };
  run_case("given-case", "given");
  run_case("refused-case", "refused");
  auto models = ReadModels::Open(dir_.path() + "/projections", *store_,
                                 catalog_, nullptr, kKey);
  ASSERT_OK(models);
  (*models)->SetIdentifierOpener(Opener());
  ASSERT_OK((*models)->CatchUp());
  auto page = (*models)->Feed(0, 100, "");
  ASSERT_OK(page);
  std::map<std::string, std::vector<std::string>> kinds;  // by pseudonym
  for (const auto& r : page->records) {
    kinds[r["case"].get<std::string>()].push_back(r["kind"]);
  }
  ASSERT_EQ(kinds.size(), 2u);
  std::vector<std::vector<std::string>> seen;
  for (const auto& [pseudonym, k] : kinds) seen.push_back(k);
  std::sort(seen.begin(), seen.end());
  // The refused case: reported, then withdrawn, and nothing after; the
  // other shares its learning.
  EXPECT_EQ(seen[0],
            (std::vector<std::string>{"case_reported", "case_withdrawn"}));
  EXPECT_EQ(seen[1],
            (std::vector<std::string>{"case_reported", "learning_shared"}));
  // And the withdrawn case left the counts: one case in all.
  auto summary = (*models)->Summary(SummaryOptions{0, 1, ""});
  ASSERT_OK(summary);
  uint64_t total = 0;
  for (const auto& [month, n] : summary->by_month) total += n.value_or(0);
  EXPECT_EQ(total, 1u);
}

TEST_F(LearningFeedTest, RebuildingReproducesTheFeedAndPseudonymsFollowTheKey) {
  service::SeedOptions so;
  so.cases = 20;
  ASSERT_OK(
      testing::SeedCases(*store_, catalog_, keys_->sealer(), so, &clock_));
  auto a =
      ReadModels::Open(dir_.path() + "/a", *store_, catalog_, nullptr, kKey);
  ASSERT_OK((*a)->CatchUp());
  auto before = (*a)->Feed(0, 100000, "");
  ASSERT_OK((*a)->Rebuild());
  auto after = (*a)->Feed(0, 100000, "");
  ASSERT_OK(before);
  ASSERT_OK(after);
  ASSERT_EQ(before->records, after->records);  // same records, same seqs
  // A case's pseudonym is "p-" and the first 16 bytes, in hex, of
  // HMAC-SHA256(key, case id), as OpenSSL's HMAC() computes it; a
  // consumer's, of HMAC-SHA256(key, "consumer\0" consumer "\0" stored).
  auto hmac = [](const std::string& key, const std::string& message) {
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
         reinterpret_cast<const unsigned char*>(message.data()), message.size(),
         mac, &len);
    std::string out = "p-";
    char hex[3];
    for (unsigned int i = 0; i < 16; ++i) {
      std::snprintf(hex, sizeof(hex), "%02x", mac[i]);
      out += hex;
    }
    return out;
  };
  std::set<std::string> expected;
  for (int i = 1; i <= 20; ++i) {
    char id[32];
    std::snprintf(id, sizeof(id), "case-%06d", i);
    expected.insert(hmac(kKey, id));
  }
  for (const Json& r : before->records) {
    EXPECT_TRUE(expected.count(r["case"].get<std::string>())) << r.dump();
  }
  {
    auto mine = (*a)->Feed(0, 1, "", "svc:one");
    ASSERT_OK(mine);
    ASSERT_EQ(mine->records.size(), 1u);
    EXPECT_EQ(mine->records[0]["case"],
              hmac(kKey, std::string("consumer") + '\0' + "svc:one" + '\0' +
                             before->records[0]["case"].get<std::string>()));
  }
  // A key longer than SHA-256's 64-byte block is hashed first (RFC 2104).
  {
    const std::string long_key(100, 'k');
    auto c = ReadModels::Open(dir_.path() + "/c", *store_, catalog_, nullptr,
                              long_key);
    ASSERT_OK(c);
    ASSERT_OK((*c)->CatchUp());
    auto page = (*c)->Feed(0, 1, "");
    ASSERT_OK(page);
    ASSERT_EQ(page->records.size(), 1u);
    EXPECT_EQ(page->records[0]["case"], hmac(long_key, "case-000001"));
  }
  auto b = ReadModels::Open(dir_.path() + "/b", *store_, catalog_, nullptr,
                            "another-key-0123456789abcdef");
  ASSERT_OK((*b)->CatchUp());
  auto other = (*b)->Feed(0, 100000, "");
  ASSERT_OK(other);
  ASSERT_EQ(other->records.size(), before->records.size());
  EXPECT_NE(other->records[0]["case"], before->records[0]["case"]);
  // Each consumer sees cases under pseudonyms of its own: the same case
  // keeps one pseudonym for a consumer, and no pseudonym is shared between
  // two consumers or with the stored feed.
  auto one = (*a)->Feed(0, 100000, "", "svc:one");
  auto two = (*a)->Feed(0, 100000, "", "svc:two");
  ASSERT_OK(one);
  ASSERT_OK(two);
  ASSERT_EQ(one->records.size(), before->records.size());
  ASSERT_EQ(two->records.size(), before->records.size());
  std::map<std::string, std::string> stored_to_one, stored_to_two;
  std::set<std::string> seen_one, seen_two, seen_stored;
  for (size_t i = 0; i < before->records.size(); ++i) {
    const std::string stored = before->records[i]["case"];
    const std::string p1 = one->records[i]["case"];
    const std::string p2 = two->records[i]["case"];
    EXPECT_EQ(p1.rfind("p-", 0), 0u);
    EXPECT_EQ(stored_to_one.emplace(stored, p1).first->second, p1);
    EXPECT_EQ(stored_to_two.emplace(stored, p2).first->second, p2);
    Json without = one->records[i];
    without["case"] = stored;
    EXPECT_EQ(without, before->records[i]);  // only the pseudonym differs
    seen_one.insert(p1);
    seen_two.insert(p2);
    seen_stored.insert(stored);
  }
  EXPECT_EQ(seen_one.size(), seen_stored.size());  // one per case, no merges
  for (const auto& p : seen_one) {
    EXPECT_FALSE(seen_two.count(p)) << p;
    EXPECT_FALSE(seen_stored.count(p)) << p;
  }
  // Short keys are refused; no key, no feed.
  EXPECT_FALSE(
      ReadModels::Open(dir_.path() + "/c", *store_, catalog_, nullptr, "short")
          .ok());
  auto none = ReadModels::Open(dir_.path() + "/d", *store_, catalog_, nullptr);
  ASSERT_OK(none);
  EXPECT_TRUE((*none)->Feed(0, 10, "").status().IsFailedPrecondition());
}

TEST_F(LearningFeedTest, SmallCountsAreSuppressedAndTheRestRounded) {
  service::SeedOptions so;
  so.cases = 30;  // few enough that some categories are rare
  ASSERT_OK(
      testing::SeedCases(*store_, catalog_, keys_->sealer(), so, &clock_));
  auto models =
      ReadModels::Open(dir_.path() + "/p", *store_, catalog_, nullptr, kKey);
  ASSERT_OK((*models)->CatchUp());
  auto summary = (*models)->Summary({});
  ASSERT_OK(summary);
  bool some_suppressed = false, some_counted = false;
  for (const auto* group :
       {&summary->by_category, &summary->by_setting, &summary->by_month}) {
    for (const auto& [code, v] : *group) {
      if (!v) {  // suppressed
        some_suppressed = true;
      } else {
        EXPECT_GE(*v, 5u) << code;
        EXPECT_EQ(*v % 5, 0u) << code;
        some_counted = true;
      }
    }
  }
  EXPECT_TRUE(some_suppressed);
  EXPECT_TRUE(some_counted);
  // Every code of the vocabularies is listed, so a code no case has (0)
  // reads as a rare one (1-4) does: "suppressed", not absent.
  for (const auto& [group, vocabulary] :
       {std::pair{&summary->by_category, "harm_category"},
        std::pair{&summary->by_setting, "setting"}}) {
    const auto codes = catalog_->Vocabulary(vocabulary);
    ASSERT_GT(codes.size(), 4u) << vocabulary;
    EXPECT_EQ(group->size(), codes.size()) << vocabulary;
    for (const std::string& code : codes) {
      EXPECT_TRUE(group->count(code)) << vocabulary << " " << code;
    }
  }
  // And every month between the first and the last, counted or not.
  const LearningSummary::Counts& months = summary->by_month;
  ASSERT_FALSE(months.empty());
  std::string expected = months.begin()->first;
  for (const auto& [month, v] : months) {
    EXPECT_EQ(month, expected);
    int y = std::stoi(month.substr(0, 4)), m = std::stoi(month.substr(5, 2));
    char next[32];
    std::snprintf(next, sizeof(next), "%04d-%02d", m == 12 ? y + 1 : y,
                  m == 12 ? 1 : m + 1);
    expected = next;
  }
  auto exact = (*models)->Summary({0, 0, ""});
  ASSERT_OK(exact);
  uint64_t settings = 0;
  for (const auto& [code, v] : exact->by_setting) settings += v.value_or(0);
  EXPECT_EQ(settings, 30u);
}

TEST_F(LearningFeedTest,
       AMonthIsReleasedWholeOnlyOnceItIsOverAndSaysLittleOfRareCases) {
  clock_.Set(*ParseTimestamp("2026-01-20T09:00:00Z"));
  service::CaseService svc(*store_, catalog_, domain::DomainConfig{},
                           keys_->sealer());
  const domain::Actor dsl{"user:dsl-1", domain::Role::kDsl};
  for (int i = 0; i < 10; ++i) {
    if (i == 2) clock_.Set(*ParseTimestamp("2026-02-02T09:00:00Z"));
    if (i == 5) clock_.Set(*ParseTimestamp("2026-03-02T09:00:00Z"));
    ASSERT_OK(svc.Execute("case-" + std::to_string(i), "report",
                          testing::ReportBody(), dsl));
  }
  auto models =
      ReadModels::Open(dir_.path() + "/p", *store_, catalog_, nullptr, kKey);
  ASSERT_OK((*models)->CatchUp());
  auto months = [&](std::string_view before) {
    std::vector<std::string> out;
    auto page = (*models)->Feed(0, 100, before);
    EXPECT_OK(page);
    for (const auto& r : page->records) out.push_back(r["month"]);
    return out;
  };
  EXPECT_EQ(months("2026-01"), std::vector<std::string>{});
  EXPECT_EQ(months("2026-02"),
            (std::vector<std::string>{"2026-01", "2026-01"}));
  EXPECT_EQ(months("").size(), 10u);
  // k-anonymity: two or three alike in a month say only that they were
  // reported; five alike say what they were.
  auto page = (*models)->Feed(0, 100, "");
  ASSERT_OK(page);
  for (const auto& r : page->records) {
    if (r["month"] == "2026-03") {
      EXPECT_EQ(r["setting"], testing::ReportBody()["setting"]) << r.dump();
      EXPECT_EQ(r["categories"], testing::ReportBody()["categories"]);
    } else {
      EXPECT_EQ(r["setting"], "suppressed") << r.dump();
      EXPECT_EQ(r["categories"], "suppressed");
      EXPECT_EQ(r["urgent"], "suppressed");
    }
  }
  auto counts = [&](std::string before) {
    auto summary = (*models)->Summary({0, 1, std::move(before)});
    EXPECT_OK(summary);
    return summary->by_month;
  };
  using Counts = LearningSummary::Counts;
  EXPECT_EQ(counts("2026-02"), (Counts{{"2026-01", 2}}));
  EXPECT_EQ(counts("2026-03"), (Counts{{"2026-01", 2}, {"2026-02", 3}}));
  EXPECT_EQ(counts("2026-04")["2026-03"], std::optional<uint64_t>(5));
  EXPECT_EQ(counts("2026-01"), Counts{});
}

}  // namespace
}  // namespace caseledger::projections

namespace caseledger::projections {
namespace {}  // namespace
}  // namespace caseledger::projections
