// The key store: KEK files, data keys created once and kept, erasure that
// leaves no key bytes in any file, the destroyed list applied to a restored
// copy, and a rotation cut short by a crash.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <rocksdb/db.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>

#include "caseledger/keys/keys.h"
#include "engine/keys/src/open_with_env.h"
#include "tests/support/power_cut_env.h"
#include "tests/support/test_support.h"

namespace caseledger::keys {
namespace {

namespace fs = std::filesystem;
using ::caseledger::testing::IsOk;
using ::caseledger::testing::TempDir;

std::string KeyBytes(const SecretKey& k) {
  return std::string(reinterpret_cast<const char*>(k.data()), kKeyBytes);
}

// Every file under `dir` whose bytes contain `needle`.
std::vector<std::string> FilesContaining(const std::string& dir,
                                         const std::string& needle) {
  std::vector<std::string> out;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    if (!e.is_regular_file()) continue;
    std::ifstream in(e.path(), std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)),
                      std::istreambuf_iterator<char>());
    if (bytes.find(needle) != std::string::npos) {
      out.push_back(e.path().string());
    }
  }
  return out;
}

// The wrapped form of (case, scope) as stored, read with RocksDB directly
// (a read-only open takes no lock).
std::string WrappedBytes(const std::string& dir, const std::string& case_id,
                         const std::string& scope) {
  rocksdb::DB* raw = nullptr;
  rocksdb::Options o;
  EXPECT_TRUE(rocksdb::DB::OpenForReadOnly(o, dir, &raw).ok());
  std::unique_ptr<rocksdb::DB> db(raw);
  std::string name = "k" + case_id;
  name.push_back('\0');
  name += scope;
  std::string v;
  EXPECT_TRUE(db->Get(rocksdb::ReadOptions(), name, &v).ok());
  return v;
}

class KeyStoreTest : public ::testing::Test {
 protected:
  std::unique_ptr<KeyStore> Open(
      std::shared_ptr<const Kek> kek,
      std::vector<std::shared_ptr<const Kek>> older = {},
      Status* status = nullptr) {
    std::unique_ptr<KeyStore> store;
    Status s = KeyStore::Open(options_, dir_, std::move(kek), std::move(older),
                              &store);
    if (status) {
      *status = s;
    } else {
      EXPECT_THAT(s, IsOk());
    }
    return store;
  }

  std::shared_ptr<const SecretKey> Key(KeyStore& ks, const std::string& case_id,
                                       const std::string& scope) {
    auto got = ks.GetOrCreate(case_id, {scope});
    EXPECT_THAT(got, IsOk());
    return got.ok() ? (*got)[0] : nullptr;
  }

  TempDir tmp_;
  std::string dir_ = tmp_.path() + "/keys";
  KeyStoreOptions options_ = [this] {
    KeyStoreOptions o;
    o.destroyed_list = tmp_.path() + "/destroyed-keys";
    return o;
  }();
  std::shared_ptr<const Kek> kek_ = Kek::Generate();
};

TEST(KekTest, FileRoundTripsAndIsRefusedWhenOthersMayReadIt) {
  TempDir tmp;
  const std::string path = tmp.path() + "/kek";
  auto made = Kek::CreateFile(path);
  ASSERT_THAT(made, IsOk());
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  auto read = Kek::ReadFile(path);
  ASSERT_THAT(read, IsOk());
  EXPECT_EQ((*read)->id(), (*made)->id());
  EXPECT_EQ(KeyBytes((*read)->key()), KeyBytes((*made)->key()));
  EXPECT_EQ((*made)->id().size(), 16u);

  // Never overwritten.
  EXPECT_TRUE(Kek::CreateFile(path).status().IsAlreadyExists());

  ASSERT_EQ(::chmod(path.c_str(), 0640), 0);
  auto refused = Kek::ReadFile(path);
  EXPECT_TRUE(refused.status().IsPermissionDenied());
  EXPECT_THAT(refused.status().message(), ::testing::HasSubstr("0640"));
  ASSERT_EQ(::chmod(path.c_str(), 0604), 0);
  EXPECT_TRUE(Kek::ReadFile(path).status().IsPermissionDenied());

  EXPECT_TRUE(Kek::ReadFile(tmp.path() + "/none").status().IsNotFound());
  EXPECT_TRUE(Kek::FromText("abc", "test").status().IsInvalidArgument());
  EXPECT_TRUE(Kek::FromText(std::string(63, 'a') + "g", "test")
                  .status()
                  .IsInvalidArgument());
  auto text = Kek::FromText(std::string(64, 'a') + "\n", "test");
  ASSERT_THAT(text, IsOk());
  EXPECT_EQ((*text)->key().data()[0], 0xaa);
}

