#include "caseledger/projections/read_models.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <rocksdb/db.h>

#include <chrono>
#include <map>
#include <random>
#include <regex>
#include <set>
#include <utility>

#include "caseledger/service/case_service.h"
#include "caseledger/service/seed.h"
#include "tests/support/test_support.h"

namespace caseledger::projections {
namespace {

using Json = nlohmann::json;

class ReadModelsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Options o;
    o.sync = false;
    store_ = testing::OpenStore(dir_.path() + "/log", o);
    auto c = domain::EventCatalog::Load();
    ASSERT_OK(c);
    catalog_ = *c;
  }
  std::unique_ptr<ReadModels> OpenModels(std::string key = "") {
    auto m = ReadModels::Open(dir_.path() + "/projections", *store_, catalog_,
                              nullptr, std::move(key));
    EXPECT_TRUE(m.ok()) << m.status().ToString();
    return m.ok() ? std::move(*m) : nullptr;
  }
  void Seed(uint64_t cases, uint64_t seed = 1) {
    service::SeedOptions so;
    so.cases = cases;
    so.seed = seed;
    so.case_prefix = "case-" + std::to_string(seed) + "-";
    ASSERT_OK(
        service::SeedCases(*store_, catalog_, domain::DomainConfig{}, so));
  }

  testing::TempDir dir_;
  std::unique_ptr<EventStore> store_;
  std::shared_ptr<const domain::EventCatalog> catalog_;
};

TEST_F(ReadModelsTest, CaseDocumentsMatchAFoldOfTheLog) {
  Seed(40);
  auto models = OpenModels();
  ASSERT_OK(models->CatchUp());
  EXPECT_EQ(models->Health().position, store_->committed_position().value());
  EXPECT_EQ(models->Health().lag, 0u);
  for (int i : {1, 7, 23, 40}) {
    char id[32];
    std::snprintf(id, sizeof(id), "case-1-%06d", i);
    auto doc = models->Case(id);
    ASSERT_OK(doc);
    ASSERT_TRUE(doc->has_value()) << id;
    auto folded = service::LoadCase(*store_, *catalog_, id);
    ASSERT_OK(folded);
    Json expected = domain::ToJson(id, *folded);
    Json got = **doc;
    got.erase("last_position");
    EXPECT_EQ(got, expected) << id;
  }
  auto none = models->Case("case-none");
  ASSERT_OK(none);
  EXPECT_FALSE(none->has_value());
}

TEST_F(ReadModelsTest, ListsFilterThroughIndexesAndPageWithACursor) {
  Seed(60);
  auto models = OpenModels();
  ASSERT_OK(models->CatchUp());
  // All cases, in pages of 25.
  std::vector<std::string> ids;
  std::string cursor;
  for (int guard = 0; guard < 10; ++guard) {
    auto page = models->ListCases({}, cursor, 25);
    ASSERT_OK(page);
    for (const auto& d : page->cases) ids.push_back(d["case_id"]);
    cursor = page->next_cursor;
    if (cursor.empty()) break;
  }
  EXPECT_EQ(ids.size(), 60u);
  EXPECT_TRUE(std::is_sorted(ids.begin(), ids.end()));
  // Filters agree with the documents.
  CaseFilter closed;
  closed.stage = "closed";
  auto page = models->ListCases(closed, "", 500);
  ASSERT_OK(page);
  EXPECT_EQ(page->cases.size(), 60u);  // every seeded case ends closed
  CaseFilter cat;
  cat.category = "harassment";
  auto harassment = models->ListCases(cat, "", 500);
  ASSERT_OK(harassment);
  for (const auto& d : harassment->cases) {
    EXPECT_NE(
        std::find(d["categories"].begin(), d["categories"].end(), "harassment"),
        d["categories"].end());
  }
  CaseFilter lead;
  lead.lead = "user:alt-dsl-1";
  auto alt = models->ListCases(lead, "", 500);
  ASSERT_OK(alt);
  for (const auto& d : alt->cases)
    EXPECT_EQ(d["lead_actor_id"], "user:alt-dsl-1");
}

TEST_F(ReadModelsTest,
       TheRunnerFollowsLiveAppendsAndAReaderCanWaitForItsWrite) {
  auto models = OpenModels();
  models->Start();
  Seed(5);
  const uint64_t head = store_->committed_position().value();
  EXPECT_TRUE(models->WaitFor(GlobalPosition(head), std::chrono::seconds(10)));
  EXPECT_TRUE(models->Health().healthy);
  auto page = models->ListCases({}, "", 100);
  ASSERT_OK(page);
  EXPECT_EQ(page->cases.size(), 5u);
  models->Stop();
}

