#include "caseledger/event_store.h"

#include <atomic>
#include <filesystem>
#include <future>
#include <map>
#include <thread>
#include <vector>

#include "tests/support/test_support.h"

namespace caseledger {
namespace {

using testing::MakeEvent;
using testing::TempDir;

class EventStoreTest : public ::testing::Test {
 protected:
  void SetUp() override { Reopen(); }

  void Reopen(Options options = Options()) {
    store_.reset();
    options.sync = false;  // these tests are about logic, not fsync
    store_ = testing::OpenStore(dir_.path(), options);
    ASSERT_NE(store_, nullptr);
  }

  StatusOr<AppendResult> Append(const std::string& id, ExpectedVersion ev,
                                std::vector<ProposedEvent> events) {
    return store_->Append(id, ev, std::move(events));
  }

  StatusOr<AppendResult> AppendOne(const std::string& id,
                                   ExpectedVersion ev = ExpectedVersion::Any(),
                                   std::string payload = R"({"n":1})") {
    return Append(id, ev, {MakeEvent("TestEvent", std::move(payload))});
  }

  std::vector<RecordedEvent> ReadAll() {
    auto r = store_->ReadAll(GlobalPosition(0), 1u << 30);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : std::vector<RecordedEvent>{};
  }

  TempDir dir_;
  std::unique_ptr<EventStore> store_;
};

TEST_F(EventStoreTest, FirstAppendStartsAtVersionAndPositionOne) {
  auto r = Append("case-1", ExpectedVersion::NoStream(),
                  {MakeEvent("A"), MakeEvent("B")});
  ASSERT_OK(r);
  EXPECT_EQ(r->first_version.value(), 1u);
  EXPECT_EQ(r->last_version.value(), 2u);
  EXPECT_EQ(r->first_position.value(), 1u);
  EXPECT_EQ(r->last_position.value(), 2u);
  EXPECT_FALSE(r->deduplicated);
  ASSERT_EQ(r->event_ids.size(), 2u);
  EXPECT_FALSE(r->event_ids[0].IsNil());  // assigned by the store
  EXPECT_EQ(store_->committed_position().value(), 2u);
}

TEST_F(EventStoreTest, EnvelopeRoundTripsEveryField) {
  ProposedEvent e =
      MakeEvent("ConcernReported", R"({"kind":"concern"})", EventId::NewV7());
  e.schema_version = 3;
  e.occurred_at = Timestamp(1700000000123456);
  e.actor = Actor{"reporter-7", "reporter"};
  e.correlation_id = "corr-9";
  e.causation_id = "cause-8";
  Options o;
  o.clock = [] { return Timestamp(1800000000000001); };
  Reopen(o);
  ASSERT_OK(Append("case-1", ExpectedVersion::Any(), {e}));
  auto got = store_->ReadEvent(e.event_id);
  ASSERT_OK(got);
  EXPECT_EQ(got->event_id, e.event_id);
  EXPECT_EQ(got->stream_id, "case-1");
  EXPECT_EQ(got->version.value(), 1u);
  EXPECT_EQ(got->position.value(), 1u);
  EXPECT_EQ(got->type, "ConcernReported");
  EXPECT_EQ(got->schema_version, 3u);
  EXPECT_EQ(got->recorded_at.value(), 1800000000000001);
  EXPECT_EQ(got->occurred_at.value(), 1700000000123456);
  EXPECT_EQ(got->actor, (Actor{"reporter-7", "reporter"}));
  EXPECT_EQ(got->correlation_id, "corr-9");
  EXPECT_EQ(got->causation_id, "cause-8");
  EXPECT_EQ(got->payload, R"({"kind":"concern"})");
  EXPECT_EQ(got->log_hash, store_->Head().log_hash);
}

TEST_F(EventStoreTest, AppendWithOneInvalidEventWritesNothing) {
  ASSERT_OK(AppendOne("case-1"));
  auto r = Append("case-1", ExpectedVersion::Any(),
                  {MakeEvent("A"), MakeEvent("B", "{not json")});
  EXPECT_TRUE(r.status().IsInvalidArgument()) << r.status().ToString();
  EXPECT_EQ(store_->committed_position().value(), 1u);
  EXPECT_EQ(ReadAll().size(), 1u);
  EXPECT_EQ(store_->GetStreamVersion("case-1")->value(), 1u);
}

TEST_F(EventStoreTest, RejectsMalformedRequests) {
  EXPECT_TRUE(AppendOne("").status().IsInvalidArgument());
  EXPECT_TRUE(AppendOne("case/1").status().IsInvalidArgument());
  EXPECT_TRUE(AppendOne(std::string(129, 'a')).status().IsInvalidArgument());
  EXPECT_TRUE(
      Append("c", ExpectedVersion::Any(), {}).status().IsInvalidArgument());
  ProposedEvent no_actor = MakeEvent();
  no_actor.actor = Actor{};
  EXPECT_TRUE(Append("c", ExpectedVersion::Any(), {no_actor})
                  .status()
                  .IsInvalidArgument());
  EventId id = EventId::NewV7();
  EXPECT_TRUE(Append("c", ExpectedVersion::Any(),
                     {MakeEvent("A", "{}", id), MakeEvent("B", "{}", id)})
                  .status()
                  .IsInvalidArgument());
  EXPECT_EQ(store_->committed_position().value(), 0u);
}

TEST_F(EventStoreTest, NoStreamOnExistingCaseIsAbortedWithActualVersion) {
  ASSERT_OK(Append("case-1", ExpectedVersion::Any(),
                   {MakeEvent("A"), MakeEvent("B"), MakeEvent("C")}));
  auto r = AppendOne("case-1", ExpectedVersion::NoStream());
  ASSERT_TRUE(r.status().IsAborted()) << r.status().ToString();
  EXPECT_EQ(r.status().current_version(), 3u);
}

TEST_F(EventStoreTest, StaleExactVersionIsAbortedWithActualVersion) {
  ASSERT_OK(AppendOne("case-1"));
  ASSERT_OK(AppendOne("case-1"));
  auto r = AppendOne("case-1", ExpectedVersion::Exact(StreamVersion(1)));
  ASSERT_TRUE(r.status().IsAborted());
  EXPECT_EQ(r.status().current_version(), 2u);
  ASSERT_OK(AppendOne("case-1", ExpectedVersion::Exact(StreamVersion(2))));
  EXPECT_EQ(store_->committed_position().value(), 3u);
}

TEST_F(EventStoreTest, StreamExistsOnNewCaseIsAborted) {
  auto r = AppendOne("new-case", ExpectedVersion::StreamExists());
  ASSERT_TRUE(r.status().IsAborted());
  EXPECT_EQ(r.status().current_version(), 0u);
  EXPECT_EQ(store_->committed_position().value(), 0u);
}

TEST_F(EventStoreTest, RacingAppendersAtSameVersionHaveExactlyOneWinner) {
  constexpr int kThreads = 8;
  constexpr int kRounds = 25;
  for (int round = 0; round < kRounds; ++round) {
    std::atomic<int> winners{0}, conflicts{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        auto r = AppendOne(
            "race",
            ExpectedVersion::Exact(StreamVersion(static_cast<uint64_t>(round))),
            R"({"t":)" + std::to_string(t) + "}");
        if (r.ok()) {
          ++winners;
        } else if (r.status().IsAborted() &&
                   r.status().current_version() ==
                       static_cast<uint64_t>(round + 1)) {
          ++conflicts;
        } else {
          ADD_FAILURE() << r.status().ToString();
        }
      });
    }
    for (auto& th : threads) th.join();
    ASSERT_EQ(winners.load(), 1) << "round " << round;
    ASSERT_EQ(conflicts.load(), kThreads - 1) << "round " << round;
  }
  EXPECT_EQ(store_->GetStreamVersion("race")->value(),
            static_cast<uint64_t>(kRounds));
  EXPECT_EQ(store_->committed_position().value(),
            static_cast<uint64_t>(kRounds));
}

