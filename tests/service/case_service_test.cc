#include "caseledger/service/case_service.h"

#include <atomic>
#include <condition_variable>
#include <future>
#include <map>
#include <mutex>
#include <thread>

#include "caseledger/service/access.h"
#include "caseledger/service/seed.h"
#include "tests/support/seeding.h"
#include "tests/support/test_support.h"

namespace caseledger::service {
namespace {

using Json = nlohmann::json;
using domain::Actor;
using domain::Role;

const Actor kReporter{"user:reporter-1", Role::kReporter};
const Actor kDsl{"user:dsl-1", Role::kDsl};

Json Report() { return testing::ReportBody(); }

Json Lead() {
  return {{"lead_actor_id", kDsl.id},
          {"role", "dsl"},
          {"reason", "initial_assignment"}};
}

class CaseServiceTest : public testing::StoreTest {
 protected:
  void SetUp() override {
    StoreTest::SetUp();
    service_ = std::make_unique<CaseService>(
        *store_, catalog_, domain::DomainConfig{}, keys_->sealer());
  }
  std::unique_ptr<CaseService> service_;
};

TEST_F(CaseServiceTest, CommandsAreDecidedOnTheStoredStateAndAppended) {
  auto r = service_->Execute("case-1", "report", Report(), kReporter);
  ASSERT_OK(r);
  EXPECT_EQ(r->version, 1u);
  EXPECT_EQ(r->position, 1u);
  auto l = service_->Execute("case-1", "assign-lead", Lead(), kDsl);
  ASSERT_OK(l);
  EXPECT_EQ(l->version, 2u);
  auto state = service_->Load("case-1");
  ASSERT_OK(state);
  EXPECT_EQ(state->stage, domain::Stage::kAcknowledged);
  EXPECT_EQ(state->lead_actor_id, kDsl.id);
  auto at_one = service_->Load("case-1", 1);
  ASSERT_OK(at_one);
  EXPECT_EQ(at_one->stage, domain::Stage::kReported);
  auto stored = store_->ReadEvent(r->event_ids[0]);
  ASSERT_OK(stored);
  EXPECT_EQ(stored->type, "ConcernReported");
  EXPECT_EQ(stored->actor.role, "reporter");
  EXPECT_NE(stored->payload.find("\"priority\":\"standard\""),
            std::string::npos);
}

TEST_F(CaseServiceTest, ARejectedCommandWritesNothing) {
  ASSERT_OK(service_->Execute("case-1", "report", Report(), kReporter));
  Json bad = Lead();
  bad["role"] = "superuser";
  auto r = service_->Execute("case-1", "assign-lead", bad, kDsl);
  EXPECT_TRUE(r.status().IsInvalidArgument());
  EXPECT_EQ(r.status().field(), "/role");
  EXPECT_EQ(store_->committed_position().value(), 1u);
}

TEST_F(CaseServiceTest, ACommandPastItsTimeBudgetIsRefusedAndWritesNothing) {
  ASSERT_OK(service_->Execute("case-1", "report", Report(), kReporter));
  CommandOptions o;
  o.deadline = std::chrono::steady_clock::now() - std::chrono::milliseconds(1);
  auto r = service_->Execute("case-1", "assign-lead", Lead(), kDsl, o);
  EXPECT_TRUE(r.status().IsUnavailable()) << r.status().ToString();
  EXPECT_EQ(store_->committed_position().value(), 1u);
  o.deadline = std::chrono::steady_clock::now() + std::chrono::minutes(1);
  EXPECT_OK(service_->Execute("case-1", "assign-lead", Lead(), kDsl, o));
}

TEST_F(CaseServiceTest, APinnedVersionThatMovedOnIsAConflict) {
  ASSERT_OK(service_->Execute("case-1", "report", Report(), kReporter));
  CommandOptions o;
  o.expected_version = 0;
  auto r = service_->Execute("case-1", "assign-lead", Lead(), kDsl, o);
  ASSERT_TRUE(r.status().IsAborted());
  EXPECT_EQ(r.status().current_version(), 1u);
  o.expected_version = 1;
  EXPECT_OK(service_->Execute("case-1", "assign-lead", Lead(), kDsl, o));
}

TEST_F(CaseServiceTest, ARetryWithTheSameEventIdAnswersAsTheFirstTime) {
  CommandOptions o;
  o.event_id = EventId::NewV7();
  auto first = service_->Execute("case-1", "report", Report(), kReporter, o);
  ASSERT_OK(first);
  auto again = service_->Execute("case-1", "report", Report(), kReporter, o);
  ASSERT_OK(again);
  EXPECT_TRUE(again->deduplicated);
  EXPECT_EQ(again->position, first->position);
  EXPECT_EQ(store_->committed_position().value(), 1u);
  auto elsewhere =
      service_->Execute("case-2", "report", Report(), kReporter, o);
  EXPECT_TRUE(elsewhere.status().IsAlreadyExists());
}

TEST_F(CaseServiceTest, ARetryFromAnotherRequestIsRefusedNotDeduplicated) {
  CommandOptions o;
  o.event_id = EventId::NewV7();
  o.causation_id = "request:first";
  ASSERT_OK(service_->Execute("case-1", "report", Report(), kReporter, o));
  o.causation_id = "request:second";
  auto reused = service_->Execute("case-1", "report", Report(), kReporter, o);
  EXPECT_TRUE(reused.status().IsAlreadyExists()) << reused.status().ToString();
  EXPECT_EQ(store_->committed_position().value(), 1u);
}

TEST_F(CaseServiceTest, TwinRetriesRacingEachOtherWriteOnce) {
  ASSERT_OK(service_->Execute("case-1", "report", Report(), kReporter));
  CommandOptions o;
  o.event_id = EventId::NewV7();
  o.causation_id = "request:assign";
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      if (service_->Execute("case-1", "assign-lead", Lead(), kDsl, o).ok())
        ++ok;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 4);
  EXPECT_EQ(store_->committed_position().value(), 2u);
}

TEST_F(CaseServiceTest, ConcurrentCommandsOnOneCaseAreEachDecidedOnce) {
  ASSERT_OK(service_->Execute("case-1", "report", Report(), kReporter));
  ASSERT_OK(service_->Execute("case-1", "assign-lead", Lead(), kDsl));
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      Json learning = {{"learning_id", "learning-" + std::to_string(t)},
                       {"what_went_well", "Quick response."},
                       {"what_must_change", "Clearer guidance."},
                       {"share_in", {"training"}}};
      if (service_->Execute("case-1", "record-learning", learning, kDsl).ok()) {
        ++ok;
      }
    });
  }
  for (auto& t : threads) t.join();
  // Reload-and-decide-again may exhaust its attempts under contention, but
  // nothing is ever written twice or lost.
  auto state = service_->Load("case-1");
  ASSERT_OK(state);
  EXPECT_EQ(state->learning_ids.size(), static_cast<size_t>(ok.load()));
  EXPECT_EQ(state->version, 2u + static_cast<uint64_t>(ok.load()));
  EXPECT_GE(ok.load(), 1);
}

