// AppendReplicated: a replica's log is its primary's byte for byte, and a
// record that breaks either chain, or leaves a gap, is refused with the
// records before it kept.
#include <string>
#include <vector>

#include "caseledger/event_store.h"
#include "tests/support/test_support.h"

namespace caseledger {
namespace {

using testing::MakeEvent;

class ReplicaTest : public ::testing::Test {
 protected:
  void SetUp() override {
    primary_ = testing::OpenStore(dir_.path() + "/primary");
    replica_ = testing::OpenStore(dir_.path() + "/replica");
    ASSERT_NE(primary_, nullptr);
    ASSERT_NE(replica_, nullptr);
    for (int i = 0; i < 30; ++i) {
      ASSERT_OK(primary_->Append(
          "case-" + std::to_string(i % 4), ExpectedVersion::Any(),
          {MakeEvent("TestEvent", R"({"i":)" + std::to_string(i) + "}")}));
    }
    records_ = testing::StoredRecords(*primary_);
    ASSERT_EQ(records_.size(), 30u);
  }

  Status Apply(const std::vector<std::string>& records,
               ReplicaApplyResult* result = nullptr) {
    ReplicaApplyResult ignored;
    return replica_->AppendReplicated(records, result ? result : &ignored);
  }

  testing::TempDir dir_;
  std::unique_ptr<EventStore> primary_, replica_;
  std::vector<std::string> records_;
};

TEST_F(ReplicaTest, TheReplicaHoldsThePrimarysLogByteForByte) {
  ReplicaApplyResult r;
  ASSERT_OK(Apply({records_.begin(), records_.begin() + 10}, &r));
  EXPECT_EQ(r.applied, 10u);
  ASSERT_OK(Apply({records_.begin() + 10, records_.end()}, &r));
  EXPECT_EQ(r.applied, 20u);

  EXPECT_EQ(replica_->Head().position, primary_->Head().position);
  EXPECT_EQ(replica_->Head().log_hash, primary_->Head().log_hash);
  EXPECT_EQ(testing::StoredRecords(*replica_), records_);
  auto verify = replica_->Verify(std::nullopt);
  ASSERT_OK(verify);
  EXPECT_TRUE(verify->ok);
  EXPECT_EQ(verify->events_checked, 30u);
  // The indexes are the primary's too: by case, and by event id.
  auto stream = replica_->ReadStream("case-1", StreamVersion(1),
                                     Direction::kForward, 100);
  ASSERT_OK(stream);
  EXPECT_EQ(stream->size(), 8u);
  auto first = DecodeStoredRecord(records_[0]);
  ASSERT_OK(first);
  ASSERT_OK(replica_->ReadEvent(first->event_id));
}

TEST_F(ReplicaTest, ARedeliveryIsSkippedAndTheLogGoesOnAppendingAfterIt) {
  ASSERT_OK(Apply({records_.begin(), records_.begin() + 20}));
  ReplicaApplyResult r;
  ASSERT_OK(Apply({records_.begin() + 15, records_.end()}, &r));
  EXPECT_EQ(r.skipped, 5u);
  EXPECT_EQ(r.applied, 10u);
  EXPECT_EQ(replica_->Head().log_hash, primary_->Head().log_hash);
  // A replica can take appends of its own once promoted, after them.
  ASSERT_OK(replica_->Append("case-1", ExpectedVersion::Exact(StreamVersion(8)),
                             {MakeEvent()}));
  auto verify = replica_->Verify(std::nullopt);
  ASSERT_OK(verify);
  EXPECT_TRUE(verify->ok);
}

TEST_F(ReplicaTest, AnAlteredPayloadIsRefusedAndTheRecordsBeforeItKept) {
  std::vector<std::string> altered = records_;
  const size_t at = altered[12].find(R"("i":12)");
  ASSERT_NE(at, std::string::npos);
  altered[12][at + 4] = '9';
  ReplicaApplyResult r;
  Status s = Apply(altered, &r);
  EXPECT_TRUE(s.IsCorruption()) << s.ToString();
  EXPECT_NE(s.message().find("position 13"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("case hash"), std::string::npos) << s.message();
  EXPECT_EQ(r.applied, 12u);
  EXPECT_EQ(replica_->Head().position.value(), 12u);
  // The true record still applies afterwards.
  ASSERT_OK(Apply({records_.begin() + 12, records_.end()}));
  EXPECT_EQ(replica_->Head().log_hash, primary_->Head().log_hash);
}

TEST_F(ReplicaTest, RecomputedHashesStillBreakTheNextRecordsLink) {
  // Whoever alters record 13 and recomputes its own two hashes cannot make
  // record 14, which commits to the original log hash, follow it.
  auto e = DecodeStoredRecord(records_[12]);
  ASSERT_OK(e);
  auto prev_in_case = DecodeStoredRecord(records_[8]);  // case-0, version 3
  auto prev = DecodeStoredRecord(records_[11]);
  ASSERT_OK(prev_in_case);
  ASSERT_OK(prev);
  ASSERT_EQ(e->stream_id, prev_in_case->stream_id);
  e->payload = R"({"i":99})";
  std::string canonical = EncodeStoredRecord(*e);
  canonical.resize(canonical.size() - 64);
  auto sha = [](const Hash& a, std::string_view b) {
    std::string bytes(reinterpret_cast<const char*>(a.data()), a.size());
    bytes.append(b);
    std::string hex = Sha256Hex(bytes);
    Hash h{};
    for (size_t i = 0; i < h.size(); ++i) {
      h[i] = static_cast<uint8_t>(std::stoi(hex.substr(2 * i, 2), nullptr, 16));
    }
    return h;
  };
  e->case_hash = sha(prev_in_case->case_hash, canonical);
  e->log_hash = sha(
      prev->log_hash,
      std::string_view(reinterpret_cast<const char*>(e->case_hash.data()), 32));
  std::vector<std::string> altered = records_;
  altered[12] = EncodeStoredRecord(*e);
  ReplicaApplyResult r;
  Status s = Apply(altered, &r);
  EXPECT_TRUE(s.IsCorruption()) << s.ToString();
  EXPECT_NE(s.message().find("position 14"), std::string::npos) << s.message();
  EXPECT_EQ(r.applied, 13u);
}

TEST_F(ReplicaTest, AReplicaStoreTakesNoAppendsOfItsOwn) {
  replica_.reset();
  Options options;
  options.replica = true;
  replica_ = testing::OpenStore(dir_.path() + "/replica", options);
  ASSERT_OK(Apply(records_));
  auto own = replica_->Append("case-1", ExpectedVersion::Any(), {MakeEvent()});
  EXPECT_TRUE(own.status().IsFailedPrecondition()) << own.status().ToString();
  Status async_status;
  replica_->AppendAsync(
      "case-1", ExpectedVersion::Any(), {MakeEvent()},
      [&](StatusOr<AppendResult> r) { async_status = r.status(); });
  EXPECT_TRUE(async_status.IsFailedPrecondition());
  EXPECT_EQ(replica_->Head().log_hash, primary_->Head().log_hash);
}

TEST_F(ReplicaTest, AGapOrADifferentRecordAtAStoredPositionIsRefused) {
  ASSERT_OK(Apply({records_.begin(), records_.begin() + 5}));
  Status gap = Apply({records_[6]});
  EXPECT_TRUE(gap.IsCorruption());
  EXPECT_NE(gap.message().find("missing"), std::string::npos) << gap.message();

  // Position 3 of another log (one primary_ never wrote) is not a redelivery.
  auto other = testing::OpenStore(dir_.path() + "/other");
  for (int i = 0; i < 3; ++i) {
    ASSERT_OK(other->Append("case-x", ExpectedVersion::Any(), {MakeEvent()}));
  }
  Status differs = Apply({testing::StoredRecords(*other)[2]});
  EXPECT_TRUE(differs.IsCorruption());
  EXPECT_NE(differs.message().find("differs"), std::string::npos)
      << differs.message();
  Status garbage = Apply({"not a record"});
  EXPECT_TRUE(garbage.IsCorruption());
  EXPECT_EQ(replica_->Head().position.value(), 5u);
}

}  // namespace
}  // namespace caseledger