TEST_F(EventStoreTest, ABackupHoldsExactlyTheEventsUpToItsPosition) {
  // Appenders keep writing while the backup is taken.
  std::atomic<bool> stop{false};
  std::vector<std::thread> writers;
  for (int t = 0; t < 4; ++t) {
    writers.emplace_back([&, t] {
      while (!stop.load()) {
        ASSERT_OK(AppendOne("case-" + std::to_string(t)));
      }
    });
  }
  ASSERT_TRUE(testing::WaitFor(
      [&] { return store_->committed_position().value() >= 200; }));
  const std::string dir = dir_.path() + "-backup";
  auto position = store_->Backup(dir);
  ASSERT_OK(position);
  stop.store(true);
  for (auto& w : writers) w.join();
  EXPECT_GT(store_->committed_position().value(), position->value());
  EXPECT_TRUE(store_->Backup(dir).status().IsAlreadyExists());

  // The copy is a store of its own: the same first events, nothing after
  // its position, and its chains verify.
  const std::vector<RecordedEvent> original = ReadAll();
  std::unique_ptr<EventStore> copy = testing::OpenStore(dir);
  ASSERT_NE(copy, nullptr);
  EXPECT_EQ(copy->committed_position(), *position);
  auto copied = copy->ReadAll(GlobalPosition(0), 1u << 30);
  ASSERT_OK(copied);
  ASSERT_EQ(copied->size(), position->value());
  for (size_t i = 0; i < copied->size(); ++i) {
    EXPECT_EQ((*copied)[i].event_id, original[i].event_id);
    EXPECT_EQ((*copied)[i].case_hash, original[i].case_hash);
  }
  auto report = copy->Verify(std::nullopt);
  ASSERT_OK(report);
  EXPECT_TRUE(report->ok);
  // And it takes appends where the original's log went on differently.
  ASSERT_OK(copy->Append("case-0", ExpectedVersion::Any(), {MakeEvent()}));
  copy.reset();
  std::filesystem::remove_all(dir);

  Options read_only;
  read_only.read_only = true;
  read_only.create_if_missing = false;
  store_.reset();
  std::unique_ptr<EventStore> ro = testing::OpenStore(dir_.path(), read_only);
  ASSERT_NE(ro, nullptr);
  EXPECT_TRUE(ro->Backup(dir).status().IsFailedPrecondition());
}