TEST_F(ReadModelsTest, ARestartResumesFromTheCheckpoint) {
  Seed(10, 1);
  {
    auto models = OpenModels();
    ASSERT_OK(models->CatchUp());
  }
  const uint64_t first = store_->committed_position().value();
  Seed(10, 2);
  auto models = OpenModels();
  EXPECT_EQ(models->Health().position, first);  // persisted with the batch
  ASSERT_OK(models->CatchUp());
  auto page = models->ListCases({}, "", 100);
  ASSERT_OK(page);
  EXPECT_EQ(page->cases.size(), 20u);
  // Resuming gives exactly what building in one go gives.
  auto resumed = models->Dump();
  ASSERT_OK(resumed);
  ASSERT_OK(models->Rebuild());
  auto rebuilt = models->Dump();
  ASSERT_OK(rebuilt);
  EXPECT_EQ(*resumed, *rebuilt);
}

TEST_F(ReadModelsTest, ARebuildIsByteForByteWhatIncrementalBuildingMade) {
  auto models = OpenModels();
  models->Start();
  Seed(30);
  ASSERT_TRUE(
      models->WaitFor(store_->committed_position(), std::chrono::seconds(10)));
  models->Stop();
  auto incremental = models->Dump();
  ASSERT_OK(incremental);
  ASSERT_GT(incremental->size(), 30u);
  ASSERT_OK(models->Rebuild());
  auto rebuilt = models->Dump();
  ASSERT_OK(rebuilt);
  EXPECT_EQ(*incremental, *rebuilt);
  // And the rebuilt generation survives a reopen.
  models.reset();
  auto reopened = OpenModels();
  auto again = reopened->Dump();
  ASSERT_OK(again);
  EXPECT_EQ(*again, *rebuilt);
}

// A rebuild sorts its index entries into runs of a bounded number of
// entries (a case whose events span batches has entries deleted in a later
// run than the one that put them), merges the runs into one when they are
// more than a bound, and at its end merges them into the index (on two
// threads, each a range of keys), and keeps the learning statistics
// in memory up to a bound, then writes them into a table file too (and at
// its end). Its documents and feed records go into table files of a
// bounded size as they come (a case written again in a later batch comes
// out of order, and its document goes into a file of its own that must
// hide the one before). Bounds down to one entry (files that each hide
// earlier ones, statistics read back from files by the batches after) give
// the same bytes as building incrementally.
TEST_F(ReadModelsTest, ARebuildInSmallTableFilesIsByteForByteTheSame) {
  Seed(200);  // about 2,500 events: cases span the 1,000-event batches
  auto models = OpenModels("test-pseudonym-key-0123456789");
  ASSERT_OK(models->CatchUp());
  auto incremental = models->Dump();
  ASSERT_OK(incremental);
  for (auto [bound, bytes] :
       {std::pair<size_t, size_t>{1000000, 1u << 26}, {97, 20000}, {1, 1}}) {
    RebuildOptions options;
    options.index_entries_per_file = bound;
    options.index_runs_at_once = 2;  // runs merged into one along the way
    options.stats_entries_in_memory = bound;
    options.bytes_per_file = bytes;
    ASSERT_OK(models->Rebuild(options));
    auto rebuilt = models->Dump();
    ASSERT_OK(rebuilt);
    EXPECT_TRUE(*incremental == *rebuilt)
        << "bound " << bound << ", bytes " << bytes;
  }
}

// A rebuild merges its index runs itself, before the swap, into table
// files that do not overlap, ingested into the last level: level 0 holds
// none of them, so RocksDB has nothing of the index left to merge, and
// once WaitForCompactions returns nothing else is pending either. The
// index reads as incremental building left it.
TEST_F(ReadModelsTest, ARebuildLeavesItsIndexMergedInTheLastLevel) {
  Seed(400);  // about 5,000 events: five batches, an index file each
  auto models = OpenModels();
  ASSERT_OK(models->CatchUp());
  auto built = models->Dump();
  ASSERT_OK(built);
  RebuildOptions options;
  options.index_entries_per_file = 1;
  ASSERT_OK(models->Rebuild(options));
  ASSERT_OK(models->WaitForCompactions(std::chrono::minutes(1)));
  models.reset();

  const std::string dir = dir_.path() + "/projections";
  std::vector<std::string> names;
  ASSERT_TRUE(
      rocksdb::DB::ListColumnFamilies(rocksdb::DBOptions(), dir, &names).ok());
  std::vector<rocksdb::ColumnFamilyDescriptor> descs;
  for (const auto& n : names)
    descs.emplace_back(n, rocksdb::ColumnFamilyOptions());
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw = nullptr;
  ASSERT_TRUE(rocksdb::DB::OpenForReadOnly(rocksdb::DBOptions(), dir, descs,
                                           &handles, &raw)
                  .ok());
  std::unique_ptr<rocksdb::DB> db(raw);
  size_t index_cfs = 0;
  for (size_t i = 0; i < names.size(); ++i) {
    if (names[i].rfind("case_index_g", 0) != 0) continue;
    ++index_cfs;
    std::string level0;
    ASSERT_TRUE(
        db->GetProperty(handles[i], "rocksdb.num-files-at-level0", &level0));
    EXPECT_EQ(level0, "0") << names[i];
    std::string files;
    ASSERT_TRUE(
        db->GetProperty(handles[i], "rocksdb.num-files-at-level6", &files));
    EXPECT_NE(files, "0") << names[i];
  }
  EXPECT_EQ(index_cfs, 1u);
  for (auto* h : handles) (void)db->DestroyColumnFamilyHandle(h);
  db.reset();
  // And the merged index reads as incremental building left it.
  auto reopened = OpenModels();
  auto rebuilt = reopened->Dump();
  ASSERT_OK(rebuilt);
  EXPECT_EQ(*rebuilt, *built);
}

