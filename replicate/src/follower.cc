// The follower's side: the stream, pulled through a durable consumer, applied
// to the local log after both hash chains are checked.
#include <spdlog/spdlog.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>

#include "caseledger/replicate/replication.h"
#include "replicate/src/checkpoints.h"
#include "replicate/src/keys.h"
#include "replicate/src/nats.h"
#include "replicate/src/worker.h"

namespace caseledger::replicate {
namespace {

using internal::MsgPtr;
using internal::Nats;
using internal::SubPtr;

constexpr int kFetch = 256;

// Where the follower resumes: the stream sequence applied through, and the
// log position and hash it left the log at (so a checkpoint from another
// store, or one ahead of this store, is recognised and ignored).
struct Checkpoint {
  uint64_t sequence = 0;
  uint64_t position = 0;
  std::string log_hash;
};

std::optional<Checkpoint> ReadCheckpoint(const std::string& path) {
  std::ifstream in(path);
  if (!in) return std::nullopt;
  try {
    nlohmann::json j = nlohmann::json::parse(in);
    return Checkpoint{j.at("sequence").get<uint64_t>(),
                      j.at("position").get<uint64_t>(),
                      j.at("log_hash").get<std::string>()};
  } catch (const std::exception& e) {
    spdlog::warn("follower: ignoring checkpoint {}: {}", path, e.what());
    return std::nullopt;
  }
}

// Replaced whole (a new file renamed over the old). Not synced: the log is
// written first, so a checkpoint that a power cut loses or leaves behind
// costs a replay of records that are then skipped, never a gap.
Status WriteCheckpoint(const std::string& path, const Checkpoint& c) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << nlohmann::json{{"sequence", c.sequence},
                          {"position", c.position},
                          {"log_hash", c.log_hash}}
               .dump();
    if (!out.flush()) return Status::IOError("writing " + tmp);
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) return Status::IOError("renaming " + tmp + ": " + ec.message());
  return Status::OK();
}

class FollowerImpl final : public Follower {
 public:
  FollowerImpl(EventStore& store, ReplicationConfig config,
               std::string checkpoint_path, KeyReplication keys)
      : store_(store),
        config_(std::move(config)),
        checkpoint_path_(std::move(checkpoint_path)),
        durable_("follower-" + config_.node),
        filter_(config_.subjects + ".>"),
        log_subject_(internal::LogSubject(config_)),
        key_taker_(config_, std::move(keys)),
        checker_(config_) {}
  ~FollowerImpl() override { Stop(); }

  void Begin() {
    worker_.Start([this] { return Step(); },
                  [this] {
                    sub_.reset();  // attach again before going on
                    key_taker_.Detach();
                    checker_.Detach();
                    connected_.store(nats_ && nats_->connected());
                  });
  }

  bool WaitApplied(GlobalPosition position,
                   std::chrono::milliseconds timeout) const override {
    return store_.WaitForPosition(position, timeout);
  }

  FollowerStats stats() const override {
    FollowerStats s;
    s.applied_position = store_.committed_position().value();
    s.stream_sequence = sequence_.load();
    s.pending = pending_.load();
    s.applied = applied_.load();
    s.redelivered = redelivered_.load();
    s.keys_taken = keys_taken_.load();
    s.checkpoints_checked = checkpoints_checked_.load();
    s.connected = connected_.load();
    return s;
  }

  Status Health() const override { return worker_.Health(); }

  void Stop() override { worker_.Stop(); }