// Backups taken at once, beside a lone appender that writes on its own
// thread between them: every backup ends (none waits for a wake-up that
// never comes), and each copy holds exactly its position's events.
TEST_F(EventStoreTest, ConcurrentBackupsAndALoneAppenderAllFinish) {
  for (int round = 0; round < 5; ++round) {
    std::atomic<bool> stop{false};
    std::thread appender([&] {
      while (!stop.load()) ASSERT_OK(AppendOne("case-lone"));
    });
    std::vector<std::thread> backups;
    std::vector<StatusOr<GlobalPosition>> positions(3, Status::OK());
    for (int b = 0; b < 3; ++b) {
      backups.emplace_back([&, b] {
        positions[static_cast<size_t>(b)] =
            store_->Backup(dir_.path() + "-b" + std::to_string(round) + "-" +
                           std::to_string(b));
      });
    }
    for (auto& t : backups) t.join();
    stop.store(true);
    appender.join();
    for (int b = 0; b < 3; ++b) {
      ASSERT_OK(positions[static_cast<size_t>(b)]);
      const std::string dir =
          dir_.path() + "-b" + std::to_string(round) + "-" + std::to_string(b);
      {
        std::unique_ptr<EventStore> copy = testing::OpenStore(dir);
        ASSERT_NE(copy, nullptr);
        EXPECT_EQ(copy->committed_position(),
                  *positions[static_cast<size_t>(b)]);
      }
      std::filesystem::remove_all(dir);
    }
  }
  // The store still takes appends, and closes.
  ASSERT_OK(AppendOne("case-lone"));
  ASSERT_OK(store_->Close());
}

TEST_F(EventStoreTest, RetryWithSameIdsReturnsOriginalResultInEveryMode) {
  std::vector<ProposedEvent> batch = {
      MakeEvent("A", R"({"a":1})", EventId::NewV7()),
      MakeEvent("B", R"({"b":2})", EventId::NewV7())};
  auto first = Append("case-1", ExpectedVersion::NoStream(), batch);
  ASSERT_OK(first);
  ASSERT_OK(AppendOne("case-1"));  // the case moves on

  for (ExpectedVersion ev :
       {ExpectedVersion::NoStream(), ExpectedVersion::Any(),
        ExpectedVersion::StreamExists(),
        ExpectedVersion::Exact(StreamVersion(0)),
        ExpectedVersion::Exact(StreamVersion(42))}) {
    auto retry = Append("case-1", ev, batch);
    ASSERT_OK(retry);
    EXPECT_TRUE(retry->deduplicated) << ev.ToString();
    EXPECT_EQ(retry->first_position, first->first_position);
    EXPECT_EQ(retry->last_position, first->last_position);
    EXPECT_EQ(retry->first_version, first->first_version);
    EXPECT_EQ(retry->last_version, first->last_version);
    EXPECT_EQ(retry->event_ids, first->event_ids);
  }
  EXPECT_EQ(store_->committed_position().value(), 3u);
}

