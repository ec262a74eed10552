// Crash safety of the read models' checkpoints: a child process catching up
// the read models is killed with SIGKILL at random moments; each time, the
// models it leaves resume from their checkpoint and end byte for byte equal
// to models built without interruption. A checkpoint ahead of or behind its
// batch would show as a missing or doubled record (the learning feed's
// sequence numbers, the indexes).
#include <signal.h>
#include <sys/select.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <iostream>
#include <random>
#include <thread>

#include "caseledger/projections/read_models.h"
#include "caseledger/service/seed.h"
#include "projections/src/open_with_env.h"
#include "tests/support/faulty_disk_env.h"
#include "tests/support/power_cut_env.h"
#include "tests/support/seeding.h"
#include "tests/support/test_support.h"

namespace caseledger::projections {
namespace {

// The projection worker (tests/projections/projection_worker.cc) on the
// log `store_dir`, building models in `models_dir`; `mode` "rebuild" makes
// it rebuild them.
std::unique_ptr<testing::ChildProcess> Spawn(const std::string& store_dir,
                                             const std::string& models_dir,
                                             const char* mode = nullptr) {
  std::vector<std::string> args = {store_dir, models_dir};
  if (mode != nullptr) args.emplace_back(mode);
  return std::make_unique<testing::ChildProcess>(
      testing::ChildProcess::Beside("projection_worker"), args);
}

// A log at `path` with `cases` seeded cases (more, if it has some, with
// ids that start with `prefix`).
void Seed(const std::string& path,
          std::shared_ptr<const domain::EventCatalog> catalog, size_t cases,
          const std::string& prefix = "") {
  Options o;
  o.sync = false;
  auto store = testing::OpenStore(path, o);
  service::SeedOptions so;
  so.cases = cases;
  if (!prefix.empty()) {
    so.case_prefix = prefix;
    so.seed += 1;  // other ids
  }
  testing::TestKeys keys(catalog);  // (nothing here opens what it seals)
  ASSERT_OK(testing::SeedCases(*store, catalog, keys.sealer(), so));
  ASSERT_OK(store->Close());
}

TEST(ProjectionCrashTest,
     AKilledCatchUpResumesToExactlyTheUninterruptedModels) {
  testing::TempDir dir;
  const std::string log = dir.path() + "/log";
  auto catalog = domain::EventCatalog::Load();
  ASSERT_OK(catalog);
  ASSERT_NO_FATAL_FAILURE(Seed(log, *catalog, 500));

  // The reference: a worker that runs to the end, timed from ready to done.
  auto ref = Spawn(log, dir.path() + "/reference");
  ASSERT_TRUE(ref->ReadUntil("ready\n")) << ref->output();
  auto started = std::chrono::steady_clock::now();
  ASSERT_TRUE(ref->ReadUntil("done\n")) << ref->output();
  const auto catch_up = std::chrono::steady_clock::now() - started;
  int status = ref->Wait();
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);

  Options ro;
  ro.read_only = true;
  ro.create_if_missing = false;
  auto store = testing::OpenStore(log, ro);
  const uint64_t end = store->committed_position().value();
  auto reference = ReadModels::Open(dir.path() + "/reference", *store, *catalog,
                                    nullptr, "crash-test-key-0123456");
  ASSERT_OK(reference);
  ASSERT_EQ((*reference)->Health().position, end);
  auto expected = (*reference)->Dump();
  ASSERT_OK(expected);