// The same with the learning feed on: its counters and each case's
// identifiers, kept in memory between batches, and a reopen (which starts
// with nothing kept) in the middle. Rebuilding gives the same bytes.
TEST_F(ReadModelsTest, WithTheFeedARebuildIsByteForByteWhatIncrementalMade) {
  const std::string key = "test-pseudonym-key-0123456789";
  auto models = OpenModels(key);
  models->Start();
  for (uint64_t round = 1; round <= 4; ++round) {
    Seed(8, round);
    ASSERT_TRUE(models->WaitFor(store_->committed_position(),
                                std::chrono::seconds(10)));
    if (round == 2) {
      models->Stop();
      models.reset();
      models = OpenModels(key);
      models->Start();
    }
  }
  models->Stop();
  auto incremental = models->Dump();
  ASSERT_OK(incremental);
  size_t feed_records = 0;
  for (const auto& [k, v] : *incremental) {
    feed_records += v.find("\"kind\"") != std::string::npos ? 1 : 0;
  }
  ASSERT_GT(feed_records, 32u);
  ASSERT_OK(models->Rebuild());
  auto rebuilt = models->Dump();
  ASSERT_OK(rebuilt);
  EXPECT_EQ(*incremental, *rebuilt);
}

TEST_F(ReadModelsTest, AnEventItCannotApplyStopsItUnhealthyWithoutSkipping) {
  Seed(3);
  const uint64_t good = store_->committed_position().value();
  // An event no build of the domain knows, on a case stream.
  ProposedEvent bad;
  bad.type = "FromTheFuture";
  bad.actor = Actor{"user:dsl-1", "dsl"};
  bad.payload = "{}";
  ASSERT_OK(store_->Append("case-1-000001", ExpectedVersion::Any(), {bad}));
  Seed(2, 9);
  auto models = OpenModels();
  Status s = models->CatchUp();
  EXPECT_FALSE(s.ok());
  ProjectionHealth h = models->Health();
  EXPECT_FALSE(h.healthy);
  EXPECT_NE(h.error.find("position " + std::to_string(good + 1)),
            std::string::npos)
      << h.error;
  EXPECT_LE(h.position, good);  // stopped before the event, not past it
  EXPECT_GT(h.lag, 0u);
  // A rebuild (which reads and decodes ahead on another thread) stops at
  // the same event, and keeps the models it had.
  Status r = models->Rebuild();
  EXPECT_FALSE(r.ok());
  EXPECT_NE(r.ToString().find("position " + std::to_string(good + 1)),
            std::string::npos)
      << r.ToString();
  EXPECT_LE(models->Health().position, good);
}

}  // namespace
}  // namespace caseledger::projections

namespace caseledger::projections {
namespace {

constexpr char kKey[] = "test-pseudonym-key-0123456789";

// A store written without fsync, on a clock the test may set (the real one
// until it does), and the event catalog.
class LearningFeedTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Options o;
    o.sync = false;
    o.clock = [this] { return now_.value() != 0 ? now_ : NowUtc(); };
    store_ = testing::OpenStore(dir_.path() + "/log", o);
    auto catalog = domain::EventCatalog::Load();
    ASSERT_OK(catalog);
    catalog_ = *catalog;
  }

  // The read models in dir/p, caught up with the log (null if they fail).
  std::unique_ptr<ReadModels> CaughtUp() {
    auto models =
        ReadModels::Open(dir_.path() + "/p", *store_, catalog_, nullptr, kKey);
    EXPECT_OK(models);
    if (!models.ok()) return nullptr;
    EXPECT_OK((*models)->CatchUp());
    return std::move(*models);
  }

  testing::TempDir dir_;
  Timestamp now_{0};
  std::unique_ptr<EventStore> store_;
  std::shared_ptr<const domain::EventCatalog> catalog_;
};