// Runs each task on a thread of its own; joins them all at the end.
class ThreadExecutor {
 public:
  ~ThreadExecutor() { Join(); }
  CaseService::Executor executor() {
    return [this](std::function<void()> work) {
      std::lock_guard<std::mutex> lk(mu_);
      threads_.emplace_back(std::move(work));
    };
  }
  void Join() {
    for (;;) {
      std::vector<std::thread> batch;
      {
        std::lock_guard<std::mutex> lk(mu_);
        batch.swap(threads_);
      }
      if (batch.empty()) return;
      for (auto& t : batch) t.join();
    }
  }

 private:
  std::mutex mu_;
  std::vector<std::thread> threads_;
};

TEST_F(CaseServiceTest, AsyncCommandsShareFsyncsAndFollowTheSameRules) {
  ASSERT_OK(service_->Execute("case-1", "report", Report(), kReporter));
  ASSERT_OK(service_->Execute("case-1", "assign-lead", Lead(), kDsl));
  ThreadExecutor pool;
  std::mutex mu;
  std::condition_variable cv;
  std::vector<StatusOr<CommandResult>> results;
  auto record = [&](StatusOr<CommandResult> r) {
    std::lock_guard<std::mutex> lk(mu);
    results.push_back(std::move(r));
    cv.notify_all();
  };
  // Eight new cases and four learning records on one case, all in flight at
  // once from one thread; conflicts on case-1 are decided again.
  for (int i = 0; i < 8; ++i) {
    service_->ExecuteAsync("async-" + std::to_string(i), "report", Report(),
                           kReporter, {}, pool.executor(), record);
  }
  for (int t = 0; t < 4; ++t) {
    Json learning = {{"learning_id", "async-learning-" + std::to_string(t)},
                     {"what_went_well", "Quick response."},
                     {"what_must_change", "Clearer guidance."},
                     {"share_in", {"training"}}};
    service_->ExecuteAsync("case-1", "record-learning", learning, kDsl, {},
                           pool.executor(), record);
  }
  // A rule still holds: a reporter may not close a case.
  service_->ExecuteAsync("case-1", "close", Json::object(), kReporter, {},
                         pool.executor(), record);
  {
    // Each command is answered exactly once.
    std::unique_lock<std::mutex> lk(mu);
    cv.wait_for(lk, std::chrono::seconds(10),
                [&] { return results.size() >= 13; });
  }
  pool.Join();
  ASSERT_EQ(results.size(), 13u);
  int ok = 0, refused = 0;
  for (const auto& r : results) {
    if (r.ok()) {
      ++ok;
    } else {
      ++refused;
    }
  }
  auto state = service_->Load("case-1");
  ASSERT_OK(state);
  // Every report lands; learning records may exhaust their attempts under
  // contention, but none is written twice or lost.
  EXPECT_EQ(ok, 8 + static_cast<int>(state->learning_ids.size()));
  EXPECT_GE(refused, 1);
  EXPECT_EQ(state->version, 2u + state->learning_ids.size());
  for (int i = 0; i < 8; ++i) {
    auto v = store_->GetStreamVersion("async-" + std::to_string(i));
    ASSERT_OK(v);
    EXPECT_EQ(v->value(), 1u);
  }
}

