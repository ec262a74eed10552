#include "caseledger/projections/read_models.h"

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
  std::unique_ptr<ReadModels> OpenModels() {
    auto m = ReadModels::Open(dir_.path() + "/projections", *store_, catalog_,
                              nullptr);
    EXPECT_TRUE(m.ok()) << m.status().ToString();
    return m.ok() ? std::move(*m) : nullptr;
  }
  void Seed(uint64_t cases, uint64_t seed = 1) {
    service::SeedOptions so;
    so.cases = cases;
    so.seed = seed;
    so.case_prefix = "case-" + std::to_string(seed) + "-";
    ASSERT_OK(service::SeedCases(*store_, catalog_, domain::DomainConfig{}, so));
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
    EXPECT_NE(std::find(d["categories"].begin(), d["categories"].end(),
                        "harassment"),
              d["categories"].end());
  }
  CaseFilter lead;
  lead.lead = "user:alt-dsl-1";
  auto alt = models->ListCases(lead, "", 500);
  ASSERT_OK(alt);
  for (const auto& d : alt->cases) EXPECT_EQ(d["lead_actor_id"], "user:alt-dsl-1");
}

TEST_F(ReadModelsTest, TheRunnerFollowsLiveAppendsAndAReaderCanWaitForItsWrite) {
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
  ASSERT_TRUE(models->WaitFor(store_->committed_position(), std::chrono::seconds(10)));
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
  EXPECT_NE(h.error.find("position " + std::to_string(good + 1)), std::string::npos)
      << h.error;
  EXPECT_LE(h.position, good);  // stopped before the event, not past it
  EXPECT_GT(h.lag, 0u);
}

}  // namespace
}  // namespace caseledger::projections