// A reviewer's approval of learning for sharing, every check ticked.
Json ApprovedScreening(const std::string& learning_id) {
  return {{"learning_id", learning_id},
          {"decision", "approved_for_sharing"},
          {"checklist",
           {{"no_names_or_initials", true},
            {"no_contact_details", true},
            {"no_exact_dates_or_places", true},
            {"no_rare_characteristics", true},
            {"motivated_intruder_test_passed", true}}}};
}

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
  ASSERT_OK(service::SeedCases(*store_, catalog_, domain::DomainConfig{}, so));

  // A case whose learning text was written carelessly.
  service::CaseService svc(*store_, catalog_, domain::DomainConfig{});
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
  service::CaseService svc(*store_, catalog_, domain::DomainConfig{});
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
  service::CaseService svc(*store_, catalog_, domain::DomainConfig{});
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
  service::CaseService svc(*store_, catalog_, domain::DomainConfig{});
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
  for (const auto& [month, n] : (*summary)["by_month"].items()) {
    total += n.get<uint64_t>();
  }
  EXPECT_EQ(total, 1u) << summary->dump();
}

TEST_F(LearningFeedTest, RebuildingReproducesTheFeedAndPseudonymsFollowTheKey) {
  service::SeedOptions so;
  so.cases = 20;
  ASSERT_OK(service::SeedCases(*store_, catalog_, domain::DomainConfig{}, so));
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
  ASSERT_OK(service::SeedCases(*store_, catalog_, domain::DomainConfig{}, so));
  auto models =
      ReadModels::Open(dir_.path() + "/p", *store_, catalog_, nullptr, kKey);
  ASSERT_OK((*models)->CatchUp());
  auto summary = (*models)->Summary({});
  ASSERT_OK(summary);
  bool some_suppressed = false, some_counted = false;
  for (const auto& group : {"by_category", "by_setting", "by_month"}) {
    for (const auto& [code, v] : (*summary)[group].items()) {
      if (v.is_string()) {
        EXPECT_EQ(v, "suppressed");
        some_suppressed = true;
      } else {
        EXPECT_GE(v.get<uint64_t>(), 5u) << code;
        EXPECT_EQ(v.get<uint64_t>() % 5, 0u) << code;
        some_counted = true;
      }
    }
  }
  EXPECT_TRUE(some_suppressed);
  EXPECT_TRUE(some_counted);
  // Every code of the vocabularies is listed, so a code no case has (0)
  // reads as a rare one (1-4) does: "suppressed", not absent.
  for (const auto& [group, vocabulary] :
       {std::pair{"by_category", "harm_category"},
        std::pair{"by_setting", "setting"}}) {
    const auto codes = catalog_->Vocabulary(vocabulary);
    ASSERT_GT(codes.size(), 4u) << vocabulary;
    EXPECT_EQ((*summary)[group].size(), codes.size()) << group;
    for (const std::string& code : codes) {
      EXPECT_TRUE((*summary)[group].contains(code)) << group << " " << code;
    }
  }
  // And every month between the first and the last, counted or not.
  const Json& months = (*summary)["by_month"];
  ASSERT_FALSE(months.empty());
  std::string expected = months.begin().key();
  for (const auto& [month, v] : months.items()) {
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
  for (const auto& [code, v] : (*exact)["by_setting"].items())
    settings += v.get<uint64_t>();
  EXPECT_EQ(settings, 30u);
}

TEST_F(LearningFeedTest,
       AMonthIsReleasedWholeOnlyOnceItIsOverAndSaysLittleOfRareCases) {
  now_ = *ParseTimestamp("2026-01-20T09:00:00Z");
  service::CaseService svc(*store_, catalog_, domain::DomainConfig{},
                           [this] { return now_; });
  const domain::Actor dsl{"user:dsl-1", domain::Role::kDsl};
  for (int i = 0; i < 10; ++i) {
    if (i == 2) now_ = *ParseTimestamp("2026-02-02T09:00:00Z");
    if (i == 5) now_ = *ParseTimestamp("2026-03-02T09:00:00Z");
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
    return (*summary)["by_month"];
  };
  EXPECT_EQ(counts("2026-02"), Json({{"2026-01", 2}}));
  EXPECT_EQ(counts("2026-03"), Json({{"2026-01", 2}, {"2026-02", 3}}));
  EXPECT_EQ(counts("2026-04")["2026-03"], 5);
  EXPECT_EQ(counts("2026-01"), Json::object());
}

}  // namespace
}  // namespace caseledger::projections

