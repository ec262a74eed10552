// Replication through a three-server JetStream cluster that the test starts:
// the stream holds the log in order with no duplicates across restarts, a
// follower's log is the primary's byte for byte, a forged record in the
// stream stops a follower, and a publisher refuses a stream that is not its
// log.
#include "caseledger/replicate/replication.h"

#include <nats/nats.h>

#include <atomic>
#include <cstring>
#include <future>
#include <nlohmann/json.hpp>
#include <thread>

#include "tests/replicate/nats_cluster.h"
#include "tests/support/test_support.h"

namespace caseledger::replicate {
namespace {

using testing::MakeEvent;
using namespace std::chrono_literals;

std::string Describe(const Publisher& p) {
  const PublisherStats s = p.stats();
  return "stored " + std::to_string(s.stored_position) + " at sequence " +
         std::to_string(s.stream_sequence) + ", published " +
         std::to_string(s.published) + ", failures " +
         std::to_string(s.failures) + ", health " + p.Health().ToString();
}

class ReplicationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!testing::NatsCluster::Available()) {
      GTEST_SKIP() << "nats-server is not installed (scripts/setup.sh --test)";
    }
    cluster_ = std::make_unique<testing::NatsCluster>(dir_.path());
    ASSERT_TRUE(cluster_->Start());
    primary_ = testing::OpenStore(dir_.path() + "/primary");
    ASSERT_NE(primary_, nullptr);
  }

  ReplicationConfig Config(const std::string& node) const {
    ReplicationConfig c;
    c.servers = cluster_->urls();
    c.node = node;
    c.timeout = 5s;
    return c;
  }

  void Append(EventStore& store, int n, const std::string& prefix = "case-") {
    for (int i = 0; i < n; ++i) {
      ASSERT_OK(store.Append(prefix + std::to_string(i % 7),
                             ExpectedVersion::Any(), {MakeEvent()}));
    }
  }

  // Connects to the cluster directly, as an administrator could.
  struct Direct {
    natsConnection* nc = nullptr;
    jsCtx* js = nullptr;
    ~Direct() {
      jsCtx_Destroy(js);
      natsConnection_Destroy(nc);
    }
  };
  std::unique_ptr<Direct> Connect() {
    auto d = std::make_unique<Direct>();
    std::string urls;
    for (const std::string& u : cluster_->urls()) {
      urls += (urls.empty() ? "" : ",") + u;
    }
    EXPECT_EQ(natsConnection_ConnectTo(&d->nc, urls.c_str()), NATS_OK);
    EXPECT_EQ(natsConnection_JetStream(&d->js, d->nc, nullptr), NATS_OK);
    return d;
  }

  uint64_t StreamMessages() {
    auto d = Connect();
    jsStreamInfo* si = nullptr;
    jsErrCode jerr = static_cast<jsErrCode>(0);
    if (js_GetStreamInfo(&si, d->js, "CASELEDGER", nullptr, &jerr) != NATS_OK) {
      return 0;
    }
    uint64_t n = si->State.Msgs;
    EXPECT_EQ(si->State.LastSeq, n);  // nothing deleted, no gaps
    jsStreamInfo_Destroy(si);
    return n;
  }

  // A key store of its own under the test's directory.
  std::unique_ptr<keys::KeyStore> OpenKeys(
      const std::string& name, std::shared_ptr<const keys::Kek> kek) {
    keys::KeyStoreOptions o;
    o.destroyed_list = dir_.path() + "/" + name + ".destroyed";
    std::unique_ptr<keys::KeyStore> ks;
    EXPECT_OK(keys::KeyStore::Open(o, dir_.path() + "/" + name, std::move(kek),
                                   {}, &ks));
    return ks;
  }

  // A follower with a store and a key store of its own, named `node`.
  struct KeyedFollower {
    std::unique_ptr<EventStore> store;
    std::unique_ptr<keys::KeyStore> keys;
    std::unique_ptr<Follower> follower;
  };
  KeyedFollower StartKeyedFollower(
      const std::string& node, std::shared_ptr<const keys::Kek> kek,
      const std::function<std::optional<std::string>(const RecordedEvent&)>&
          erased_scope) {
    KeyedFollower f;
    f.store = testing::OpenStore(dir_.path() + "/" + node);
    f.keys = OpenKeys(node + "-keys", std::move(kek));
    auto started = Follower::Start(*f.store, Config(node),
                                   dir_.path() + "/" + node + ".ckpt",
                                   {f.keys.get(), erased_scope});
    EXPECT_OK(started);
    if (started.ok()) f.follower = std::move(*started);
    return f;
  }

  testing::TempDir dir_;
  std::unique_ptr<testing::NatsCluster> cluster_;
  std::unique_ptr<EventStore> primary_;
};