TEST_F(CaseServiceTest, AStoreWrittenWithAnOldSchemaVersionStillLoads) {
  ASSERT_OK(service_->Execute("case-1", "report", Report(), kReporter));
  ASSERT_OK(service_->Execute("case-1", "assign-lead", Lead(), kDsl));
  // A RiskAssessed v1 event, as an older build would have written it.
  ProposedEvent v1;
  v1.type = "RiskAssessed";
  v1.schema_version = 1;
  v1.actor = caseledger::Actor{kDsl.id, "dsl"};
  v1.payload = Json{{"risk_areas", {{{"area", "people"}, {"level", "medium"}}}},
                    {"agreed_zone", "stretch"},
                    {"zone_agreed_with_person", true},
                    {"least_restrictive_option_considered", false},
                    {"sac_risk_outcome", "inconclusive_no_action_taken"}}
                   .dump();
  ASSERT_OK(catalog_->Validate("RiskAssessed", 1, Json::parse(v1.payload)));
  auto appended =
      store_->Append("case-1", ExpectedVersion::Exact(StreamVersion(2)), {v1});
  ASSERT_OK(appended);
  auto state = service_->Load("case-1");
  ASSERT_OK(state);
  EXPECT_EQ(state->version, 3u);
  auto stored = store_->ReadEvent(appended->event_ids[0]);
  ASSERT_OK(stored);
  auto d = service_->ToDomainEvent(*stored);
  ASSERT_OK(d);
  EXPECT_EQ(d->schema_version, 2u);
  EXPECT_EQ(d->payload["risk_finding"], "inconclusive");
  EXPECT_EQ(d->payload["action_taken"], false);
  EXPECT_FALSE(d->payload.contains("sac_risk_outcome"));
  // New commands on the case still work.
  EXPECT_OK(service_->Execute("case-1", "record-learning",
                              {{"learning_id", "l-1"},
                               {"what_went_well", "a"},
                               {"what_must_change", "b"},
                               {"share_in", {"training"}}},
                              kDsl));
}