namespace caseledger::projections {
namespace {

// Governance views against a fixed clock.
class GovernanceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Options o;
    o.sync = false;
    o.clock = [this] { return Timestamp(now_.load()); };
    store_ = testing::OpenStore(dir_.path() + "/log", o);
    catalog_ = *domain::EventCatalog::Load();
    service_ = std::make_unique<service::CaseService>(
        *store_, catalog_, domain::DomainConfig{},
        [this] { return Timestamp(now_.load()); });
  }
  Json Report(bool immediate) { return testing::ReportBody(immediate); }
  // Consent overridden as o1 to involve the police.
  static Json PoliceOverride() {
    return {{"override_id", "o1"},
            {"person_ref", "person-1"},
            {"purpose", "involve_police"},
            {"lawful_basis", "prevention_of_crime"},
            {"rationale", "A crime."},
            {"decided_by", {{"actor_id", "user:dsl-1"}, {"role", "dsl"}}},
            {"person_to_be_informed", true}};
  }
  void Run(const std::string& id, const std::string& cmd, const Json& body,
           const domain::Actor& a = {"user:dsl-1", domain::Role::kDsl}) {
    auto r = service_->Execute(id, cmd, body, a);
    ASSERT_TRUE(r.ok()) << cmd << ": " << r.status().ToString();
  }
  std::unique_ptr<ReadModels> Models() {
    auto m = ReadModels::Open(dir_.path() + "/p", *store_, catalog_, nullptr,
                              "governance-test-key-012345");
    EXPECT_TRUE(m.ok());
    EXPECT_TRUE((*m)->CatchUp().ok());
    return std::move(*m);
  }
  static constexpr int64_t kHour = 3600LL * 1000000;
  // 2026-03-01T10:00:00Z
  std::atomic<int64_t> now_{1772359200000000};
  testing::TempDir dir_;
  std::unique_ptr<EventStore> store_;
  std::shared_ptr<const domain::EventCatalog> catalog_;
  std::unique_ptr<service::CaseService> service_;
};

TEST_F(GovernanceTest,
       OverdueAcknowledgementsAreThoseStillUntakenPastTheirDeadline) {
  Run("urgent-case", "report", Report(true),
      {"user:rep-1", domain::Role::kReporter});
  Run("standard-case", "report", Report(false),
      {"user:rep-1", domain::Role::kReporter});
  Run("taken-case", "report", Report(true),
      {"user:rep-1", domain::Role::kReporter});
  Run("taken-case", "assign-lead",
      {{"lead_actor_id", "user:dsl-1"},
       {"role", "dsl"},
       {"reason", "initial_assignment"}});
  auto m = Models();
  const Timestamp base(now_.load());
  // Half an hour on: nothing is late yet.
  auto early = m->Governance("overdue-acknowledgements",
                             Timestamp(base.value() + kHour / 2), 100);
  ASSERT_OK(early);
  EXPECT_TRUE((*early)["items"].empty());
  // Two hours on: the urgent one (1 hour deadline) is late, the standard one
  // (a day) is not, the taken one never is.
  auto later = m->Governance("overdue-acknowledgements",
                             Timestamp(base.value() + 2 * kHour), 100);
  ASSERT_OK(later);
  ASSERT_EQ((*later)["items"].size(), 1u);
  EXPECT_EQ((*later)["items"][0]["case_id"], "urgent-case");
  auto next_day = m->Governance("overdue-acknowledgements",
                                Timestamp(base.value() + 30 * kHour), 100);
  ASSERT_OK(next_day);
  EXPECT_EQ((*next_day)["items"].size(), 2u);
  EXPECT_TRUE(m->Governance("no-such-view", base, 10).status().IsNotFound());
}

TEST_F(GovernanceTest, ReviewsEscalationsOverridesAndClosuresAreListed) {
  Run("c1", "report", Report(false), {"user:rep-1", domain::Role::kReporter});
  Run("c1", "assign-lead",
      {{"lead_actor_id", "user:dsl-1"},
       {"role", "dsl"},
       {"reason", "initial_assignment"}});
  Run("c1", "triage",
      {{"route", "safeguarding_case"},
       {"related_to_activity", true},
       {"rationale", "In scope."},
       {"decided_by", {{"actor_id", "user:dsl-1"}, {"role", "dsl"}}}});
  Run("c1", "schedule-review",
      {{"review_id", "r1"},
       {"kind", "with_person"},
       {"due_date", "2026-03-10"},
       {"reason", "first_review"}});
  Run("c1", "override-consent", PoliceOverride());
  Run("c1", "raise-escalation",
      {{"escalation_id", "e1"},
       {"target", "police"},
       {"trigger", "new_information"},
       {"reason", "A crime."},
       {"urgency", "urgent"},
       {"basis", {{"kind", "override"}, {"override_id", "o1"}}}});
  Run("c2", "report", Report(false), {"user:rep-1", domain::Role::kReporter});
  Run("c2", "assign-lead",
      {{"lead_actor_id", "user:dsl-1"},
       {"role", "dsl"},
       {"reason", "initial_assignment"}});
  Run("c2", "close",
      {{"reason", "person_declined_further_involvement"},
       {"no_review_reason", "person_declined_review"},
       {"feedback_to_reporter_given", true}});
  auto m = Models();
  Timestamp mar12(1773309600000000);  // 2026-03-12T10:00:00Z
  auto reviews = m->Governance("overdue-reviews", mar12, 100);
  ASSERT_OK(reviews);
  ASSERT_EQ((*reviews)["items"].size(), 1u);
  EXPECT_EQ((*reviews)["items"][0]["review_id"], "r1");
  auto not_yet = m->Governance("overdue-reviews", Timestamp(now_.load()), 100);
  EXPECT_TRUE((*not_yet)["items"].empty());
  auto esc = m->Governance("escalations-awaiting-acknowledgement", mar12, 100);
  ASSERT_OK(esc);
  ASSERT_EQ((*esc)["items"].size(), 1u);
  EXPECT_EQ((*esc)["items"][0]["overdue"], true);
  auto overrides = m->Governance("consent-overrides", mar12, 100);
  ASSERT_EQ((*overrides)["items"].size(), 1u);
  EXPECT_EQ((*overrides)["items"][0]["override_id"], "o1");
  auto closed = m->Governance("closed-without-outcome-review", mar12, 100);
  ASSERT_EQ((*closed)["items"].size(), 1u);
  EXPECT_EQ((*closed)["items"][0]["case_id"], "c2");
  auto overview = m->Overview(mar12);
  ASSERT_OK(overview);
  EXPECT_EQ((*overview)["cases_by_stage"]["open"], 1);
  EXPECT_EQ((*overview)["cases_by_stage"]["closed"], 1);
  EXPECT_EQ((*overview)["overdue-reviews"]["count"], 1);
  EXPECT_EQ((*overview)["open_cases_by_age"]["7_to_30_days"], 1);
}