TEST_F(ReplicationTest, AFollowersLogIsThePrimarysByteForByte) {
  Append(*primary_, 150);  // before publishing starts: published from 1
  auto publisher = Publisher::Start(*primary_, Config("primary"));
  ASSERT_OK(publisher);
  // ... and while it runs, from several writers.
  std::vector<std::thread> writers;
  for (int t = 0; t < 3; ++t) {
    writers.emplace_back(
        [&, t] { Append(*primary_, 100, "w" + std::to_string(t) + "-"); });
  }
  for (auto& w : writers) w.join();
  const LogHead head = primary_->Head();
  ASSERT_EQ(head.position.value(), 450u);
  ASSERT_TRUE((*publisher)->WaitStored(head.position, 60s))
      << (*publisher)->Health().ToString();
  EXPECT_OK((*publisher)->Health());
  auto stats = (*publisher)->stats();
  EXPECT_EQ(stats.stored_position, 450u);
  EXPECT_EQ(stats.stream_sequence, 450u);
  EXPECT_EQ(StreamMessages(), 450u);

  auto replica = testing::OpenStore(dir_.path() + "/replica");
  auto follower = Follower::Start(*replica, Config("f1"),
                                  dir_.path() + "/replica.checkpoint");
  ASSERT_OK(follower);
  ASSERT_TRUE((*follower)->WaitApplied(head.position, 60s))
      << (*follower)->Health().ToString();
  EXPECT_OK((*follower)->Health());
  EXPECT_EQ(replica->Head().position, head.position);
  EXPECT_EQ(replica->Head().log_hash, head.log_hash);
  EXPECT_EQ(testing::StoredRecords(*replica),
            testing::StoredRecords(*primary_));
  auto verify = replica->Verify(std::nullopt);
  ASSERT_OK(verify);
  EXPECT_TRUE(verify->ok);

  // Later appends follow.
  Append(*primary_, 20);
  ASSERT_TRUE((*follower)->WaitApplied(GlobalPosition(470), 60s));
  EXPECT_EQ(replica->Head().log_hash, primary_->Head().log_hash);
}

TEST_F(ReplicationTest, RestartsNeitherDuplicateNorLoseARecord) {
  Append(*primary_, 50);
  auto replica = testing::OpenStore(dir_.path() + "/replica");
  const std::string checkpoint = dir_.path() + "/replica.checkpoint";
  {
    auto publisher = Publisher::Start(*primary_, Config("primary"));
    ASSERT_OK(publisher);
    ASSERT_TRUE((*publisher)->WaitStored(GlobalPosition(50), 60s));
    auto follower = Follower::Start(*replica, Config("f1"), checkpoint);
    ASSERT_OK(follower);
    ASSERT_TRUE((*follower)->WaitApplied(GlobalPosition(50), 60s));
  }
  // Appends while neither runs; then both start again.
  Append(*primary_, 30);
  auto publisher = Publisher::Start(*primary_, Config("primary"));
  ASSERT_OK(publisher);
  ASSERT_TRUE((*publisher)->WaitStored(GlobalPosition(80), 60s));
  EXPECT_EQ(StreamMessages(), 80u);
  auto follower = Follower::Start(*replica, Config("f1"), checkpoint);
  ASSERT_OK(follower);
  ASSERT_TRUE((*follower)->WaitApplied(GlobalPosition(80), 60s));
  // Resumed from its checkpoint: nothing was delivered twice. (The counts
  // move just after the log does.)
  ASSERT_TRUE(
      testing::WaitFor([&] { return (*follower)->stats().applied == 30; }));
  EXPECT_EQ((*follower)->stats().redelivered, 0u);

  // A lost checkpoint (or a store restored from a backup) costs no
  // replay: the follower finds its head in the stream.
  (*follower)->Stop();
  std::filesystem::remove(checkpoint);
  Append(*primary_, 5);
  auto resumed = Follower::Start(*replica, Config("f1"), checkpoint);
  ASSERT_OK(resumed);
  ASSERT_TRUE((*resumed)->WaitApplied(GlobalPosition(85), 60s));
  ASSERT_TRUE(
      testing::WaitFor([&] { return (*resumed)->stats().applied == 5; }));
  EXPECT_EQ((*resumed)->stats().redelivered, 0u);
  EXPECT_OK((*resumed)->Health());
  EXPECT_EQ(replica->Head().log_hash, primary_->Head().log_hash);

  // A head the stream does not hold as it is here: replayed from the
  // start, every record compared (and this one refused).
  (*resumed)->Stop();
  std::filesystem::remove(checkpoint);
  auto diverged = testing::OpenStore(dir_.path() + "/diverged");
  Append(*diverged, 3);
  auto replay = Follower::Start(*diverged, Config("f2"),
                                dir_.path() + "/diverged.checkpoint");
  ASSERT_OK(replay);
  ASSERT_TRUE(
      testing::WaitFor([&] { return (*replay)->Health().IsCorruption(); }));
}