TEST_F(EventStoreTest, DeduplicationIsPermanentAcrossReopenAndManyWrites) {
  ProposedEvent e = MakeEvent("A", R"({"a":1})", EventId::NewV7());
  auto first = Append("case-1", ExpectedVersion::Any(), {e});
  ASSERT_OK(first);
  for (int i = 0; i < 2000; ++i) {
    ASSERT_OK(AppendOne("other-" + std::to_string(i % 50)));
  }
  Reopen();
  auto retry = Append("case-1", ExpectedVersion::Any(), {e});
  ASSERT_OK(retry);
  EXPECT_TRUE(retry->deduplicated);
  EXPECT_EQ(retry->first_position, first->first_position);
  EXPECT_EQ(store_->committed_position().value(), 2001u);
}

TEST_F(EventStoreTest, SameIdWithOtherContentIsAlreadyExists) {
  EventId id = EventId::NewV7();
  ASSERT_OK(Append("case-1", ExpectedVersion::Any(),
                   {MakeEvent("A", R"({"a":1})", id)}));
  auto r = Append("case-1", ExpectedVersion::Any(),
                  {MakeEvent("A", R"({"a":2})", id)});
  EXPECT_TRUE(r.status().IsAlreadyExists()) << r.status().ToString();
  auto other_case = Append("case-2", ExpectedVersion::Any(),
                           {MakeEvent("A", R"({"a":1})", id)});
  EXPECT_TRUE(other_case.status().IsAlreadyExists());
  EXPECT_EQ(store_->committed_position().value(), 1u);
}

TEST_F(EventStoreTest, PartlyStoredAppendIsAlreadyExistsAndWritesNothing) {
  ProposedEvent a = MakeEvent("A", R"({"a":1})", EventId::NewV7());
  ProposedEvent b = MakeEvent("B", R"({"b":1})", EventId::NewV7());
  ASSERT_OK(Append("case-1", ExpectedVersion::Any(), {a}));
  auto r = Append("case-1", ExpectedVersion::Any(), {a, b});
  EXPECT_TRUE(r.status().IsAlreadyExists());
  EXPECT_EQ(store_->committed_position().value(), 1u);
  EXPECT_TRUE(store_->ReadEvent(b.event_id).status().IsNotFound());
}

TEST_F(EventStoreTest, ConcurrentRetriesOfOneAppendWriteItOnce) {
  std::vector<ProposedEvent> batch = {
      MakeEvent("A", R"({"a":1})", EventId::NewV7()),
      MakeEvent("B", R"({"b":1})", EventId::NewV7())};
  constexpr int kCopies = 16;
  std::vector<std::thread> threads;
  std::vector<StatusOr<AppendResult>> results(kCopies, Status::OK());
  for (int i = 0; i < kCopies; ++i) {
    threads.emplace_back([&, i] {
      results[static_cast<size_t>(i)] =
          Append("case-1", ExpectedVersion::NoStream(), batch);
    });
  }
  for (auto& t : threads) t.join();
  int fresh = 0;
  for (const auto& r : results) {
    ASSERT_OK(r);
    EXPECT_EQ(r->first_position.value(), 1u);
    EXPECT_EQ(r->last_position.value(), 2u);
    fresh += r->deduplicated ? 0 : 1;
  }
  EXPECT_EQ(fresh, 1);
  EXPECT_EQ(ReadAll().size(), 2u);
}

