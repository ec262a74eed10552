// Personal data at rest, looked for the way an attacker who copied the disk
// would: after full case lifecycles (the seed generator's, every event type)
// and a case whose personal fields hold strings made up for this run, no
// file under the data directory or the backups (log, WAL, tables, read
// models, keys, the log the server wrote) holds any of those strings: not
// as raw bytes, and not inside a table file once decompressed. Checked
// before and after the memtables are flushed and every database compacted.
#include <rocksdb/db.h>
#include <rocksdb/options.h>
#include <rocksdb/sst_file_reader.h>
#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/spdlog.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <set>

#include "caseledger/projections/read_models.h"
#include "caseledger/service/case_service.h"
#include "caseledger/service/operations.h"
#include "caseledger/service/seed.h"
#include "tests/support/test_support.h"

namespace caseledger::projections {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;

// Every string under `value`, recursively.
void Strings(const Json& value, std::set<std::string>* out) {
  if (value.is_string()) {
    out->insert(value.get<std::string>());
  } else if (value.is_structured()) {
    for (const auto& v : value) Strings(v, out);
  }
}

// A string no code has seen: letters drawn for this run.
std::string Marker(std::mt19937_64& rng) {
  std::string s = "Zq";
  for (int i = 0; i < 10; ++i) {
    s.push_back(static_cast<char>('a' + rng() % 26));
  }
  return s;
}

// What of `needles` each file under `root` holds: raw bytes, and for a
// table file its keys and values as RocksDB reads them (decompressed).
// "file: needle" for each find.
std::vector<std::string> Finds(const std::string& root,
                               const std::set<std::string>& needles) {
  std::vector<std::string> found;
  const auto search = [&](const std::string& where, std::string_view bytes) {
    for (const std::string& n : needles) {
      if (bytes.find(n) != std::string_view::npos) {
        found.push_back(where + ": " + n);
      }
    }
  };
  for (const auto& e : fs::recursive_directory_iterator(root)) {
    if (!e.is_regular_file()) continue;
    const std::string path = e.path().string();
    std::ifstream in(path, std::ios::binary);
    const std::string bytes((std::istreambuf_iterator<char>(in)),
                            std::istreambuf_iterator<char>());
    search(path, bytes);
    if (e.path().extension() != ".sst") continue;
    rocksdb::Options o;
    rocksdb::SstFileReader reader(o);
    if (!reader.Open(path).ok()) {
      found.push_back(path + ": a table file that cannot be read");
      continue;
    }
    std::unique_ptr<rocksdb::Iterator> it(
        reader.NewIterator(rocksdb::ReadOptions()));
    std::string contents;
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      contents.append(it->key().data(), it->key().size());
      contents.push_back('\n');
      contents.append(it->value().data(), it->value().size());
      contents.push_back('\n');
    }
    search(path + " (decompressed)", contents);
  }
  return found;
}

// Flushes and compacts every column family of the RocksDB in `dir`.
void Compact(const std::string& dir) {
  std::vector<std::string> names;
  ASSERT_TRUE(
      rocksdb::DB::ListColumnFamilies(rocksdb::DBOptions(), dir, &names).ok())
      << dir;
  std::vector<rocksdb::ColumnFamilyDescriptor> cfs;
  for (const std::string& n : names)
    cfs.emplace_back(n, rocksdb::ColumnFamilyOptions());
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw = nullptr;
  ASSERT_TRUE(
      rocksdb::DB::Open(rocksdb::DBOptions(), dir, cfs, &handles, &raw).ok())
      << dir;
  std::unique_ptr<rocksdb::DB> db(raw);
  rocksdb::CompactRangeOptions co;
  co.bottommost_level_compaction = rocksdb::BottommostLevelCompaction::kForce;
  for (auto* h : handles) {
    ASSERT_TRUE(db->Flush(rocksdb::FlushOptions(), h).ok());
    ASSERT_TRUE(db->CompactRange(co, h, nullptr, nullptr).ok());
  }
  for (auto* h : handles) ASSERT_TRUE(db->DestroyColumnFamilyHandle(h).ok());
  ASSERT_TRUE(db->Close().ok());
}