TEST_F(ReplicationTest, AForgedRecordInTheStreamStopsTheFollower) {
  Append(*primary_, 40);
  auto publisher = Publisher::Start(*primary_, Config("primary"));
  ASSERT_OK(publisher);
  ASSERT_TRUE((*publisher)->WaitStored(GlobalPosition(40), 60s));
  (*publisher)->Stop();

  // Someone with write access to the stream appends record 41 with its
  // payload changed (its hashes left as the primary computed them).
  Append(*primary_, 1);
  auto next = primary_->ReadAll(GlobalPosition(40), 1);
  ASSERT_OK(next);
  std::string forged = EncodeStoredRecord(next->front());
  const size_t at = forged.find(R"({"n":1})");
  ASSERT_NE(at, std::string::npos);
  forged[at + 5] = '2';
  {
    auto d = Connect();
    jsPubAck* pa = nullptr;
    jsErrCode jerr = static_cast<jsErrCode>(0);
    ASSERT_EQ(js_Publish(&pa, d->js, "caseledger.log", forged.data(),
                         static_cast<int>(forged.size()), nullptr, &jerr),
              NATS_OK);
    jsPubAck_Destroy(pa);
  }

  auto replica = testing::OpenStore(dir_.path() + "/replica");
  auto follower = Follower::Start(*replica, Config("f1"),
                                  dir_.path() + "/replica.checkpoint");
  ASSERT_OK(follower);
  ASSERT_TRUE(
      testing::WaitFor([&] { return (*follower)->Health().IsCorruption(); }));
  const Status health = (*follower)->Health();
  EXPECT_NE(health.message().find("position 41"), std::string::npos)
      << health.message();
  EXPECT_NE(health.message().find("case hash"), std::string::npos)
      << health.message();
  EXPECT_EQ(replica->Head().position.value(), 40u);

  // And the primary will not publish after a record that is not its own.
  auto again = Publisher::Start(*primary_, Config("primary"));
  ASSERT_OK(again);
  ASSERT_TRUE(
      testing::WaitFor([&] { return (*again)->Health().IsCorruption(); }));
  EXPECT_NE((*again)->Health().message().find("differs"), std::string::npos)
      << (*again)->Health().message();
}

// Which records erase keys: as the server decides it (service's
// ErasedKeyScope), for this test's records.
std::optional<std::string> ErasedScope(const RecordedEvent& e) {
  if (e.type != "PersonalDataErased") return std::nullopt;
  auto p = nlohmann::json::parse(e.payload);
  if (p.value("scope", "") == "case") return std::string("*");
  return keys::Scope::Person(p.value("person_ref", ""));
}