TEST_F(GovernanceTest, LateAcknowledgementsReauditsUnexplainedDecisionsCounts) {
  const domain::Actor reporter{"user:rep-1", domain::Role::kReporter};
  const domain::Actor reviewer{"user:reviewer-1", domain::Role::kReviewer};
  const Json lead = {{"lead_actor_id", "user:dsl-1"},
                     {"role", "dsl"},
                     {"reason", "initial_assignment"}};
  // An urgent case (1 hour to acknowledge) taken after 2 hours: late.
  Run("c1", "report", Report(true), reporter);
  now_ += 2 * kHour;
  Run("c1", "assign-lead", lead);
  // A standard case taken after 10 minutes: on time.
  Run("c2", "report", Report(false), reporter);
  now_ += kHour / 6;
  Run("c2", "assign-lead", lead);
  // Closed on a reason code alone: a decision without its rationale.
  Run("c2", "close",
      {{"reason", "person_declined_further_involvement"},
       {"no_review_reason", "person_declined_review"},
       {"feedback_to_reporter_given", true}});
  // A finding on c1 that needs a re-audit by 5 March.
  Run("c1", "record-audit-finding",
      {{"finding_id", "f1"},
       {"reviewer_actor_id", reviewer.id},
       {"checks",
        {{"outcome_statements", "not_met"},
         {"consent_recording", "met"},
         {"proportionality", "met"},
         {"review_dates", "met"}}},
       {"finding", "Outcomes were not recorded in the person's words."},
       {"severity", "moderate"},
       {"reaudit_required", true}},
      reviewer);
  Run("c1", "schedule-reaudit",
      {{"reaudit_id", "ra1"},
       {"finding_ids", {"f1"}},
       {"due_date", "2026-03-05"}},
      reviewer);
  auto m = Models();
  Timestamp mar3(1772532000000000);   // 2026-03-03T10:00:00Z
  Timestamp mar12(1773309600000000);  // 2026-03-12T10:00:00Z

  auto late = m->Governance("late-acknowledgements", mar12, 100);
  ASSERT_OK(late);
  ASSERT_EQ((*late)["items"].size(), 1u);
  EXPECT_EQ((*late)["items"][0]["case_id"], "c1");
  EXPECT_EQ((*late)["items"][0]["due"], "2026-03-01T11:00:00.000000Z");
  EXPECT_EQ((*late)["items"][0]["acknowledged_at"],
            "2026-03-01T12:00:00.000000Z");

  auto reaudits = m->Governance("reaudits-due", mar3, 100);
  ASSERT_OK(reaudits);
  ASSERT_EQ((*reaudits)["items"].size(), 1u);
  EXPECT_EQ((*reaudits)["items"][0]["reaudit_id"], "ra1");
  EXPECT_EQ((*reaudits)["items"][0]["overdue"], false);
  EXPECT_EQ((*m->Governance("reaudits-due", mar12, 100))["items"][0]["overdue"],
            true);

  auto unexplained = m->Governance("decisions-without-rationale", mar12, 100);
  ASSERT_OK(unexplained);
  ASSERT_EQ((*unexplained)["items"].size(), 1u);
  EXPECT_EQ((*unexplained)["items"][0]["case_id"], "c2");
  EXPECT_EQ((*unexplained)["items"][0]["type"], "CaseClosed");

  auto overview = m->Overview(mar12);
  ASSERT_OK(overview);
  EXPECT_EQ((*overview)["acknowledgement"]["acknowledged"], 2);
  EXPECT_EQ((*overview)["acknowledgement"]["acknowledged_late"], 1);
  EXPECT_EQ((*overview)["acknowledgement"]["median_minutes"], 120);
  EXPECT_EQ((*overview)["closed_cases_by_reason"]
                       ["person_declined_further_involvement"],
            1);
  int settings = 0;
  for (const auto& [k, n] : (*overview)["cases_by_setting"].items()) {
    settings += n.get<int>();
  }
  EXPECT_EQ(settings, 2);
  EXPECT_FALSE((*overview)["cases_by_category"].empty());
  EXPECT_EQ((*overview)["reaudits-due"]["overdue"], 1);
  EXPECT_EQ((*overview)["decisions-without-rationale"]["count"], 1);

  // The re-audit done, it is no longer due.
  Run("c1", "record-audit-finding",
      {{"finding_id", "f2"},
       {"reviewer_actor_id", reviewer.id},
       {"checks",
        {{"outcome_statements", "met"},
         {"consent_recording", "met"},
         {"proportionality", "met"},
         {"review_dates", "met"}}},
       {"finding", "Outcomes are now recorded in the person's words."},
       {"severity", "good_practice"},
       {"reaudit_required", false},
       {"reaudit_of_finding_id", "f1"},
       {"change_embedded", "yes"}},
      reviewer);
  ASSERT_OK(m->CatchUp());
  EXPECT_TRUE((*m->Governance("reaudits-due", mar12, 100))["items"].empty());
}