// Load keeps folded states and folds only what was appended since: after
// every single event of seeded cases (copied one by one into a second
// store, interleaving the cases), the state it gives equals a fold from the
// first event.
TEST_F(CaseServiceTest, AKeptStateFoldsOnlyNewEventsAndEqualsAFullFold) {
  testing::TempDir seeded_dir;
  Options o;
  o.sync = false;
  auto seeded = testing::OpenStore(seeded_dir.path(), o);
  SeedOptions so;
  so.cases = 12;
  ASSERT_OK(testing::SeedCases(*seeded, catalog_, keys_->sealer(), so));
  auto events = seeded->ReadAll(GlobalPosition(0), 1u << 20);
  ASSERT_OK(events);
  // Cases interleaved: the i-th event of each case, then the i+1-th.
  std::map<std::string, std::vector<RecordedEvent>> by_case;
  for (const RecordedEvent& e : *events) by_case[e.stream_id].push_back(e);
  size_t checked = 0;
  for (size_t i = 0;; ++i) {
    bool any = false;
    for (auto& [id, list] : by_case) {
      if (i >= list.size()) continue;
      any = true;
      const RecordedEvent& e = list[i];
      ProposedEvent p;
      p.event_id = e.event_id;
      p.type = e.type;
      p.schema_version = e.schema_version;
      p.occurred_at = e.occurred_at;
      p.actor = e.actor;
      p.payload = e.payload;
      ASSERT_OK(store_->Append(id, ExpectedVersion::Any(), {p}));
      auto kept = service_->Load(id);
      ASSERT_OK(kept);
      auto full = LoadCase(*store_, *catalog_, id);
      ASSERT_OK(full);
      ASSERT_EQ(kept->version, i + 1);
      ASSERT_TRUE(*kept == *full) << id << " at version " << i + 1 << ": "
                                  << domain::ToJson(id, *kept).dump();
      // Nothing appended since: the kept state itself, not a copy.
      auto shared = service_->LoadShared(id);
      ASSERT_OK(shared);
      auto again = service_->LoadShared(id);
      ASSERT_OK(again);
      ASSERT_EQ(shared->get(), again->get());
      ASSERT_TRUE(**shared == *full);
      ++checked;
    }
    if (!any) break;
  }
  EXPECT_EQ(checked, events->size());
  // A version asked for is folded as it stood, whatever is kept.
  auto at_two = service_->Load(by_case.begin()->first, 2);
  ASSERT_OK(at_two);
  EXPECT_EQ(at_two->version, 2u);
}

TEST(SeedTest, SeededCasesAreAcceptedByTheRulesAndTheStoreVerifies) {
  testing::TempDir dir;
  SeedOptions so;
  SettableClock clock;
  so.clock = &clock;
  Options o;
  o.sync = false;
  o.clock = clock.Function();
  auto store = testing::OpenStore(dir.path(), o);
  auto catalog = domain::EventCatalog::Load();
  ASSERT_OK(catalog);
  so.cases = 150;
  testing::TestKeys keys(*catalog);
  auto report =
      SeedCases(*store, *catalog, domain::DomainConfig{}, keys.sealer(), so);
  ASSERT_OK(report);
  EXPECT_EQ(report->cases, 150u);
  EXPECT_EQ(report->events, store->committed_position().value());
  EXPECT_GT(report->events, 150u * 5);
  EXPECT_GE(report->closed, 150u);
  EXPECT_GT(report->withdrawals + report->overrides, 0u);
  EXPECT_GT(report->escalations, 0u);
  auto verify = store->Verify(std::nullopt);
  ASSERT_OK(verify);
  EXPECT_TRUE(verify->ok);
  EXPECT_EQ(verify->streams_checked, 150u);
  // Recorded on the simulated clock: the cases span weeks from the start.
  auto first = store->ReadAll(GlobalPosition(0), 1);
  auto last = store->ReadAll(GlobalPosition(report->events - 1), 1);
  ASSERT_OK(first);
  ASSERT_OK(last);
  EXPECT_GT((*first)[0].recorded_at.value(), so.start.value());
  EXPECT_GT((*last)[0].recorded_at.value() - (*first)[0].recorded_at.value(),
            int64_t{7} * 24 * 3600 * 1000000);
  CaseService service(*store, *catalog, domain::DomainConfig{}, keys.sealer());
  for (int i = 1; i <= 150; i += 37) {
    char id[32];
    std::snprintf(id, sizeof(id), "case-%06d", i);
    auto state = service.Load(id);
    ASSERT_OK(state);
    EXPECT_EQ(state->stage, domain::Stage::kClosed) << id;
  }
}

// The seed decides and records on one clock, the store's: without it, or
// on a store that reads another clock, it writes nothing.
TEST(SeedTest, SeedingRefusesAStoreThatIsNotOnTheSeedsClock) {
  testing::TempDir dir;
  Options o;
  o.sync = false;
  o.clock = [] { return Timestamp(1767603600000000 - 1); };
  auto store = testing::OpenStore(dir.path(), o);
  auto catalog = domain::EventCatalog::Load();
  ASSERT_OK(catalog);
  SeedOptions so;
  so.cases = 3;
  testing::TestKeys keys(*catalog);
  EXPECT_TRUE(
      SeedCases(*store, *catalog, domain::DomainConfig{}, keys.sealer(), so)
          .status()
          .IsInvalidArgument());
  SettableClock other;
  so.clock = &other;
  EXPECT_TRUE(
      SeedCases(*store, *catalog, domain::DomainConfig{}, keys.sealer(), so)
          .status()
          .IsFailedPrecondition());
  EXPECT_EQ(store->committed_position().value(), 0u);
}