TEST_F(ReplicationTest,
       DataKeysTravelWithTheLogAndErasuresDestroyThemEverywhere) {
  const auto kek = keys::Kek::Generate();
  auto open_keys = [&](const std::string& name) { return OpenKeys(name, kek); };

  const std::vector<std::string> scopes = {keys::Scope::Case(),
                                           keys::Scope::Person("p1"),
                                           keys::Scope::Person("p2")};
  auto primary_keys = open_keys("primary-keys");
  for (int c = 0; c < 3; ++c) {
    ASSERT_OK(primary_keys->GetOrCreate("case-" + std::to_string(c), scopes));
  }
  Append(*primary_, 9);  // case-0 .. case-6; the first three have keys
  auto publisher = Publisher::Start(*primary_, Config("primary"),
                                    {primary_keys.get(), ErasedScope});
  ASSERT_OK(publisher);

  KeyedFollower f1 = StartKeyedFollower("f1", kek, ErasedScope);
  ASSERT_NE(f1.follower, nullptr);
  auto& replica_keys = f1.keys;
  auto* follower = &f1.follower;
  ASSERT_TRUE((*follower)->WaitApplied(GlobalPosition(9), 60s))
      << (*follower)->Health().ToString();
  auto same_key = [&](keys::KeyStore& ks, const std::string& case_id,
                      const std::string& scope) {
    auto mine = primary_keys->Get(case_id, scope);
    auto theirs = ks.Get(case_id, scope);
    return mine.ok() && theirs.ok() && *mine && *theirs &&
           std::memcmp((*mine)->data(), (*theirs)->data(), keys::kKeyBytes) ==
               0;
  };
  for (int c = 0; c < 3; ++c) {
    for (const std::string& scope : scopes) {
      EXPECT_TRUE(same_key(*replica_keys, "case-" + std::to_string(c), scope))
          << c << " " << scope;
    }
  }
  EXPECT_EQ((*publisher)->stats().keys_shipped, 9u);
  EXPECT_EQ((*follower)->stats().keys_taken, 9u);

  // Person p1 of case-0 erased, then all of case-1, as the server does
  // it: the event appended, then the keys destroyed.
  ASSERT_OK(
      primary_->Append("case-0", ExpectedVersion::Any(),
                       {MakeEvent("PersonalDataErased",
                                  R"({"scope":"person","person_ref":"p1"})")}));
  ASSERT_OK(primary_keys->Destroy("case-0", keys::Scope::Person("p1"), "e1"));
  ASSERT_OK(primary_->Append(
      "case-1", ExpectedVersion::Any(),
      {MakeEvent("PersonalDataErased", R"({"scope":"case"})")}));
  ASSERT_OK(primary_keys->Destroy("case-1", "*", "e2"));
  ASSERT_TRUE((*follower)->WaitApplied(GlobalPosition(11), 60s));
  auto destroyed = [](keys::KeyStore& ks, const std::string& case_id,
                      const std::string& scope) {
    auto k = ks.Get(case_id, scope);
    return k.ok() && *k == nullptr;
  };
  // (The keys go just after the record is applied.)
  ASSERT_TRUE(testing::WaitFor([&] {
    return replica_keys->PlannedErasures().ok() &&
           replica_keys->PlannedErasures()->empty();
  }));
  EXPECT_TRUE(destroyed(*replica_keys, "case-0", keys::Scope::Person("p1")));
  EXPECT_TRUE(same_key(*replica_keys, "case-0", keys::Scope::Case()));
  for (const std::string& scope : scopes) {
    EXPECT_TRUE(destroyed(*replica_keys, "case-1", scope)) << scope;
    EXPECT_TRUE(same_key(*replica_keys, "case-2", scope)) << scope;
  }

  // The key stream no longer holds what was erased: 9 keys less 4, and
  // the note of the KEK they are wrapped by.
  {
    auto d = Connect();
    jsStreamInfo* si = nullptr;
    jsErrCode jerr = static_cast<jsErrCode>(0);
    ASSERT_EQ(js_GetStreamInfo(&si, d->js, "CASELEDGER_KEYS", nullptr, &jerr),
              NATS_OK);
    EXPECT_EQ(si->State.Msgs, 6u);
    jsStreamInfo_Destroy(si);
  }

  // A follower started afresh takes only the keys that are left, and its
  // replay of the erasures destroys the scopes for good.
  KeyedFollower f2 = StartKeyedFollower("f2", kek, ErasedScope);
  ASSERT_NE(f2.follower, nullptr);
  auto& late = f2.store;
  auto& late_keys = f2.keys;
  auto* late_follower = &f2.follower;
  ASSERT_TRUE((*late_follower)->WaitApplied(GlobalPosition(11), 60s));
  ASSERT_TRUE(testing::WaitFor(
      [&] { return late_keys->IsDestroyed("case-1", keys::Scope::Case()); }));
  EXPECT_EQ((*late_follower)->stats().keys_taken, 5u);
  EXPECT_TRUE(destroyed(*late_keys, "case-0", keys::Scope::Person("p1")));
  EXPECT_TRUE(destroyed(*late_keys, "case-1", keys::Scope::Case()));
  EXPECT_TRUE(same_key(*late_keys, "case-2", keys::Scope::Person("p2")));
  EXPECT_EQ(late->Head().log_hash, primary_->Head().log_hash);
}