// (The environment is changed only here, before any thread reads it.)
// NOLINTBEGIN(concurrency-mt-unsafe)
TEST(KekTest, LoadKekSaysWhereToGetOne) {
  ::unsetenv("CREDENTIALS_DIRECTORY");
  ::unsetenv("CASELEDGER_KEK");
  auto none = LoadKek("");
  EXPECT_TRUE(none.status().IsNotFound());
  EXPECT_THAT(none.status().message(), ::testing::HasSubstr("--kek-file"));
  ::setenv("CASELEDGER_KEK", std::string(64, '1').c_str(), 1);
  auto env = LoadKek("");
  ::unsetenv("CASELEDGER_KEK");
  ASSERT_THAT(env, IsOk());
  EXPECT_EQ((*env)->key().data()[31], 0x11);
}
// NOLINTEND(concurrency-mt-unsafe)

TEST_F(KeyStoreTest, KeysAreCreatedOnceAndKeptAcrossReopen) {
  std::string case_key, person_key;
  {
    auto ks = Open(kek_);
    auto both = ks->GetOrCreate("case-1", {Scope::Case(), Scope::Person("p1")});
    ASSERT_THAT(both, IsOk());
    case_key = KeyBytes(*(*both)[0]);
    person_key = KeyBytes(*(*both)[1]);
    EXPECT_NE(case_key, person_key);
    EXPECT_EQ(KeyBytes(*Key(*ks, "case-1", Scope::Case())), case_key);
    EXPECT_NE(KeyBytes(*Key(*ks, "case-2", Scope::Case())), case_key);
    EXPECT_TRUE(ks->Get("case-3", Scope::Case()).status().IsNotFound());
  }
  auto ks = Open(kek_);
  auto again = ks->Get("case-1", Scope::Case());
  ASSERT_THAT(again, IsOk());
  EXPECT_EQ(KeyBytes(**again), case_key);
  EXPECT_EQ(KeyBytes(*Key(*ks, "case-1", Scope::Person("p1"))), person_key);
  // The key bytes themselves are never written anywhere.
  EXPECT_THAT(FilesContaining(tmp_.path(), case_key), ::testing::IsEmpty());
}

// An erasure's plan outlives the process (it is how a crash between the
// erasure's append and its Destroy is finished), until dropped; it leaves
// the keys alone, and the keys' iteration (rotation, counts) ignores it.
TEST_F(KeyStoreTest, PlannedErasuresAreDurableUntilDropped) {
  const KeyStore::PlannedErasure a{"case-1", "*", "event-a"};
  const KeyStore::PlannedErasure b{"case-2", Scope::Person("p1"), "event-b"};
  {
    auto ks = Open(kek_);
    ASSERT_THAT(ks->GetOrCreate("case-1", {Scope::Case()}), IsOk());
    ASSERT_THAT(ks->PlanErasure(a), IsOk());
    ASSERT_THAT(ks->PlanErasure(b), IsOk());
    EXPECT_TRUE(ks->PlanErasure({"case\t1", "*", "e"}).IsInvalidArgument());
  }
  auto ks = Open(kek_);
  auto plans = ks->PlannedErasures();
  ASSERT_THAT(plans, IsOk());
  EXPECT_EQ(*plans, (std::vector<KeyStore::PlannedErasure>{a, b}));
  EXPECT_FALSE(ks->IsDestroyed("case-1", Scope::Case()));
  auto counts = ks->CountByKek();
  ASSERT_THAT(counts, IsOk());
  ASSERT_EQ(counts->size(), 1u);
  EXPECT_EQ((*counts)[0].second, 1u);
  ASSERT_THAT(ks->DropPlannedErasure(a), IsOk());
  plans = ks->PlannedErasures();
  ASSERT_THAT(plans, IsOk());
  EXPECT_EQ(*plans, (std::vector<KeyStore::PlannedErasure>{b}));
}