 private:
  // The stream sequence to resume after: the checkpoint's, when it
  // describes this log; else that of the stream's copy of this log's head,
  // when it is byte for byte this log's (a lost checkpoint, or a store
  // restored from a backup); else 0: replay everything, each record
  // compared with the one stored.
  uint64_t ResumeAfter() {
    std::optional<Checkpoint> c = ReadCheckpoint(checkpoint_path_);
    if (c && c->position > 0) {
      auto at = store_.ReadAll(GlobalPosition(c->position - 1), 1);
      if (at.ok() && !at->empty() &&
          at->front().position.value() == c->position &&
          HashToHex(at->front().log_hash) == c->log_hash) {
        return c->sequence;
      }
      spdlog::warn("follower: checkpoint {} does not describe this log",
                   checkpoint_path_);
    }
    const uint64_t head = store_.committed_position().value();
    if (head == 0) return 0;
    auto ours = store_.ReadAll(GlobalPosition(head - 1), 1);
    auto theirs = internal::FindRecord(*nats_, config_, head);
    if (ours.ok() && ours->size() == 1 && theirs.ok() && *theirs &&
        (*theirs)->data == EncodeStoredRecord(ours->front())) {
      spdlog::info(
          "follower: resuming after this log's head, position {}, at stream "
          "sequence {}",
          head, (*theirs)->sequence);
      return (*theirs)->sequence;
    }
    spdlog::warn(
        "follower: the stream does not hold this log's head as it is here; "
        "replaying the stream from its start");
    return 0;
  }

  // Connects, and (re)creates the durable consumer to deliver from the
  // checkpoint on.
  StatusOr<SubPtr> Attach() {
    if (!nats_) {
      ASSIGN_OR_RETURN(nats_, Nats::Connect(config_));
    }
    RETURN_IF_ERROR(
        internal::StreamLastSequence(*nats_, config_).status());  // exists?
    const uint64_t after = ResumeAfter();
    sequence_.store(after);

    jsErrCode jerr = static_cast<jsErrCode>(0);
    natsStatus s = js_DeleteConsumer(nats_->js(), config_.stream.c_str(),
                                     durable_.c_str(), nullptr, &jerr);
    if (s != NATS_OK && jerr != JSConsumerNotFoundErr) {
      Status st = internal::FromNats(s, jerr, "deleting consumer " + durable_);
      if (!st.IsNotFound()) return st;
    }
    jsConsumerConfig cc;
    jsConsumerConfig_Init(&cc);
    cc.Durable = durable_.c_str();
    cc.Description = "caseledger follower";
    cc.DeliverPolicy = js_DeliverByStartSequence;
    cc.OptStartSeq = after + 1;
    cc.AckPolicy = js_AckAll;
    cc.AckWait = int64_t{30} * 1000 * 1000 * 1000;  // ns
    cc.FilterSubject = filter_.c_str();
    cc.MaxAckPending = 20000;
    jsConsumerInfo* ci = nullptr;
    jerr = static_cast<jsErrCode>(0);
    s = js_AddConsumer(&ci, nats_->js(), config_.stream.c_str(), &cc, nullptr,
                       &jerr);
    if (s != NATS_OK) {
      return internal::FromNats(s, jerr, "creating consumer " + durable_);
    }
    pending_.store(ci->NumPending);
    jsConsumerInfo_Destroy(ci);
    if (key_taker_.enabled()) RETURN_IF_ERROR(key_taker_.Attach(*nats_));
    if (checker_.enabled()) RETURN_IF_ERROR(checker_.Attach(*nats_));

    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Stream = config_.stream.c_str();
    so.Consumer = durable_.c_str();
    natsSubscription* raw = nullptr;
    jerr = static_cast<jsErrCode>(0);
    s = js_PullSubscribe(&raw, nats_->js(), filter_.c_str(), durable_.c_str(),
                         nullptr, &so, &jerr);
    if (s != NATS_OK) {
      return internal::FromNats(s, jerr, "subscribing to " + durable_);
    }
    return SubPtr(raw);
  }