// After a KEK rotation on the primary, its publisher sends every key again
// wrapped by the new KEK: a follower given only the new KEK takes them all.
TEST_F(ReplicationTest, AfterARotationEveryKeyIsSentAgainUnderTheNewKek) {
  const auto old_kek = keys::Kek::Generate();
  auto primary_keys = OpenKeys("primary-keys", old_kek);
  const std::vector<std::string> scopes = {keys::Scope::Case(),
                                           keys::Scope::Person("p1")};
  for (int c = 0; c < 4; ++c) {
    ASSERT_OK(primary_keys->GetOrCreate("case-" + std::to_string(c), scopes));
  }
  Append(*primary_, 7);
  {
    auto publisher = Publisher::Start(*primary_, Config("primary"),
                                      {primary_keys.get(), ErasedScope});
    ASSERT_OK(publisher);
    ASSERT_TRUE((*publisher)->WaitStored(GlobalPosition(7), 60s));
    EXPECT_EQ((*publisher)->stats().keys_shipped, 8u);
  }
  const auto new_kek = keys::Kek::Generate();
  ASSERT_OK(primary_keys->Rotate(new_kek));
  Append(*primary_, 1, "case-9");  // a case without keys
  auto publisher = Publisher::Start(*primary_, Config("primary"),
                                    {primary_keys.get(), ErasedScope});
  ASSERT_OK(publisher);
  ASSERT_TRUE((*publisher)->WaitStored(GlobalPosition(8), 60s));
  EXPECT_EQ((*publisher)->stats().keys_shipped, 8u);

  KeyedFollower f = StartKeyedFollower("f1", new_kek, ErasedScope);
  ASSERT_NE(f.follower, nullptr);
  ASSERT_TRUE(f.follower->WaitApplied(GlobalPosition(8), 60s))
      << f.follower->Health().ToString();
  EXPECT_OK(f.follower->Health());
  EXPECT_EQ(f.follower->stats().keys_taken, 8u);
  for (int c = 0; c < 4; ++c) {
    for (const std::string& scope : scopes) {
      auto mine = primary_keys->Get("case-" + std::to_string(c), scope);
      auto theirs = f.keys->Get("case-" + std::to_string(c), scope);
      ASSERT_OK(mine);
      ASSERT_OK(theirs);
      EXPECT_EQ(
          0, std::memcmp((*mine)->data(), (*theirs)->data(), keys::kKeyBytes));
    }
  }
}

// A follower whose KEK is not the primary's stores no key: it says which
// KEK it lacks and keeps trying, and the log itself is not applied past
// the keys it cannot take.
TEST_F(ReplicationTest, AFollowerWithAnotherKekSaysWhichKekItLacks) {
  const auto kek = keys::Kek::Generate();
  auto primary_keys = OpenKeys("primary-keys", kek);
  ASSERT_OK(primary_keys->GetOrCreate("case-0", {keys::Scope::Case()}));
  Append(*primary_, 3);
  auto publisher = Publisher::Start(*primary_, Config("primary"),
                                    {primary_keys.get(), ErasedScope});
  ASSERT_OK(publisher);
  ASSERT_TRUE((*publisher)->WaitStored(GlobalPosition(3), 60s));

  KeyedFollower f1 =
      StartKeyedFollower("f1", keys::Kek::Generate(), ErasedScope);
  ASSERT_NE(f1.follower, nullptr);
  auto& replica = f1.store;
  auto* follower = &f1.follower;
  ASSERT_TRUE(testing::WaitFor([&] {
    return (*follower)->Health().message().find(kek->id()) != std::string::npos;
  })) << (*follower)->Health().ToString();
  EXPECT_TRUE((*follower)->Health().IsUnavailable());
  EXPECT_EQ(replica->Head().position.value(), 0u);
}