// The power cut, as tests/support/power_cut_env.h makes it: every byte not
// synced is gone. A key is made and destroyed, 39 more made (each returned
// to its caller, who would seal with it), a plan recorded; then the power
// goes.
struct AfterPowerCut {
  size_t made = 0;
  size_t kept = 0;  // present after the reboot, with the same bytes
  bool plan_kept = false;
  bool destroyed_stays = false;
  uint64_t bytes_lost = 0;
};

class KeyStorePowerTest : public KeyStoreTest {
 protected:
  AfterPowerCut CutPower(bool sync) {
    AfterPowerCut out;
    testing::PowerCutEnv env;
    KeyStoreOptions o = options_;
    o.sync = sync;
    std::map<std::string, std::string> made;
    const KeyStore::PlannedErasure plan{"case-1", "*", "event-1"};
    {
      std::unique_ptr<KeyStore> ks;
      Status s = internal::OpenWithEnv(o, dir_, &env, kek_, {}, &ks);
      EXPECT_THAT(s, IsOk());
      if (!s.ok()) return out;
      // (Destroying flushes and compacts the store, syncing all before it:
      // the keys made after it are what a cut can take.)
      EXPECT_NE(Key(*ks, "case-0", Scope::Case()), nullptr);
      EXPECT_THAT(ks->Destroy("case-0", Scope::Case(), "erasure e-0"), IsOk());
      for (int i = 1; i < 40; ++i) {
        const std::string id = "case-" + std::to_string(i);
        auto k = Key(*ks, id, Scope::Case());
        if (k) made[id] = KeyBytes(*k);
      }
      EXPECT_THAT(ks->PlanErasure(plan), IsOk());
      env.PowerCut();
    }  // the process dies with the power
    out.bytes_lost = env.Restore();
    out.made = made.size();
    auto ks = Open(kek_);
    if (!ks) return out;
    for (const auto& [id, bytes] : made) {
      auto got = ks->Get(id, Scope::Case());
      if (got.ok() && *got && KeyBytes(**got) == bytes) ++out.kept;
    }
    auto plans = ks->PlannedErasures();
    out.plan_kept = plans.ok() && plans->size() == 1 && (*plans)[0] == plan;
    auto erased = ks->Get("case-0", Scope::Case());
    out.destroyed_stays = erased.ok() && *erased == nullptr;
    return out;
  }
};

TEST_F(KeyStorePowerTest, EveryKeyHandedOutSurvivesAPowerCut) {
  const AfterPowerCut r = CutPower(/*sync=*/true);
  EXPECT_EQ(r.made, 39u);
  EXPECT_EQ(r.kept, r.made);
  EXPECT_TRUE(r.plan_kept);
  EXPECT_TRUE(r.destroyed_stays);
}

// The same run without syncing loses keys that were handed out, so the
// test above can fail: it tests the sync, not the page cache.
TEST_F(KeyStorePowerTest, WithoutSyncingAPowerCutLosesKeys) {
  const AfterPowerCut r = CutPower(/*sync=*/false);
  EXPECT_GT(r.bytes_lost, 0u);
  EXPECT_LT(r.kept, r.made);
}

TEST_F(KeyStoreTest, AnotherKekIsRefusedAtOpen) {
  {
    auto ks = Open(kek_);
    Key(*ks, "case-1", Scope::Case());
  }
  Status s;
  auto ks = Open(Kek::Generate(), {}, &s);
  EXPECT_TRUE(s.IsFailedPrecondition()) << s.ToString();
  EXPECT_THAT(s.message(), ::testing::HasSubstr(kek_->id()));
}

TEST_F(KeyStoreTest, AWrappedKeyMovedToAnotherCaseDoesNotUnwrap) {
  {
    auto ks = Open(kek_);
    Key(*ks, "case-1", Scope::Case());
  }
  const std::string wrapped = WrappedBytes(dir_, "case-1", Scope::Case());
  {
    rocksdb::DB* raw = nullptr;
    ASSERT_TRUE(rocksdb::DB::Open(rocksdb::Options(), dir_, &raw).ok());
    std::unique_ptr<rocksdb::DB> db(raw);
    std::string name = "kcase-2";
    name.push_back('\0');
    name += Scope::Case();
    ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), name, wrapped).ok());
  }
  auto ks = Open(kek_);
  EXPECT_TRUE(ks->Get("case-2", Scope::Case()).status().IsCorruption());
  EXPECT_THAT(ks->Get("case-1", Scope::Case()), IsOk());
}