TEST_F(EventStoreTest, EventsAndHeadPersistAcrossReopen) {
  for (int i = 0; i < 10; ++i) {
    ASSERT_OK(AppendOne("case-" + std::to_string(i % 3)));
  }
  LogHead before = store_->Head();
  Reopen();
  LogHead after = store_->Head();
  EXPECT_EQ(after.position, before.position);
  EXPECT_EQ(after.log_hash, before.log_hash);
  EXPECT_EQ(store_->GetStreamVersion("case-0")->value(), 4u);
  EXPECT_EQ(store_->GetStreamVersion("case-1")->value(), 3u);
  EXPECT_EQ(ReadAll().size(), 10u);
  ASSERT_OK(AppendOne("case-1", ExpectedVersion::Exact(StreamVersion(3))));
  EXPECT_EQ(store_->committed_position().value(), 11u);
  auto report = store_->Verify(std::nullopt);
  ASSERT_OK(report);
  EXPECT_TRUE(report->ok);
  EXPECT_EQ(report->events_checked, 11u);
  EXPECT_EQ(report->streams_checked, 3u);
}

TEST_F(EventStoreTest, ReadsACaseForwardAndBackwardWithALimit) {
  for (int i = 1; i <= 10; ++i) {
    ASSERT_OK(AppendOne("case-1", ExpectedVersion::Any(),
                        R"({"i":)" + std::to_string(i) + "}"));
    ASSERT_OK(AppendOne("case-10"));  // a case whose id extends the other's
  }
  auto fwd =
      store_->ReadStream("case-1", StreamVersion(4), Direction::kForward, 3);
  ASSERT_OK(fwd);
  ASSERT_EQ(fwd->size(), 3u);
  EXPECT_EQ((*fwd)[0].version.value(), 4u);
  EXPECT_EQ((*fwd)[2].version.value(), 6u);
  EXPECT_EQ((*fwd)[0].payload, R"({"i":4})");
  for (const auto& e : *fwd) EXPECT_EQ(e.stream_id, "case-1");

  auto back =
      store_->ReadStream("case-1", StreamVersion(100), Direction::kBackward, 4);
  ASSERT_OK(back);
  ASSERT_EQ(back->size(), 4u);
  EXPECT_EQ((*back)[0].version.value(), 10u);
  EXPECT_EQ((*back)[3].version.value(), 7u);

  auto all =
      store_->ReadStream("case-1", StreamVersion(1), Direction::kForward, 1000);
  ASSERT_OK(all);
  EXPECT_EQ(all->size(), 10u);
  auto none =
      store_->ReadStream("nope", StreamVersion(1), Direction::kForward, 10);
  ASSERT_OK(none);
  EXPECT_TRUE(none->empty());
  EXPECT_EQ(store_->GetStreamVersion("nope")->value(), 0u);
}

TEST_F(EventStoreTest, ReadsTheLogFromAPositionWithALimit) {
  for (int i = 0; i < 20; ++i)
    ASSERT_OK(AppendOne("c" + std::to_string(i % 4)));
  auto page = store_->ReadAll(GlobalPosition(5), 7);
  ASSERT_OK(page);
  ASSERT_EQ(page->size(), 7u);
  for (size_t i = 0; i < page->size(); ++i) {
    EXPECT_EQ((*page)[i].position.value(), 6 + i);
  }
  auto tail = store_->ReadAll(GlobalPosition(18), 100);
  ASSERT_OK(tail);
  EXPECT_EQ(tail->size(), 2u);
  auto past = store_->ReadAll(GlobalPosition(20), 100);
  ASSERT_OK(past);
  EXPECT_TRUE(past->empty());
}

TEST_F(EventStoreTest, ReadEventOfUnknownIdIsNotFound) {
  EXPECT_TRUE(store_->ReadEvent(EventId::NewV7()).status().IsNotFound());
}