// Failover: a follower promoted while the primary goes on writing takes
// every record the stream stored, claims the next epoch and fences the
// stream; the replaced primary stops, and refuses again when restarted; a
// node started as a primary by mistake never publishes.
TEST_F(ReplicationTest, APromotedFollowerFencesTheReplacedPrimaryOut) {
  Append(*primary_, 30);
  auto publisher = Publisher::Start(*primary_, Config("primary"));
  ASSERT_OK(publisher);
  ASSERT_TRUE((*publisher)->WaitStored(GlobalPosition(30), 60s));
  ASSERT_TRUE(testing::WaitFor([&] { return (*publisher)->HoldsEpoch(); }));
  EXPECT_EQ((*publisher)->stats().epoch, 1u);
  {
    auto other = testing::OpenStore(dir_.path() + "/other");
    auto intruder = Publisher::Start(*other, Config("intruder"));
    ASSERT_OK(intruder);
    ASSERT_TRUE(testing::WaitFor(
        [&] { return (*intruder)->Health().IsFailedPrecondition(); }));
    EXPECT_FALSE((*intruder)->HoldsEpoch());
    EXPECT_NE((*intruder)->Health().message().find("node primary"),
              std::string::npos)
        << (*intruder)->Health().message();
  }

  // The primary keeps writing while f1 is promoted.
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    while (!stop.load()) {
      Append(*primary_, 1);
      std::this_thread::sleep_for(2ms);
    }
  });
  auto f1 = testing::OpenStore(dir_.path() + "/f1");
  auto promoted = Promote(*f1, Config("f1"), dir_.path() + "/f1.ckpt", {}, 60s);
  ASSERT_TRUE(testing::WaitFor([&] { return !(*publisher)->HoldsEpoch(); }));
  stop.store(true);
  writer.join();
  ASSERT_OK(promoted);
  EXPECT_EQ(promoted->epoch, 2u);
  const Status fenced = (*publisher)->Health();
  EXPECT_TRUE(fenced.IsFailedPrecondition()) << fenced.ToString();
  EXPECT_NE(fenced.message().find("node f1"), std::string::npos)
      << fenced.message();

  // f1 holds exactly what the stream stored: the primary's log up to the
  // fence (the primary's later records were never acknowledged by the
  // stream).
  const uint64_t at = promoted->position.value();
  EXPECT_GE(at, (*publisher)->stats().stored_position);
  EXPECT_GT(primary_->committed_position().value(), 30u);
  std::vector<std::string> theirs = testing::StoredRecords(*primary_);
  theirs.resize(at);
  EXPECT_EQ(testing::StoredRecords(*f1), theirs);
  EXPECT_EQ(f1->Head().log_hash, promoted->log_hash);
  (*publisher)->Stop();

  // f1 publishes as the primary; a new follower's log is f1's.
  auto next = Publisher::Start(*f1, Config("f1"));
  ASSERT_OK(next);
  ASSERT_TRUE(testing::WaitFor([&] { return (*next)->HoldsEpoch(); }));
  EXPECT_EQ((*next)->stats().epoch, 2u);
  Append(*f1, 5);
  ASSERT_TRUE((*next)->WaitStored(GlobalPosition(at + 5), 60s))
      << Describe(**next);
  auto f2 = testing::OpenStore(dir_.path() + "/f2");
  auto follower = Follower::Start(*f2, Config("f2"), dir_.path() + "/f2.ckpt");
  ASSERT_OK(follower);
  ASSERT_TRUE((*follower)->WaitApplied(GlobalPosition(at + 5), 60s))
      << (*follower)->Health().ToString();
  EXPECT_EQ(testing::StoredRecords(*f2), testing::StoredRecords(*f1));

  // Its checkpoint lost, f2 finds its head in the stream past the fence.
  (*follower)->Stop();
  std::filesystem::remove(dir_.path() + "/f2.ckpt");
  Append(*f1, 2);
  auto resumed = Follower::Start(*f2, Config("f2"), dir_.path() + "/f2.ckpt");
  ASSERT_OK(resumed);
  ASSERT_TRUE((*resumed)->WaitApplied(GlobalPosition(at + 7), 60s))
      << (*resumed)->Health().ToString();
  ASSERT_TRUE(
      testing::WaitFor([&] { return (*resumed)->stats().applied == 2; }));
  EXPECT_EQ((*resumed)->stats().redelivered, 0u);

  // The replaced primary, restarted, refuses to publish.
  auto again = Publisher::Start(*primary_, Config("primary"));
  ASSERT_OK(again);
  ASSERT_TRUE(testing::WaitFor(
      [&] { return (*again)->Health().IsFailedPrecondition(); }));
  EXPECT_FALSE((*again)->HoldsEpoch());
  EXPECT_EQ((*next)->Health().ok(), true) << (*next)->Health().ToString();
}