TEST_F(KeyStoreTest, DestroyLeavesNoWrappedKeyInAnyFile) {
  auto ks = Open(kek_);
  Key(*ks, "case-1", Scope::Case());
  Key(*ks, "case-1", Scope::Person("p1"));
  Key(*ks, "case-1", Scope::Person("p2"));
  const std::string p1 = WrappedBytes(dir_, "case-1", Scope::Person("p1"));
  const std::string p2 = WrappedBytes(dir_, "case-1", Scope::Person("p2"));
  // The search finds it while it is there (in the write-ahead log).
  ASSERT_THAT(FilesContaining(dir_, p1), ::testing::Not(::testing::IsEmpty()));

  ASSERT_THAT(ks->Destroy("case-1", Scope::Person("p1"), "erasure e-1"),
              IsOk());
  EXPECT_THAT(FilesContaining(tmp_.path(), p1), ::testing::IsEmpty());
  EXPECT_THAT(FilesContaining(dir_, p2), ::testing::Not(::testing::IsEmpty()));

  auto gone = ks->Get("case-1", Scope::Person("p1"));
  ASSERT_THAT(gone, IsOk());
  EXPECT_EQ(*gone, nullptr);
  EXPECT_TRUE(ks->IsDestroyed("case-1", Scope::Person("p1")));
  EXPECT_FALSE(ks->IsDestroyed("case-1", Scope::Person("p2")));
  auto refused = ks->GetOrCreate("case-1", {Scope::Person("p1")});
  EXPECT_TRUE(refused.status().IsFailedPrecondition());
  EXPECT_THAT(refused.status().message(), ::testing::HasSubstr("erased"));
  // Idempotent.
  EXPECT_THAT(ks->Destroy("case-1", Scope::Person("p1"), "again"), IsOk());

  ks.reset();
  ks = Open(kek_);
  EXPECT_EQ(*ks->Get("case-1", Scope::Person("p1")), nullptr);
  EXPECT_NE(*ks->Get("case-1", Scope::Person("p2")), nullptr);
  auto list = ks->DestroyedKeys();
  ASSERT_THAT(list, IsOk());
  ASSERT_EQ(list->size(), 2u);
  EXPECT_EQ((*list)[0].scope, Scope::Person("p1"));
  EXPECT_EQ((*list)[0].reason, "erasure e-1");
}

TEST_F(KeyStoreTest, DestroyingACaseDestroysEveryKeyAndRefusesNewOnes) {
  auto ks = Open(kek_);
  Key(*ks, "case-1", Scope::Case());
  Key(*ks, "case-1", Scope::Person("p1"));
  Key(*ks, "case-10", Scope::Case());
  const std::string c = WrappedBytes(dir_, "case-1", Scope::Case());
  const std::string p = WrappedBytes(dir_, "case-1", Scope::Person("p1"));
  ASSERT_THAT(ks->Destroy("case-1", "*", "retention"), IsOk());
  EXPECT_EQ(*ks->Get("case-1", Scope::Case()), nullptr);
  EXPECT_EQ(*ks->Get("case-1", Scope::Person("p1")), nullptr);
  EXPECT_TRUE(ks->GetOrCreate("case-1", {Scope::Person("p9")})
                  .status()
                  .IsFailedPrecondition());
  EXPECT_NE(*ks->Get("case-10", Scope::Case()), nullptr);
  EXPECT_THAT(FilesContaining(tmp_.path(), c), ::testing::IsEmpty());
  EXPECT_THAT(FilesContaining(tmp_.path(), p), ::testing::IsEmpty());
}