  std::mt19937 rng(20261123);
  const auto span =
      std::chrono::duration_cast<std::chrono::microseconds>(catch_up).count();
  // Kill at random moments inside the catch-up until three kills have
  // landed between two checkpoints (20 tries at most); every try, wherever
  // it landed, must resume to the reference.
  int killed_midway = 0;
  for (int run = 0; run < 20 && killed_midway < 3; ++run) {
    const std::string models = dir.path() + "/killed-" + std::to_string(run);
    auto worker = Spawn(log, models);
    ASSERT_TRUE(worker->ReadUntil("ready\n")) << worker->output();
    // Somewhere in the middle 80% of the catch-up.
    std::this_thread::sleep_for(std::chrono::microseconds(
        span / 10 + static_cast<int64_t>(
                        rng() % static_cast<uint64_t>(span * 8 / 10 + 1))));
    status = worker->Kill();

    auto resumed = ReadModels::Open(models, *store, *catalog, nullptr,
                                    "crash-test-key-0123456");
    ASSERT_OK(resumed);
    const uint64_t checkpoint = (*resumed)->Health().position;
    ASSERT_LE(checkpoint, end);
    if (checkpoint > 0 && checkpoint < end) ++killed_midway;
    ASSERT_OK((*resumed)->CatchUp());
    auto got = (*resumed)->Dump();
    ASSERT_OK(got);
    ASSERT_EQ(got->size(), expected->size()) << "run " << run;
    EXPECT_TRUE(*got == *expected)
        << "run " << run << ": killed at checkpoint " << checkpoint;
  }
  // The kills landed inside the catch-up, not only before or after it.
  std::cout << "killed between checkpoints " << killed_midway << " time(s)\n";
  EXPECT_GE(killed_midway, 3);
}

// A rebuild writes its generation without the WAL and flushes it before
// swapping it in. Killed during a rebuild, or just after it swapped the new
// generation in, the models must read exactly as the uninterrupted ones,
// checkpoint included: the old generation if the swap had not happened, the
// whole new one if it had.
TEST(ProjectionCrashTest, AKilledRebuildLeavesOneWholeGeneration) {
  testing::TempDir dir;
  const std::string log = dir.path() + "/log";
  auto catalog = domain::EventCatalog::Load();
  ASSERT_OK(catalog);
  ASSERT_NO_FATAL_FAILURE(Seed(log, *catalog, 300));
  Options ro;
  ro.read_only = true;
  ro.create_if_missing = false;
  auto store = testing::OpenStore(log, ro);
  std::vector<std::pair<std::string, std::string>> expected;
  {
    auto reference =
        ReadModels::Open(dir.path() + "/reference", *store, *catalog, nullptr,
                         "crash-test-key-0123456");
    ASSERT_OK(reference);
    ASSERT_OK((*reference)->CatchUp());
    auto dump = (*reference)->Dump();
    ASSERT_OK(dump);
    expected = std::move(*dump);
  }

  // How long a rebuild takes, killed only once it has swapped.
  auto timed = Spawn(log, dir.path() + "/timed", "rebuild");
  ASSERT_TRUE(timed->ReadUntil("ready\n")) << timed->output();
  auto started = std::chrono::steady_clock::now();
  ASSERT_TRUE(timed->ReadUntil("rebuilt\n")) << timed->output();
  const auto span = std::chrono::duration_cast<std::chrono::microseconds>(
                        std::chrono::steady_clock::now() - started)
                        .count();
  timed->Kill();

  // That run, killed just after its swap, and runs killed at random
  // moments of the rebuild.
  std::mt19937 rng(20261205);
  std::vector<std::string> runs = {dir.path() + "/timed"};
  for (int run = 0; run < 6; ++run) {
    const std::string models = dir.path() + "/killed-" + std::to_string(run);
    auto worker = Spawn(log, models, "rebuild");
    ASSERT_TRUE(worker->ReadUntil("ready\n")) << worker->output();
    std::this_thread::sleep_for(std::chrono::microseconds(static_cast<int64_t>(
        rng() % static_cast<uint64_t>(span * 11 / 10 + 1))));
    worker->Kill();
    runs.push_back(models);
  }
  // Both generations were whole, to the end of the log: whichever is
  // current reads as the reference without catching up.
  const uint64_t end = store->committed_position().value();
  for (const std::string& models : runs) {
    auto resumed = ReadModels::Open(models, *store, *catalog, nullptr,
                                    "crash-test-key-0123456");
    ASSERT_OK(resumed);
    EXPECT_EQ((*resumed)->Health().position, end) << models;
    auto got = (*resumed)->Dump();
    ASSERT_OK(got);
    ASSERT_EQ(got->size(), expected.size()) << models;
    EXPECT_TRUE(*got == expected) << models;
  }
}

// Power loss, not just SIGKILL: the read models on an Env that loses every
// byte not yet synced (their batches are written without a sync), cut off
// at random moments of a catch-up and of a rebuild. Each run's models were
// first caught up to the middle of the log and closed (so a checkpoint is
// on the disk); after the reboot, checkpoint and models agree: they resume
// from there, and end equal to models built without interruption.
TEST(ProjectionCrashTest, APowerCutLeavesCheckpointAndModelsInStep) {
  testing::TempDir dir;
  const std::string log = dir.path() + "/log";
  const std::string half_log = dir.path() + "/half-log";
  auto catalog = domain::EventCatalog::Load();
  ASSERT_OK(catalog);
  ASSERT_NO_FATAL_FAILURE(Seed(log, *catalog, 150));
  std::filesystem::copy(log, half_log);
  ASSERT_NO_FATAL_FAILURE(Seed(log, *catalog, 150, "more-"));
  Options ro;
  ro.read_only = true;
  ro.create_if_missing = false;
  auto half = testing::OpenStore(half_log, ro);
  auto store = testing::OpenStore(log, ro);
  const uint64_t middle = half->committed_position().value();
  const uint64_t end = store->committed_position().value();
  ASSERT_LT(middle, end);
  std::vector<std::pair<std::string, std::string>> expected;
  std::chrono::microseconds span{};
  {
    auto reference =
        ReadModels::Open(dir.path() + "/reference", *store, *catalog, nullptr,
                         "crash-test-key-0123456");
    ASSERT_OK(reference);
    auto started = std::chrono::steady_clock::now();
    ASSERT_OK((*reference)->CatchUp());
    span = std::chrono::duration_cast<std::chrono::microseconds>(
        std::chrono::steady_clock::now() - started);
    auto dump = (*reference)->Dump();
    ASSERT_OK(dump);
    expected = std::move(*dump);
  }
  std::mt19937 rng(20261206);
  uint64_t lost = 0;
  // Runs 0-7 cut at a random moment; run 8 cuts the moment a rebuild has
  // returned (it has swapped generations and dropped the old one: the
  // swap must be on the disk by then, or the models point at nothing).
  for (int run = 0; run < 9; ++run) {
    const bool rebuild = run % 2 == 1 || run == 8;
    const std::string models = dir.path() + "/cut-" + std::to_string(run);
    testing::PowerCutEnv env;
    {
      auto first = internal::OpenWithEnv(models, *half, *catalog, nullptr,
                                         "crash-test-key-0123456", &env);
      ASSERT_OK(first);
      ASSERT_OK((*first)->CatchUp());
    }  // closed cleanly: flushed and synced
    {
      auto opened = internal::OpenWithEnv(models, *store, *catalog, nullptr,
                                          "crash-test-key-0123456", &env);
      ASSERT_OK(opened);
      std::thread work([&] {
        (void)(rebuild ? (*opened)->Rebuild(RebuildOptions{})
                       : (*opened)->CatchUp());
      });
      if (run == 8) {
        work.join();
      } else {
        std::this_thread::sleep_for(
            std::chrono::microseconds(static_cast<int64_t>(
                rng() % static_cast<uint64_t>(span.count() + 1))));
      }
      env.PowerCut();
      if (work.joinable()) work.join();
    }  // closing fails: nothing reaches the disk any more
    lost += env.Restore();
    auto resumed = ReadModels::Open(models, *store, *catalog, nullptr,
                                    "crash-test-key-0123456");
    ASSERT_OK(resumed);
    const uint64_t checkpoint = (*resumed)->Health().position;
    if (run == 8) {
      EXPECT_EQ(checkpoint, end);
    }
    EXPECT_TRUE(checkpoint == middle || (rebuild && checkpoint == end))
        << "run " << run << ": checkpoint " << checkpoint;
    ASSERT_OK((*resumed)->CatchUp());
    auto got = (*resumed)->Dump();
    ASSERT_OK(got);
    ASSERT_EQ(got->size(), expected.size()) << "run " << run;
    EXPECT_TRUE(*got == expected)
        << "run " << run << ": cut at checkpoint " << checkpoint;
  }
  std::cout << lost << " unsynced bytes lost in all\n";
  EXPECT_GT(lost, 0u);  // the cuts lost something: they were not idle
}

// Opened on a disk that is already full, the read models are served as
// they are (a read-only open), say they wait for space, and once there is
// room open writable by themselves and catch up.
TEST(ProjectionCrashTest, ModelsOpenedOnAFullDiskWaitForSpaceThenCatchUp) {
  testing::TempDir dir;
  const std::string log = dir.path() + "/log";
  const std::string half_log = dir.path() + "/half-log";
  auto catalog = domain::EventCatalog::Load();
  ASSERT_OK(catalog);
  ASSERT_NO_FATAL_FAILURE(Seed(log, *catalog, 40));
  std::filesystem::copy(log, half_log);
  ASSERT_NO_FATAL_FAILURE(Seed(log, *catalog, 40, "more-"));
  Options ro;
  ro.read_only = true;
  ro.create_if_missing = false;
  auto half = testing::OpenStore(half_log, ro);
  auto store = testing::OpenStore(log, ro);
  const std::string models = dir.path() + "/models";
  testing::FaultyDiskEnv env;
  {
    auto first = internal::OpenWithEnv(models, *half, *catalog, nullptr,
                                       "crash-test-key-0123456", &env);
    ASSERT_OK(first);
    ASSERT_OK((*first)->CatchUp());
  }
  const uint64_t middle = half->committed_position().value();
  env.full = true;
  auto opened = internal::OpenWithEnv(models, *store, *catalog, nullptr,
                                      "crash-test-key-0123456", &env);
  ASSERT_OK(opened);
  ReadModels& m = **opened;
  EXPECT_FALSE(m.Health().healthy);
  EXPECT_NE(m.Health().error.find("disk is full"), std::string::npos);
  EXPECT_EQ(m.Health().position, middle);
  auto before = m.Dump();
  ASSERT_OK(before);
  EXPECT_FALSE(before->empty());
  m.Start();
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  EXPECT_FALSE(m.Health().healthy);
  ASSERT_OK(m.Dump());  // reads go on while it tries
  env.full = false;
  const uint64_t end = store->committed_position().value();
  testing::WaitFor([&] { return m.Health().position >= end; });
  EXPECT_TRUE(m.Health().healthy) << m.Health().error;
  EXPECT_EQ(m.Health().position, end);
  m.Stop();
}

}  // namespace
}  // namespace caseledger::projections