// The anchored head: the primary signs what the stream stored; followers
// and `verify --checkpoints` check their log against every signature. A
// log rewritten with every hash recomputed is a valid chain, and still
// does not hold the signed hashes.
TEST_F(ReplicationTest, SignedCheckpointsExposeARewrittenHistory) {
  const std::string key_file = dir_.path() + "/signing.key";
  auto public_key = CreateSigningKey(key_file);
  ASSERT_OK(public_key);
  EXPECT_EQ(public_key->size(), 64u);
  auto again = SigningPublicKey(key_file);
  ASSERT_OK(again);
  EXPECT_EQ(*again, *public_key);
  EXPECT_TRUE(CreateSigningKey(key_file).status().IsAlreadyExists());

  ReplicationConfig pc = Config("primary");
  pc.signing_key_file = key_file;
  pc.checkpoint_interval = 100ms;
  Append(*primary_, 20);
  auto publisher = Publisher::Start(*primary_, pc);
  ASSERT_OK(publisher);
  ASSERT_TRUE((*publisher)->WaitStored(GlobalPosition(20), 60s));
  ASSERT_TRUE(
      testing::WaitFor([&] { return (*publisher)->stats().checkpoints >= 1; }));
  Append(*primary_, 10);
  ASSERT_TRUE((*publisher)->WaitStored(GlobalPosition(30), 60s));
  ASSERT_TRUE(
      testing::WaitFor([&] { return (*publisher)->stats().checkpoints >= 2; }));

  ReplicationConfig fc = Config("f1");
  fc.checkpoint_public_key = *public_key;
  auto replica = testing::OpenStore(dir_.path() + "/replica");
  auto follower = Follower::Start(*replica, fc, dir_.path() + "/f1.ckpt");
  ASSERT_OK(follower);
  ASSERT_TRUE((*follower)->WaitApplied(GlobalPosition(30), 60s));
  ASSERT_TRUE(testing::WaitFor([&] {
    return (*follower)->stats().checkpoints_checked >= 2;
  })) << (*follower)->Health().ToString();
  EXPECT_OK((*follower)->Health());

  auto report = VerifyCheckpoints(*primary_, fc);
  ASSERT_OK(report);
  EXPECT_GE(report->checked, 2u);
  EXPECT_EQ(report->beyond_head, 0u);
  EXPECT_EQ(report->last_position, 30u);

  // Another key's public half: no checkpoint is taken as signed.
  ReplicationConfig wrong = fc;
  auto other_key = CreateSigningKey(dir_.path() + "/other.key");
  ASSERT_OK(other_key);
  wrong.checkpoint_public_key = *other_key;
  Status refused = VerifyCheckpoints(*primary_, wrong).status();
  EXPECT_TRUE(refused.IsCorruption()) << refused.ToString();
  EXPECT_NE(refused.message().find("not signed"), std::string::npos);

  // A history rewritten from scratch (every hash recomputed): a log that
  // verifies on its own, but not against the signed heads.
  auto rewritten = testing::OpenStore(dir_.path() + "/rewritten");
  for (int i = 0; i < 30; ++i) {
    ASSERT_OK(rewritten->Append("case-" + std::to_string(i % 7),
                                ExpectedVersion::Any(),
                                {MakeEvent("TestEvent", R"({"n":2})")}));
  }
  Status caught = VerifyCheckpoints(*rewritten, fc).status();
  EXPECT_TRUE(caught.IsCorruption()) << caught.ToString();
  EXPECT_NE(caught.message().find("rewritten"), std::string::npos)
      << caught.message();
  // A follower whose log was rewritten stops at the next signed head.
  auto follower2 = Follower::Start(
      *rewritten,
      [&] {
        ReplicationConfig c = fc;
        c.node = "f2";
        return c;
      }(),
      dir_.path() + "/f2.ckpt");
  ASSERT_OK(follower2);
  ASSERT_TRUE(
      testing::WaitFor([&] { return (*follower2)->Health().IsCorruption(); }));
}

TEST_F(ReplicationTest, AnotherNodesLogIsNotPublishedOntoThisStream) {
  Append(*primary_, 20);
  auto publisher = Publisher::Start(*primary_, Config("primary"));
  ASSERT_OK(publisher);
  ASSERT_TRUE((*publisher)->WaitStored(GlobalPosition(20), 60s));
  (*publisher)->Stop();

  // Another store under the primary's own name (a node under another
  // name does not hold the epoch, and publishes nothing: the promotion
  // test shows it).
  auto other = testing::OpenStore(dir_.path() + "/other");
  Append(*other, 25);
  auto wrong = Publisher::Start(*other, Config("primary"));
  ASSERT_OK(wrong);
  ASSERT_TRUE(
      testing::WaitFor([&] { return (*wrong)->Health().IsCorruption(); }));
  EXPECT_EQ(StreamMessages(), 20u);
}

TEST_F(ReplicationTest, PublishingRidesOutTheLossOfOneServer) {
  auto publisher = Publisher::Start(*primary_, Config("primary"));
  ASSERT_OK(publisher);
  auto replica = testing::OpenStore(dir_.path() + "/replica");
  auto follower = Follower::Start(*replica, Config("f1"),
                                  dir_.path() + "/replica.checkpoint");
  ASSERT_OK(follower);
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    while (!stop.load()) Append(*primary_, 1);
  });
  ASSERT_TRUE((*publisher)->WaitStored(GlobalPosition(200), 60s));
  cluster_->Kill(0);
  const uint64_t at_kill = primary_->committed_position().value();
  ASSERT_TRUE((*publisher)->WaitStored(GlobalPosition(at_kill + 200), 60s))
      << (*publisher)->Health().ToString();
  stop.store(true);
  writer.join();
  const LogHead head = primary_->Head();
  ASSERT_TRUE((*publisher)->WaitStored(head.position, 60s))
      << Describe(**publisher) << " head " << head.position.value();
  ASSERT_TRUE((*follower)->WaitApplied(head.position, 60s))
      << (*follower)->Health().ToString();
  EXPECT_EQ(replica->Head().log_hash, head.log_hash);
  EXPECT_EQ(StreamMessages(), head.position.value());
  ASSERT_TRUE(cluster_->Restart(0));
}