TEST_F(EventStoreTest, SubscriptionCatchesUpThenFollowsLiveAppendsInOrder) {
  for (int i = 0; i < 50; ++i)
    ASSERT_OK(AppendOne("pre-" + std::to_string(i % 5)));

  constexpr int kWriters = 4;
  constexpr int kPerWriter = 250;
  constexpr uint64_t kTotal = 50 + kWriters * kPerWriter;
  std::vector<RecordedEvent> got;
  std::thread reader([&] {
    auto sub = store_->Subscribe(GlobalPosition(0));
    while (got.size() < kTotal) {
      auto batch = sub->Next(64, std::chrono::milliseconds(2000));
      ASSERT_OK(batch);
      ASSERT_FALSE(batch->empty()) << "stalled at " << got.size();
      for (auto& e : *batch) got.push_back(std::move(e));
    }
  });
  std::vector<std::thread> writers;
  for (int w = 0; w < kWriters; ++w) {
    writers.emplace_back([&, w] {
      for (int i = 0; i < kPerWriter; ++i) {
        auto r = AppendOne("live-" + std::to_string(w) + "-" +
                           std::to_string(i % 7));
        ASSERT_TRUE(r.ok()) << r.status().ToString();
      }
    });
  }
  for (auto& t : writers) t.join();
  reader.join();

  ASSERT_EQ(got.size(), kTotal);
  std::map<std::string, uint64_t> versions;
  for (size_t i = 0; i < got.size(); ++i) {
    ASSERT_EQ(got[i].position.value(), i + 1) << "gap or duplicate";
    uint64_t& v = versions[got[i].stream_id];
    ASSERT_EQ(got[i].version.value(), v + 1) << got[i].stream_id;
    v = got[i].version.value();
  }
}

TEST_F(EventStoreTest, SubscriptionAtTheHeadTimesOutEmpty) {
  ASSERT_OK(AppendOne("c"));
  auto sub = store_->Subscribe(GlobalPosition(1));
  auto batch = sub->Next(10, std::chrono::milliseconds(20));
  ASSERT_OK(batch);
  EXPECT_TRUE(batch->empty());
  EXPECT_EQ(sub->position().value(), 1u);
}

TEST_F(EventStoreTest, SubscriptionIsWokenByACommitAndByClose) {
  auto sub = store_->Subscribe(GlobalPosition(0));
  std::thread writer([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    ASSERT_OK(AppendOne("c"));
  });
  auto batch = sub->Next(10, std::chrono::seconds(10));
  writer.join();
  ASSERT_OK(batch);
  ASSERT_EQ(batch->size(), 1u);

  std::thread closer([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    ASSERT_OK(store_->Close());
  });
  auto after_close = sub->Next(10, std::chrono::seconds(10));
  closer.join();
  EXPECT_TRUE(after_close.status().IsUnavailable());
  EXPECT_TRUE(AppendOne("c").status().IsUnavailable());
}

TEST_F(EventStoreTest, WaitForPositionReturnsOnceCommitted) {
  EXPECT_FALSE(store_->WaitForPosition(GlobalPosition(1),
                                       std::chrono::milliseconds(10)));
  std::thread writer([&] { ASSERT_OK(AppendOne("c")); });
  EXPECT_TRUE(
      store_->WaitForPosition(GlobalPosition(1), std::chrono::seconds(10)));
  writer.join();
}

TEST_F(EventStoreTest, AsyncAppendCompletesOnTheWriter) {
  std::promise<StatusOr<AppendResult>> p;
  store_->AppendAsync(
      "c", ExpectedVersion::NoStream(), {MakeEvent()},
      [&](StatusOr<AppendResult> r) { p.set_value(std::move(r)); });
  auto r = p.get_future().get();
  ASSERT_OK(r);
  EXPECT_EQ(r->last_position.value(), 1u);
}

TEST_F(EventStoreTest, SecondOpenOfTheSameDirectoryIsRefused) {
  std::unique_ptr<EventStore> second;
  Status s = EventStore::Open(Options(), dir_.path(), &second);
  EXPECT_TRUE(s.IsFailedPrecondition()) << s.ToString();
}

TEST_F(EventStoreTest, ReadOnlyOpenRefusesAppendsButReads) {
  ASSERT_OK(AppendOne("c"));
  store_.reset();
  Options o;
  o.read_only = true;
  std::unique_ptr<EventStore> ro;
  ASSERT_OK(EventStore::Open(o, dir_.path(), &ro));
  EXPECT_TRUE(ro->Append("c", ExpectedVersion::Any(), {MakeEvent()})
                  .status()
                  .IsFailedPrecondition());
  EXPECT_EQ(ro->GetStreamVersion("c")->value(), 1u);
}

TEST_F(EventStoreTest, OpeningAMissingStoreWithoutCreateIsNotFound) {
  TempDir other;
  Options o;
  o.create_if_missing = false;
  std::unique_ptr<EventStore> s;
  Status st = EventStore::Open(o, other.path() + "/absent", &s);
  EXPECT_TRUE(st.IsNotFound()) << st.ToString();
}

}  // namespace
}  // namespace caseledger