TEST_F(KeyStoreTest, ARestoredBackupLosesWhatWasDestroyedAfterIt) {
  const std::string backup = tmp_.path() + "/backup";
  std::string wrapped;
  {
    auto ks = Open(kek_);
    Key(*ks, "case-1", Scope::Person("p1"));
    Key(*ks, "case-1", Scope::Case());
    ASSERT_THAT(ks->Backup(backup), IsOk());
    wrapped = WrappedBytes(dir_, "case-1", Scope::Person("p1"));
    ASSERT_THAT(ks->Destroy("case-1", Scope::Person("p1"), "erasure"), IsOk());
  }
  // The backup still holds it (wrapped): it was taken before.
  ASSERT_THAT(FilesContaining(backup, wrapped),
              ::testing::Not(::testing::IsEmpty()));
  // Restored in place of the store, opened with the same destroyed list.
  fs::remove_all(dir_);
  fs::copy(backup, dir_, fs::copy_options::recursive);
  auto ks = Open(kek_);
  EXPECT_EQ(*ks->Get("case-1", Scope::Person("p1")), nullptr);
  EXPECT_NE(*ks->Get("case-1", Scope::Case()), nullptr);
  EXPECT_THAT(FilesContaining(dir_, wrapped), ::testing::IsEmpty());
}

TEST_F(KeyStoreTest, ARotationCutShortFinishesAndTheOldKekOpensTheRest) {
  std::map<std::string, std::string> before;
  {
    auto ks = Open(kek_);
    for (int i = 0; i < 600; ++i) {
      const std::string c = "case-" + std::to_string(i);
      before[c] = KeyBytes(*Key(*ks, c, Scope::Case()));
    }
  }
  auto new_kek = Kek::Generate();
  {
    auto ks = Open(kek_);
    // A crash after the first batch of 256.
    auto cut = ks->Rotate(new_kek, 256, [](uint64_t done) {
      return done >= 256 ? Status::IOError("simulated crash") : Status::OK();
    });
    EXPECT_TRUE(cut.status().IsIOError());
  }
  {
    // The old KEK alone still opens every key not yet re-wrapped; the
    // re-wrapped ones need the new one.
    auto ks = Open(kek_);
    int old_opens = 0, needs_new = 0;
    for (const auto& [c, bytes] : before) {
      auto k = ks->Get(c, Scope::Case());
      if (k.ok()) {
        EXPECT_EQ(KeyBytes(**k), bytes);
        ++old_opens;
      } else {
        EXPECT_TRUE(k.status().IsFailedPrecondition()) << k.status().ToString();
        ++needs_new;
      }
    }
    EXPECT_EQ(needs_new, 256);
    EXPECT_EQ(old_opens, 600 - 256);
  }
  {
    auto ks = Open(kek_, {new_kek});
    auto done = ks->Rotate(new_kek);
    ASSERT_THAT(done, IsOk());
    EXPECT_EQ(done->rewrapped, 600u - 256u);
    EXPECT_EQ(done->already, 256u);
    auto counts = ks->CountByKek();
    ASSERT_THAT(counts, IsOk());
    ASSERT_EQ(counts->size(), 1u);
    EXPECT_EQ((*counts)[0].first, new_kek->id());
    EXPECT_EQ((*counts)[0].second, 600u);
  }
  // Finished: the old KEK is refused, the new one alone opens everything.
  Status s;
  Open(kek_, {}, &s);
  EXPECT_TRUE(s.IsFailedPrecondition()) << s.ToString();
  auto ks = Open(new_kek);
  for (const auto& [c, bytes] : before) {
    auto k = ks->Get(c, Scope::Case());
    ASSERT_THAT(k, IsOk());
    EXPECT_EQ(KeyBytes(**k), bytes);
  }
}