TEST(SeedTest, TheSameSeedWritesTheSameCases) {
  auto run = [](uint64_t seed) {
    testing::TempDir dir;
    Options o;
    o.sync = false;
    auto store = testing::OpenStore(dir.path(), o);
    auto catalog = domain::EventCatalog::Load();
    SeedOptions so;
    so.cases = 20;
    so.seed = seed;
    testing::TestKeys keys(*catalog);
    auto report = testing::SeedCases(*store, *catalog, keys.sealer(), so);
    EXPECT_TRUE(report.ok());
    // Payloads as written, opened (each run seals with its own keys and
    // nonces).
    CaseService service(*store, *catalog, domain::DomainConfig{},
                        keys.sealer());
    std::vector<std::string> out;
    auto events = store->ReadAll(GlobalPosition(0), 100000);
    for (const auto& e : *events) {
      auto opened = service.ToOpenedEvent(e);
      EXPECT_TRUE(opened.ok()) << opened.status().ToString();
      out.push_back(e.stream_id + e.type +
                    (opened.ok() ? opened->payload.dump() : ""));
    }
    return out;
  };
  EXPECT_EQ(run(7), run(7));
  EXPECT_NE(run(7), run(8));
}

}  // namespace
}  // namespace caseledger::service

namespace caseledger::service {
namespace {

class ReadRecordTest : public testing::StoreTest {};

TEST_F(ReadRecordTest, AForwardedReadIsWrittenOnceAndOnlyIfItIsOne) {
  const domain::Actor dsl{"user:dsl-1", domain::Role::kDsl};
  auto records = PrepareCaseReads(*catalog_, dsl, CaseReadKind::kState,
                                  {{"case-7", 3}, {"case-8", 1}});
  ASSERT_OK(records);
  ASSERT_EQ(records->size(), 2u);
  for (const ReadRecord& r : *records) {
    EXPECT_FALSE(r.event.event_id.IsNil());
    EXPECT_OK(CheckForwardedRead(*catalog_, r));
  }
  EXPECT_EQ((*records)[0].stream_id, AccessStreamOf("case-7"));

  auto append = [&](std::vector<ReadRecord> rs) {
    std::promise<Status> p;
    auto f = p.get_future();
    AppendReadRecords(*store_, std::move(rs),
                      [&p](Status s) { p.set_value(std::move(s)); });
    return f.get();
  };
  ASSERT_OK(append(*records));
  ASSERT_OK(append(*records));  // arrives twice: answered from the log
  EXPECT_EQ(store_->committed_position().value(), 2u);
  auto log = ReadAccessLog(*store_, "case-7");
  ASSERT_OK(log);
  ASSERT_EQ(log->size(), 1u);
  EXPECT_EQ((*log)[0].actor_id, "user:dsl-1");
  EXPECT_EQ((*log)[0].what, "state");
  EXPECT_EQ((*log)[0].version, 3u);

  // What a follower may not forward.
  auto bad = [&](auto change) {
    ReadRecord r = (*records)[0];
    change(r);
    return CheckForwardedRead(*catalog_, r).IsInvalidArgument();
  };
  EXPECT_TRUE(bad([](ReadRecord& r) { r.event.type = "ConcernReported"; }));
  EXPECT_TRUE(bad([](ReadRecord& r) { r.event.event_id = EventId(); }));
  EXPECT_TRUE(bad([](ReadRecord& r) { r.stream_id = "case-7"; }));
  EXPECT_TRUE(
      bad([](ReadRecord& r) { r.stream_id = AccessStreamOf("case-8"); }));
  EXPECT_TRUE(bad([](ReadRecord& r) { r.event.payload = "not json"; }));
  EXPECT_TRUE(bad([](ReadRecord& r) {
    r.event.payload = R"({"case_id":"case-7","read":"peek","version":3})";
  }));
  EXPECT_TRUE(bad([](ReadRecord& r) { r.event.actor.role = "superuser"; }));
  EXPECT_TRUE(bad([](ReadRecord& r) { r.event.actor.id.clear(); }));
}

}  // namespace
}  // namespace caseledger::service