// The overview, kept by counters, says what counting the views and the
// cases one by one says: over cases reported across two months, taken,
// triaged, reviewed, escalated and closed at random, asked at moments that
// fall on due days and on the 7- and 31-day edges of the age buckets; and
// the same again from models rebuilt from the log.
TEST_F(GovernanceTest, TheOverviewCountsWhatTheViewsAndCasesSay) {
  std::mt19937 rng(20261206);
  auto chance = [&](int percent) {
    return static_cast<int>(rng() % 100) < percent;
  };
  const domain::Actor reporter{"user:rep-1", domain::Role::kReporter};
  const Json lead = {{"lead_actor_id", "user:dsl-1"},
                     {"role", "dsl"},
                     {"reason", "initial_assignment"}};
  const int64_t start = now_.load();
  std::vector<uint64_t> ack_minutes;
  for (int i = 0; i < 90; ++i) {
    const std::string id = "p" + std::to_string(i);
    now_ = start + static_cast<int64_t>(rng() % (60 * 24)) * kHour +
           static_cast<int64_t>(rng() % 3600) * 1000000;
    const int64_t reported = now_.load();
    Run(id, "report", Report(chance(30)), reporter);
    if (!chance(70)) continue;
    now_ += static_cast<int64_t>(rng() % (30 * 60)) * 60 * 1000000;
    Run(id, "assign-lead", lead);
    ack_minutes.push_back(
        static_cast<uint64_t>((now_.load() - reported) / 60000000));
    if (chance(25)) {
      Run(id, "close",
          {{"reason", "person_declined_further_involvement"},
           {"no_review_reason", "person_declined_review"},
           {"feedback_to_reporter_given", true}});
      continue;
    }
    if (!chance(70)) continue;
    Run(id, "triage",
        {{"route", "safeguarding_case"},
         {"related_to_activity", true},
         {"rationale", "In scope."},
         {"decided_by", {{"actor_id", "user:dsl-1"}, {"role", "dsl"}}}});
    const std::string due =
        FormatTimestamp(
            Timestamp(now_.load() +
                      static_cast<int64_t>(rng() % (20 * 24)) * kHour))
            .substr(0, 10);
    Run(id, "schedule-review",
        {{"review_id", "r1"},
         {"kind", "with_person"},
         {"due_date", due},
         {"reason", "first_review"}});
    if (!chance(50)) continue;
    Run(id, "override-consent", PoliceOverride());
    Run(id, "raise-escalation",
        {{"escalation_id", "e1"},
         {"target", "police"},
         {"trigger", "new_information"},
         {"reason", "A crime."},
         {"urgency", chance(50) ? "urgent" : "standard"},
         {"basis", {{"kind", "override"}, {"override_id", "o1"}}}});
  }
  std::sort(ack_minutes.begin(), ack_minutes.end());

  // What counting one by one says at `now`.
  auto expected = [&](ReadModels& m, Timestamp now) {
    Json want = Json::object();
    std::vector<Json> docs;
    std::string cursor;
    for (;;) {
      auto page = m.ListCases(CaseFilter{}, cursor, 500);
      EXPECT_TRUE(page.ok());
      for (auto& d : page->cases) docs.push_back(std::move(d));
      if (page->next_cursor.empty()) break;
      cursor = page->next_cursor;
    }
    Json by_stage = Json::object(), by_month = Json::object(),
         by_category = Json::object(), by_setting = Json::object(),
         by_reason = Json::object();
    Json age = {{"under_7_days", 0}, {"7_to_30_days", 0}, {"over_30_days", 0}};
    auto add = [](Json& counts, const std::string& k) {
      counts[k] = counts.value(k, 0) + 1;
    };
    for (const Json& d : docs) {
      const std::string stage = d["stage"];
      add(by_stage, stage);
      add(by_month, d["reported_at"].get<std::string>().substr(0, 7));
      for (const auto& c : d["categories"]) add(by_category, c);
      add(by_setting, d["setting"]);
      if (stage == "closed") add(by_reason, d["closure_reason"]);
      if (stage == "closed") continue;
      const int64_t days =
          (now.value() -
           ParseTimestamp(d["reported_at"].get<std::string>())->value()) /
          (86400LL * 1000000);
      add(age, days < 7     ? "under_7_days"
               : days <= 30 ? "7_to_30_days"
                            : "over_30_days");
    }
    want["cases_by_stage"] = by_stage;
    want["cases_reported_by_month"] = by_month;
    want["cases_by_category"] = by_category;
    want["cases_by_setting"] = by_setting;
    want["closed_cases_by_reason"] = by_reason;
    want["open_cases_by_age"] = age;
    for (const char* view :
         {"overdue-acknowledgements", "overdue-reviews",
          "escalations-awaiting-acknowledgement", "consent-overrides",
          "closed-without-outcome-review", "overdue-actions", "reaudits-due",
          "decisions-without-rationale", "late-acknowledgements"}) {
      auto items = m.Governance(view, now, 1000000);
      EXPECT_TRUE(items.ok());
      want[view] = {{"count", (*items)["items"].size()}};
      if (std::string(view) == "escalations-awaiting-acknowledgement" ||
          std::string(view) == "reaudits-due") {
        int overdue = 0;
        for (const auto& item : (*items)["items"]) {
          overdue += item.value("overdue", false) ? 1 : 0;
        }
        want[view]["overdue"] = overdue;
      }
    }
    want["acknowledgement"] = {
        {"acknowledged", ack_minutes.size()},
        {"acknowledged_late",
         want["late-acknowledgements"]["count"].get<size_t>()}};
    if (!ack_minutes.empty()) {
      want["acknowledgement"]["median_minutes"] =
          ack_minutes[ack_minutes.size() / 2];
    }
    return want;
  };
  auto check = [&](ReadModels& m) {
    std::vector<Timestamp> moments;
    for (int day : {0, 3, 7, 8, 20, 31, 40, 61, 75, 95}) {
      moments.emplace_back(start + day * 24 * kHour +
                           static_cast<int64_t>(rng() % (24 * 3600)) * 1000000);
    }
    for (Timestamp now : moments) {
      auto got = m.Overview(now);
      ASSERT_OK(got);
      Json want = expected(m, now);
      for (const auto& [k, v] : want.items()) {
        EXPECT_EQ((*got)[k], v) << k << " at " << FormatTimestamp(now);
      }
      const Json& age = (*got)["open_cases_by_age"];
      EXPECT_GT(age["under_7_days"].get<int>() +
                    age["7_to_30_days"].get<int>() +
                    age["over_30_days"].get<int>(),
                0);
    }
  };
  auto m = Models();
  check(*m);
  // Models built in one pass from the log count the same.
  auto rebuilt = ReadModels::Open(dir_.path() + "/p2", *store_, catalog_,
                                  nullptr, "governance-test-key-012345");
  ASSERT_OK(rebuilt);
  ASSERT_OK((*rebuilt)->CatchUp());
  check(**rebuilt);
  // And rebuilt with small runs and statistics written every few counts.
  RebuildOptions small;
  small.index_entries_per_file = 50;
  small.index_runs_at_once = 2;
  small.stats_entries_in_memory = 8;
  ASSERT_OK((*rebuilt)->Rebuild(small));
  check(**rebuilt);
}

TEST_F(GovernanceTest, TheAuditSampleIsDeterministicAndStratified) {
  for (int i = 0; i < 30; ++i) {
    std::string id = "s" + std::to_string(i);
    Run(id, "report", Report(i == 7), {"user:rep-1", domain::Role::kReporter});
  }
  auto m = Models();
  auto a = m->AuditSample("2026-03", 5, "march");
  auto b = m->AuditSample("2026-03", 5, "march");
  auto c = m->AuditSample("2026-03", 5, "other-seed");
  ASSERT_OK(a);
  ASSERT_OK(b);
  ASSERT_OK(c);
  EXPECT_EQ(*a, *b);
  EXPECT_EQ((*a)["population"], 30);
  ASSERT_EQ((*a)["cases"].size(), 5u);
  // The one urgent case is always in.
  bool urgent_in = false;
  for (const auto& s : (*a)["cases"]) urgent_in |= s["case_id"] == "s7";
  EXPECT_TRUE(urgent_in);
  EXPECT_NE((*a)["cases"], (*c)["cases"]);
  auto empty = m->AuditSample("2025-01", 5, "march");
  ASSERT_OK(empty);
  EXPECT_TRUE((*empty)["cases"].empty());
}

}  // namespace
}  // namespace caseledger::projections