// A replica's key store takes its primary's wrapped keys as they are, and
// opens them with the same KEK.
TEST_F(KeyStoreTest, AReplicaTakesWrappedKeysAndOpensThemWithTheSameKek) {
  auto primary = Open(kek_);
  auto case_key = Key(*primary, "case-1", Scope::Case());
  auto person_key = Key(*primary, "case-1", Scope::Person("p1"));
  Key(*primary, "case-10", Scope::Case());  // another case, same prefix
  auto shipped = primary->Wrapped("case-1");
  ASSERT_THAT(shipped, IsOk());
  ASSERT_EQ(shipped->size(), 2u);
  std::vector<WrappedKey> all;
  ASSERT_THAT(primary->ForEachWrapped([&](const WrappedKey& k) {
    all.push_back(k);
    return Status::OK();
  }),
              IsOk());
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(all[0], shipped->at(0));
  EXPECT_EQ(all[2].case_id, "case-10");
  EXPECT_EQ(primary->kek_id(), kek_->id());

  TempDir other;
  KeyStoreOptions ro;
  ro.destroyed_list = other.path() + "/destroyed-keys";
  std::unique_ptr<KeyStore> replica;
  ASSERT_THAT(KeyStore::Open(ro, other.path() + "/keys", kek_, {}, &replica),
              IsOk());
  EXPECT_TRUE(replica->Get("case-1", Scope::Case()).status().IsNotFound());
  for (const WrappedKey& k : *shipped) {
    ASSERT_THAT(replica->PutWrapped({k}), IsOk());
    ASSERT_THAT(replica->PutWrapped({k}), IsOk());  // again: unchanged
  }
  auto got = replica->Get("case-1", Scope::Case());
  ASSERT_THAT(got, IsOk());
  EXPECT_EQ(0, std::memcmp((*got)->data(), case_key->data(), kKeyBytes));
  got = replica->Get("case-1", Scope::Person("p1"));
  ASSERT_THAT(got, IsOk());
  EXPECT_EQ(0, std::memcmp((*got)->data(), person_key->data(), kKeyBytes));
  auto replica_has = replica->Wrapped("case-1");
  ASSERT_THAT(replica_has, IsOk());
  EXPECT_EQ(*replica_has, *shipped);

  // Another key for a scope already held is refused; a key bound to
  // another case does not unwrap; another KEK's key names that KEK.
  KeyStoreOptions o3;
  TempDir third;
  o3.destroyed_list = third.path() + "/destroyed-keys";
  std::unique_ptr<KeyStore> elsewhere;
  ASSERT_THAT(KeyStore::Open(o3, third.path() + "/keys", kek_, {}, &elsewhere),
              IsOk());
  Key(*elsewhere, "case-1", Scope::Case());
  auto different = elsewhere->Wrapped("case-1");
  ASSERT_THAT(different, IsOk());
  EXPECT_TRUE(replica->PutWrapped({different->at(0)}).IsCorruption());
  // Within one batch too, and then nothing of the batch is stored.
  auto fifth = elsewhere->GetOrCreate("case-5", {Scope::Case()});
  ASSERT_THAT(fifth, IsOk());
  WrappedKey other_fifth = elsewhere->Wrapped("case-5")->at(0);
  auto mine5 = primary->GetOrCreate("case-5", {Scope::Case()});
  ASSERT_THAT(mine5, IsOk());
  WrappedKey my_fifth = primary->Wrapped("case-5")->at(0);
  EXPECT_TRUE(replica->PutWrapped({my_fifth, other_fifth}).IsCorruption());
  EXPECT_TRUE(replica->Get("case-5", Scope::Case()).status().IsNotFound());
  WrappedKey moved = shipped->at(0);
  moved.case_id = "case-2";
  EXPECT_TRUE(replica->PutWrapped({moved}).IsCorruption());
  EXPECT_TRUE(replica->Get("case-2", moved.scope).status().IsNotFound());
  TempDir fourth;
  KeyStoreOptions o4;
  o4.destroyed_list = fourth.path() + "/destroyed-keys";
  std::unique_ptr<KeyStore> foreign;
  auto other_kek = Kek::Generate();
  ASSERT_THAT(
      KeyStore::Open(o4, fourth.path() + "/keys", other_kek, {}, &foreign),
      IsOk());
  Key(*foreign, "case-3", Scope::Case());
  Status s = replica->PutWrapped({foreign->Wrapped("case-3")->at(0)});
  EXPECT_TRUE(s.IsFailedPrecondition()) << s.ToString();
  EXPECT_THAT(s.message(), ::testing::HasSubstr(other_kek->id()));

  // A destroyed key is neither listed nor taken back.
  ASSERT_THAT(replica->Destroy("case-1", Scope::Person("p1"), "ev-1"), IsOk());
  replica_has = replica->Wrapped("case-1");
  ASSERT_THAT(replica_has, IsOk());
  ASSERT_EQ(replica_has->size(), 1u);
  EXPECT_EQ(replica_has->at(0).scope, Scope::Case());
  ASSERT_THAT(replica->PutWrapped(*shipped), IsOk());  // both at once
  got = replica->Get("case-1", Scope::Person("p1"));
  ASSERT_THAT(got, IsOk());
  EXPECT_EQ(*got, nullptr);
}

}  // namespace
}  // namespace caseledger::keys