TEST_F(ReplicationTest, ForwardedEventsReachThePrimarysLogOnce) {
  // The primary's intake writes what it is given, as the server does after
  // its checks; here it refuses only an empty payload.
  auto intake = Intake::Start(
      Config("primary"),
      [&](ForwardedEvent f, std::function<void(Status)> done) {
        if (f.event.payload.empty()) {
          done(Status::InvalidArgument("no payload"));
          return;
        }
        primary_->AppendAsync(
            f.stream_id, ExpectedVersion::Any(), {std::move(f.event)},
            [done](StatusOr<AppendResult> r) { done(r.status()); });
      });
  ASSERT_OK(intake);
  // Once the intake has made its stream and consumer (a new cluster elects
  // its leaders first).
  ASSERT_TRUE(testing::WaitFor([&] { return (*intake)->Health().ok(); },
                               std::chrono::seconds(60)));
  auto forwarder = Forwarder::Start(Config("f1"));
  ASSERT_OK(forwarder);

  auto forward = [&](std::vector<ForwardedEvent> events) {
    std::promise<Status> p;
    auto f = p.get_future();
    (*forwarder)->Forward(std::move(events), [&p](Status s) {
      p.set_value(std::move(s));
    });
    return f.get();
  };
  std::vector<ForwardedEvent> events;
  for (int i = 0; i < 3; ++i) {
    ProposedEvent e =
        MakeEvent("CaseRead", R"({"n":)" + std::to_string(i) + "}");
    e.event_id = EventId::NewV7();
    events.push_back({"access:case-" + std::to_string(i), e});
  }
  ASSERT_OK(forward(events));
  ASSERT_TRUE(testing::WaitFor([&] { return (*intake)->written() == 3; }));
  // Sent again (a retry): stored once.
  ASSERT_OK(forward(events));
  // Garbage on the subject is refused and logged, and the intake goes on.
  {
    auto d = Connect();
    jsPubAck* pa = nullptr;
    jsErrCode jerr = static_cast<jsErrCode>(0);
    ASSERT_EQ(js_Publish(&pa, d->js, "caseledger-access.reads", "{", 1, nullptr,
                         &jerr),
              NATS_OK);
    jsPubAck_Destroy(pa);
  }
  ProposedEvent refused = MakeEvent("CaseRead", "");
  refused.event_id = EventId::NewV7();
  ASSERT_OK(forward({{"access:case-9", refused}}));
  ProposedEvent last = MakeEvent("CaseRead", R"({"n":9})");
  last.event_id = EventId::NewV7();
  ASSERT_OK(forward({{"access:case-9", last}}));
  ASSERT_TRUE(testing::WaitFor([&] { return (*intake)->written() >= 4; }));
  EXPECT_EQ((*intake)->refused(), 2u);
  EXPECT_OK((*intake)->Health());
  // Three, and the last: each once.
  EXPECT_EQ(primary_->committed_position().value(), 4u);
  for (const ForwardedEvent& f : events) {
    auto stored = primary_->ReadEvent(f.event.event_id);
    ASSERT_OK(stored);
    EXPECT_EQ(stored->stream_id, f.stream_id);
  }
}

TEST(ReplicationConfigTest, BadConfigurationsAreRefusedWithAReason) {
  ReplicationConfig c;
  c.servers = {"nats://127.0.0.1:4999"};
  c.node = "n1";
  EXPECT_OK(CheckConfig(c));
  auto bad = [&](auto change) {
    ReplicationConfig b = c;
    change(b);
    return CheckConfig(b).IsInvalidArgument();
  };
  EXPECT_TRUE(bad([](ReplicationConfig& b) { b.servers.clear(); }));
  EXPECT_TRUE(bad([](ReplicationConfig& b) { b.servers = {"http://x"}; }));
  EXPECT_TRUE(bad([](ReplicationConfig& b) { b.node = ""; }));
  EXPECT_TRUE(bad([](ReplicationConfig& b) { b.node = "a.b"; }));
  EXPECT_TRUE(bad([](ReplicationConfig& b) { b.stream = "a b"; }));
  EXPECT_TRUE(bad([](ReplicationConfig& b) { b.subjects = "a.>"; }));
  EXPECT_TRUE(bad([](ReplicationConfig& b) { b.replicas = 2; }));
  EXPECT_TRUE(bad([](ReplicationConfig& b) { b.timeout = 10ms; }));
}

}  // namespace
}  // namespace caseledger::replicate
