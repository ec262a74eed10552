// The case-state read model: documents, lists, checkpoints, rebuilds.
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

class ReadModelsTest : public testing::StoreTest {
 protected:
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
        testing::SeedCases(*store_, catalog_, keys_->sealer(), so, &clock_));
  }
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