  // Applies one fetched batch; acknowledges it and moves the checkpoint.
  Status Apply(natsMsgList& list) {
    std::vector<std::string> records;
    records.reserve(static_cast<size_t>(list.Count));
    uint64_t last_sequence = sequence_.load();
    uint64_t pending = pending_.load();
    natsMsg* last = nullptr;
    // Messages come in stream order; one that skips a sequence means the
    // client dropped a delivery (an answer to a fetch that had timed out),
    // which the consumer counts as delivered: what was read before it is
    // applied, and the consumer is attached again from the checkpoint.
    Status gap;
    for (int i = 0; i < list.Count; ++i) {
      natsMsg* m = list.Msgs[i];
      jsMsgMetaData* meta = nullptr;
      if (natsMsg_GetMetaData(&meta, m) != NATS_OK) {
        gap = Status::Unavailable("a delivery without its stream metadata");
        break;
      }
      const uint64_t sequence = meta->Sequence.Stream;
      const uint64_t left = meta->NumPending;
      jsMsgMetaData_Destroy(meta);
      if (sequence <= last_sequence) continue;  // delivered again
      if (sequence != last_sequence + 1) {
        gap = Status::Unavailable("the consumer skipped from stream sequence " +
                                  std::to_string(last_sequence) + " to " +
                                  std::to_string(sequence) +
                                  "; attaching again from the checkpoint");
        break;
      }
      last_sequence = sequence;
      pending = left;
      last = m;
      if (log_subject_ == natsMsg_GetSubject(m)) {
        records.emplace_back(natsMsg_GetData(m),
                             static_cast<size_t>(natsMsg_GetDataLength(m)));
      }
    }
    // The keys first: the primary stored those of these records before it
    // published them. Then the erasures among them are planned, so that
    // their keys are destroyed even if the process stops right after the
    // append.
    RETURN_IF_ERROR(key_taker_.Drain());
    keys_taken_.store(key_taker_.taken());
    ASSIGN_OR_RETURN(auto erasures, key_taker_.PlanErasures(records));
    ReplicaApplyResult r;
    Status applied = store_.AppendReplicated(records, &r);
    applied_.fetch_add(r.applied);
    redelivered_.fetch_add(r.skipped);
    if (!applied.ok()) return applied;
    RETURN_IF_ERROR(key_taker_.Erase(erasures));
    if (last != nullptr) {
      natsMsg_Ack(last, nullptr);
      sequence_.store(last_sequence);
      pending_.store(pending);
      const LogHead head = store_.Head();
      RETURN_IF_ERROR(WriteCheckpoint(
          checkpoint_path_,
          {last_sequence, head.position.value(), HashToHex(head.log_hash)}));
    }
    return gap;
  }

  Status Step() {
    if (!sub_) {
      ASSIGN_OR_RETURN(sub_, Attach());
      worker_.SetHealthy();
    }
    connected_.store(nats_->connected());
    RETURN_IF_ERROR(
        internal::Fetch(sub_.get(), kFetch, worker_, durable_,
                        [this](natsMsgList& list) { return Apply(list); }));
    // The log, as it now stands, against every signed head it reaches.
    RETURN_IF_ERROR(checker_.Check(store_));
    checkpoints_checked_.store(checker_.checked());
    return Status::OK();
  }

  EventStore& store_;
  const ReplicationConfig config_;
  const std::string checkpoint_path_;
  const std::string durable_, filter_, log_subject_;
  // The worker thread's: the connection and the bound consumer (none until
  // attached).
  std::unique_ptr<Nats> nats_;
  SubPtr sub_;

  internal::KeyTaker key_taker_;
  internal::CheckpointChecker checker_;

  std::atomic<uint64_t> sequence_{0}, pending_{0}, applied_{0}, redelivered_{0},
      keys_taken_{0}, checkpoints_checked_{0};
  std::atomic<bool> connected_{false};
  internal::Worker worker_{"follower"};  // last: stopped first
};

}  // namespace

StatusOr<std::unique_ptr<Follower>> Follower::Start(EventStore& store,
                                                    ReplicationConfig config,
                                                    std::string checkpoint_path,
                                                    KeyReplication keys) {
  RETURN_IF_ERROR(CheckConfig(config));
  auto f = std::make_unique<FollowerImpl>(
      store, std::move(config), std::move(checkpoint_path), std::move(keys));
  f->Begin();
  return std::unique_ptr<Follower>(std::move(f));
}

}  // namespace caseledger::replicate