TEST(AtRestTest, NoFileHoldsAnyPersonalStringBeforeOrAfterCompaction) {
  testing::TempDir root;
  const std::string data = root.path() + "/data";
  fs::create_directories(data);
  const std::string kek_file = root.path() + "/kek";  // off the data volume
  ASSERT_OK(keys::Kek::CreateFile(kek_file));
  auto logger = spdlog::basic_logger_mt("at-rest-" + std::to_string(getpid()),
                                        data + "/server.log");
  logger->set_level(spdlog::level::debug);
  auto catalog = domain::EventCatalog::Load();
  ASSERT_OK(catalog);

  SettableClock clock;
  Options o;
  o.logger = logger;
  o.clock = clock.Function();
  std::unique_ptr<EventStore> store;
  ASSERT_OK(EventStore::Open(o, data, &store));
  service::KeyConfig kc;
  kc.kek_file = kek_file;
  auto keys = service::OpenDataKeys(data, kc, *catalog, logger);
  ASSERT_OK(keys);

  // Full lifecycles: every event type the generator writes.
  service::SeedOptions so;
  so.cases = 25;
  so.clock = &clock;
  ASSERT_OK(service::SeedCases(*store, *catalog, domain::DomainConfig{},
                               *keys->sealer, so));
  clock.Reset();

  // A case whose personal fields hold strings made up now.
  std::mt19937_64 rng(std::random_device{}());
  service::CaseService svc(*store, *catalog, domain::DomainConfig{},
                           *keys->sealer);
  const domain::Actor dsl{"user:dsl-1", domain::Role::kDsl};
  const domain::Actor reviewer{"user:reviewer-1", domain::Role::kReviewer};
  const std::string first = Marker(rng), last = Marker(rng);
  Json report = testing::ReportBody();
  report["people_involved"] = {
      {{"person_ref", "person-1"},
       {"roles", {"person_affected"}},
       {"name", first + " " + last},
       {"description", "posts as " + Marker(rng) + "_77"},
       {"contact",
        {{"email", Marker(rng) + "@example.org"},
         {"phone", "01632 960" + std::to_string(100 + rng() % 900)},
         {"address", "12 " + Marker(rng) + " Road, " + Marker(rng)}}}}};
  report["facts"] = first + " told us " + Marker(rng) + ".";
  report["persons_own_words"] = "I " + Marker(rng) + ".";
  report["confidentiality_wishes"] = Marker(rng);
  ASSERT_OK(svc.Execute("at-rest-case", "report", report, dsl));
  ASSERT_OK(svc.Execute("at-rest-case", "assign-lead",
                        {{"lead_actor_id", dsl.id},
                         {"role", "dsl"},
                         {"reason", "initial_assignment"},
                         {"reason_detail", Marker(rng)}},
                        dsl));
  // Learning that names the person: what is released is scrubbed of it.
  ASSERT_OK(svc.Execute("at-rest-case", "record-learning",
                        {{"learning_id", "learning-1"},
                         {"what_went_well", first + " was listened to."},
                         {"what_must_change", "Call " + last + " back."},
                         {"share_in", {"training"}}},
                        dsl));
  ASSERT_OK(svc.Execute("at-rest-case", "screen-learning",
                        testing::ApprovedScreening("learning-1"), reviewer));
  // The keeping of it: a hold and an erasure request, placed, lifted,
  // refused, each with reasons that may name someone.
  const domain::Actor admin{"user:admin-1", domain::Role::kAdmin};
  ASSERT_OK(svc.Execute(
      "at-rest-case", "place-legal-hold",
      {{"reason", "litigation"}, {"reason_detail", "Claim by " + Marker(rng)}},
      admin));
  ASSERT_OK(svc.Execute("at-rest-case", "lift-legal-hold",
                        {{"reason_detail", "Settled with " + Marker(rng)}},
                        dsl));
  ASSERT_OK(svc.Execute("at-rest-case", "request-erasure",
                        {{"erasure_id", "er-1"},
                         {"scope", "person"},
                         {"person_ref", "person-1"},
                         {"legal_ground", "objection"},
                         {"rationale", first + " objected " + Marker(rng)}},
                        dsl));
  ASSERT_OK(svc.Execute("at-rest-case", "refuse-erasure",
                        {{"erasure_id", "er-1"},
                         {"exemption_ground", "safeguarding_ongoing"},
                         {"rationale", "Needed for " + Marker(rng)}},
                        reviewer));

  // What is personal: every string the events hold opened that none of
  // them holds as stored (a released learning text is stored in the clear
  // on purpose: it is the feed's), the generator's and the made-up ones
  // alike.
  std::set<std::string> personal, stored;
  auto events = store->ReadAll(GlobalPosition(0), 1u << 20);
  ASSERT_OK(events);
  for (const RecordedEvent& e : *events) {
    Strings(Json::parse(e.payload), &stored);
  }
  for (const RecordedEvent& e : *events) {
    if (!service::IsCaseStream(e.stream_id)) continue;
    auto opened = svc.ToOpenedEvent(e);
    ASSERT_OK(opened);
    std::set<std::string> plain;
    Strings(opened->payload, &plain);
    for (const std::string& s : plain) {
      // (Short ones, "yes" or "no", say nothing about anyone.)
      if (s.size() >= 8 && !stored.count(s)) personal.insert(s);
    }
  }
  ASSERT_GT(personal.size(), 100u);
  ASSERT_TRUE(personal.count(first + " " + last));
  // The strings made up for this run, on their own too.
  personal.insert(first);
  personal.insert(last);

  // The read models, caught up, with their learning feed read.
  auto models =
      ReadModels::Open(service::ProjectionsDir(data), *store, *catalog, logger,
                       "at-rest-pseudonym-key-0123456789");
  ASSERT_OK(models);
  (*models)->SetIdentifierOpener([&](const std::string& case_id,
                                     const std::set<std::string>& sealed,
                                     service::Identifiers* out) {
    return service::OpenSealedIdentifiers(*keys->sealer, case_id, sealed, out);
  });
  ASSERT_OK((*models)->CatchUp());
  auto page = (*models)->Feed(0, 1000, "");
  ASSERT_OK(page);
  bool released = false;
  for (const Json& r : page->records) {
    const std::string text = r.dump();
    EXPECT_EQ(text.find(first), std::string::npos) << text;
    released = released || text.find("was listened to") != std::string::npos;
  }
  EXPECT_TRUE(released);
  auto backup =
      service::BackUp(*store, *keys->store, data, "", root.path() + "/backups");
  ASSERT_OK(backup);
  logger->flush();

  // A control: the search does find what is stored in the clear (a case id
  // and the released text), so finding nothing means something.
  const std::set<std::string> clear = {"at-rest-case", "was listened to"};
  EXPECT_EQ(Finds(root.path(), clear).size() >= 2, true);

  EXPECT_THAT(Finds(root.path(), personal), ::testing::IsEmpty())
      << "before flush and compaction";

  // Closed (memtables flushed), then every database compacted.
  models->reset();
  ASSERT_OK(store->Close());
  store.reset();
  keys->sealer.reset();
  keys->store.reset();
  Compact(data);
  Compact(service::ProjectionsDir(data));
  Compact(service::KeysDir(data));
  logger->flush();
  spdlog::drop(logger->name());
  const auto after = Finds(root.path(), clear);
  EXPECT_GE(after.size(), 2u) << "the control is found after compaction too";
  EXPECT_THAT(Finds(root.path(), personal), ::testing::IsEmpty())
      << "after flush and compaction";
}

}  // namespace
}  // namespace caseledger::projections
