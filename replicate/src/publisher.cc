// The primary's side: the log, read through a subscription, published to the
// stream in order with JetStream's duplicate and sequence checks.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <nlohmann/json.hpp>
#include <thread>
#include <utility>
#include <vector>

#include "caseledger/mutex.h"
#include "caseledger/replicate/replication.h"
#include "replicate/src/checkpoints.h"
#include "replicate/src/keys.h"
#include "replicate/src/nats.h"
#include "replicate/src/worker.h"

namespace caseledger::replicate {
namespace {

using internal::MsgPtr;
using internal::Nats;

constexpr size_t kBatch = 512;

class PublisherImpl final : public Publisher {
 public:
  PublisherImpl(EventStore& store, ReplicationConfig config,
                KeyReplication keys)
      : store_(store),
        config_(std::move(config)),
        subject_(internal::LogSubject(config_)),
        key_shipper_(config_, std::move(keys)) {}
  ~PublisherImpl() override { Stop(); }

  // Reads the signing key, if one is configured.
  Status Prepare() {
    if (config_.signing_key_file.empty()) return Status::OK();
    ASSIGN_OR_RETURN(signer_,
                     internal::Signer::FromFile(config_.signing_key_file));
    return Status::OK();
  }

  void Begin() {
    waiters_thread_ = std::thread([this] { RunWaiters(); });
    worker_.Start([this] { return Step(); },
                  [this] {
                    sub_.reset();  // resynchronise before going on
                    connected_.store(nats_ && nats_->connected());
                  });
  }

  bool WaitStored(GlobalPosition position,
                  std::chrono::milliseconds timeout) const override {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    MutexLock lk(&stored_mu_);
    while (stored_position_.load() < position.value()) {
      if (!stored_cv_.WaitUntil(&stored_mu_, deadline)) {
        return stored_position_.load() >= position.value();
      }
    }
    return true;
  }

  PublisherStats stats() const override {
    PublisherStats s;
    s.committed_position = store_.committed_position().value();
    s.stored_position = stored_position_.load();
    s.stream_sequence = stream_sequence_.load();
    s.published = published_.load();
    s.duplicates = duplicates_.load();
    s.failures = failures_.load();
    s.keys_shipped = keys_shipped_.load();
    s.epoch = epoch_.load();
    s.checkpoints = checkpoints_.load();
    s.connected = connected_.load();
    return s;
  }

  void WhenStored(GlobalPosition position, std::chrono::milliseconds timeout,
                  std::function<void(bool)> done) override {
    {
      MutexLock lk(&stored_mu_);
      if (!waiters_stopped_) {
        waiters_.emplace(position.value(),
                         Waiter{std::chrono::steady_clock::now() + timeout,
                                std::move(done)});
        lk.Unlock();
        stored_cv_.SignalAll();
        return;
      }
    }
    done(false);
  }

  Status Health() const override { return worker_.Health(); }

  bool HoldsEpoch() const override { return holds_epoch_.load(); }

  void Stop() override {
    worker_.Stop();
    {
      MutexLock lk(&stored_mu_);
      waiters_stopped_ = true;
    }
    stored_cv_.SignalAll();
    if (waiters_thread_.joinable()) waiters_thread_.join();
  }

 private:
  // What the cluster answered for one message of the batch in flight.
  struct Ack {
    Status status;
    uint64_t sequence = 0;
    bool duplicate = false;
  };

  // JetStream's reply to one publish: {"stream", "seq", "duplicate"} or
  // {"error": {"err_code", "description"}}, or a no-responders status
  // (the stream has no leader at the moment).
  static Ack ParseAck(natsMsg* reply, const std::string& subject) {
    Ack ack;
    const std::string what = "publishing to " + subject;
    if (natsMsg_IsNoResponders(reply)) {
      ack.status = Status::Unavailable(
          what + ": no responders (the stream has no leader yet)");
      return ack;
    }
    const auto j = nlohmann::json::parse(
        std::string_view(natsMsg_GetData(reply),
                         static_cast<size_t>(natsMsg_GetDataLength(reply))),
        nullptr, false);
    if (j.is_discarded() || !j.is_object()) {
      ack.status = Status::IOError(what + ": the reply does not parse");
    } else if (auto e = j.find("error"); e != j.end() && e->is_object()) {
      ack.status =
          internal::FromJetStream(e->value("err_code", 0),
                                  e->value("description", std::string()), what);
    } else if (auto seq = j.find("seq");
               seq != j.end() && seq->is_number_unsigned()) {
      ack.sequence = seq->get<uint64_t>();
      ack.duplicate = j.value("duplicate", false);
    } else {
      ack.status = Status::IOError(what + ": the reply has no sequence");
    }
    return ack;
  }

  void SetStored(uint64_t position, uint64_t sequence) {
    {
      MutexLock lk(&stored_mu_);
      stored_position_.store(position);
      stream_sequence_.store(sequence);
    }
    stored_cv_.SignalAll();
  }

  // Connects if needed, and learns where the stream ends: the last record
  // it holds must be this log's record at that position, byte for byte.
  // Returns a subscription from there.
  StatusOr<std::unique_ptr<Subscription>> Sync() {
    if (!nats_) {
      ASSIGN_OR_RETURN(nats_, Nats::Connect(config_));
      natsInbox* inbox = nullptr;
      natsSubscription* raw = nullptr;
      natsStatus s = natsInbox_Create(&inbox);
      if (s == NATS_OK) {
        inbox_ = inbox;
        natsInbox_Destroy(inbox);
        const std::string all = inbox_ + ".>";
        s = natsConnection_SubscribeSync(&raw, nats_->connection(),
                                         all.c_str());
      }
      if (s == NATS_OK) {
        replies_.reset(raw);
        // A batch's replies must all fit: no limit on the count.
        s = natsSubscription_SetPendingLimits(raw, -1, 256 * 1024 * 1024);
      }
      if (s != NATS_OK) {
        nats_.reset();
        return internal::FromNats(s, 0, "subscribing to publish replies");
      }
    }
    RETURN_IF_ERROR(internal::EnsureStream(*nats_, config_));
    RETURN_IF_ERROR(CheckEpoch());
    if (signer_)
      RETURN_IF_ERROR(internal::EnsureCheckpointStream(*nats_, config_));
    if (key_shipper_.enabled()) {
      RETURN_IF_ERROR(internal::EnsureKeyStream(*nats_, config_));
      RETURN_IF_ERROR(ResendKeysIfRewrapped());
    }
    ASSIGN_OR_RETURN(std::optional<internal::StoredMessage> last,
                     internal::LastRecord(*nats_, config_));
    ASSIGN_OR_RETURN(uint64_t last_sequence,
                     internal::StreamLastSequence(*nats_, config_));
    uint64_t position = 0;
    if (last) {
      ASSIGN_OR_RETURN(RecordedEvent theirs, DecodeStoredRecord(last->data));
      position = theirs.position.value();
      auto ours = store_.ReadAll(GlobalPosition(position - 1), 1);
      if (!ours.ok()) return ours.status();
      if (ours->empty() || ours->front().position.value() != position) {
        return Status::Corruption(
            "stream " + config_.stream + " holds position " +
            std::to_string(position) + ", beyond this log's head " +
            std::to_string(store_.committed_position().value()) +
            ": it is not this node's log");
      }
      if (EncodeStoredRecord(ours->front()) != last->data) {
        return Status::Corruption(
            "stream " + config_.stream + " holds a record at position " +
            std::to_string(position) +
            " that differs from this log's: it is not this node's log, or "
            "this log was changed");
      }
    }
    SetStored(position, last_sequence);
    return store_.Subscribe(GlobalPosition(position));
  }

  // Sends `msgs` as one pipeline, each message with its own reply subject
  // (<inbox>.<batch>.<index>), and waits up to the timeout for every
  // acknowledgement: those that came, by index. (Our own inbox rather than
  // the client's asynchronous publishing, whose wait for completion was
  // seen to hang past its deadline after a server was killed.)
  StatusOr<std::map<size_t, Ack>> Pipeline(
      const std::vector<internal::Outgoing>& msgs, bool* no_responders) {
    const std::string prefix = inbox_ + "." + std::to_string(++batch_) + ".";
    for (size_t i = 0; i < msgs.size(); ++i) {
      const internal::Outgoing& m = msgs[i];
      const std::string reply = prefix + std::to_string(i);
      natsMsg* raw = nullptr;
      natsStatus s =
          natsMsg_Create(&raw, m.subject.c_str(), reply.c_str(), m.data.data(),
                         static_cast<int>(m.data.size()));
      MsgPtr msg(raw);
      if (s == NATS_OK) {
        s = natsMsgHeader_Set(msg.get(), "Nats-Msg-Id", m.id.c_str());
      }
      // The expected sequence is set as a header: the client leaves out
      // ExpectLastSeq when it is 0, and the first record must expect 0.
      if (s == NATS_OK && m.expected_last) {
        s = natsMsgHeader_Set(msg.get(), "Nats-Expected-Last-Sequence",
                              std::to_string(*m.expected_last).c_str());
      }
      for (const auto& [name, value] : m.headers) {
        if (s == NATS_OK) {
          s = natsMsgHeader_Set(msg.get(), name.c_str(), value.c_str());
        }
      }
      if (s == NATS_OK) {
        s = natsConnection_PublishMsg(nats_->connection(), msg.get());
      }
      if (s != NATS_OK) {
        return internal::FromNats(s, 0, "publishing " + m.subject);
      }
    }

    std::map<size_t, Ack> acks;
    auto deadline = std::chrono::steady_clock::now() + config_.timeout;
    while (acks.size() < msgs.size()) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) break;
      natsMsg* raw = nullptr;
      natsStatus s =
          natsSubscription_NextMsg(&raw, replies_.get(), left.count());
      MsgPtr reply(raw);
      if (s == NATS_TIMEOUT) break;
      if (s == NATS_NO_RESPONDERS) {
        // The client hands a no-responders reply over as this status,
        // without the message, so whose it was is unknown (perhaps an
        // earlier batch's). If it was one of ours, its acknowledgement is
        // missing at the deadline, and the batch is retried.
        // Most likely ours: the stream has no leader at the moment (an
        // election). Wait a little longer for the others, not the whole
        // timeout, and retry the batch.
        *no_responders = true;
        deadline = std::min(deadline, std::chrono::steady_clock::now() +
                                          std::chrono::milliseconds(250));
        continue;
      }
      if (s != NATS_OK) {
        return internal::FromNats(s, 0, "reading publish replies");
      }
      const std::string_view subject = natsMsg_GetSubject(reply.get());
      if (subject.substr(0, prefix.size()) != prefix) continue;  // stale
      const size_t index = std::strtoull(
          std::string(subject.substr(prefix.size())).c_str(), nullptr, 10);
      if (index >= msgs.size()) continue;
      acks[index] = ParseAck(reply.get(), msgs[index].subject);
    }
    return acks;
  }

  // Stores in the key stream the data keys of the cases `events` belong to
  // that it may lack. Every one must be acknowledged before the records
  // are published: a follower takes the keys before it applies them.
  Status ShipKeys(const std::vector<RecordedEvent>& events) {
    ASSIGN_OR_RETURN(std::vector<internal::Outgoing> pending,
                     key_shipper_.Pending(events));
    return Ship(pending);
  }

  // Every key again, wrapped by the KEK in use, when the key stream's are
  // wrapped by another (a rotation since they were sent) or were never
  // sent whole (a new key stream); then the KEK is noted in the stream.
  Status ResendKeysIfRewrapped() {
    ASSIGN_OR_RETURN(bool resend, key_shipper_.NeedsResend(*nats_));
    if (!resend) return Status::OK();
    std::vector<internal::Outgoing> chunk;
    RETURN_IF_ERROR(key_shipper_.ForEach([&](internal::Outgoing m) {
      chunk.push_back(std::move(m));
      if (chunk.size() < kBatch) return Status::OK();
      Status shipped = Ship(chunk);
      chunk.clear();
      return shipped;
    }));
    RETURN_IF_ERROR(Ship(chunk));
    return Ship({key_shipper_.KekNote()}, /*keys=*/false);
  }

  // Stores `msgs` (data keys, unless `keys` is false) in the key stream;
  // every one must be acknowledged.
  Status Ship(const std::vector<internal::Outgoing>& msgs, bool keys = true) {
    if (msgs.empty()) return Status::OK();
    bool no_responders = false;
    ASSIGN_OR_RETURN(auto acks, Pipeline(msgs, &no_responders));
    for (size_t i = 0; i < msgs.size(); ++i) {
      auto it = acks.find(i);
      if (it == acks.end()) {
        return Status::Unavailable(
            "the key stream did not acknowledge a data key within " +
            std::to_string(config_.timeout.count()) + " ms" +
            (no_responders ? " (the stream has no leader at the moment)" : ""));
      }
      RETURN_IF_ERROR(it->second.status);
      if (keys) {
        key_shipper_.Stored(msgs[i]);
        keys_shipped_.fetch_add(1);
      }
    }
    return Status::OK();
  }

  // Publishes `events` (the next positions after stored_position_) as one
  // pipeline, each message with its position as its id and the stream
  // sequence it must follow.
  Status PublishBatch(const std::vector<RecordedEvent>& events) {
    RETURN_IF_ERROR(ShipKeys(events));
    // The keys the batch's erasures destroy leave the key stream before
    // the erasures are published (so a crash in between repeats this).
    RETURN_IF_ERROR(key_shipper_.PurgeErased(*nats_, events));
    const uint64_t first_sequence = stream_sequence_.load();
    std::vector<internal::Outgoing> msgs(events.size());
    for (size_t i = 0; i < events.size(); ++i) {
      msgs[i].subject = subject_;
      msgs[i].id = std::to_string(events[i].position.value());
      msgs[i].data = EncodeStoredRecord(events[i]);
      msgs[i].expected_last = first_sequence + i;
    }
    bool no_responders = false;
    ASSIGN_OR_RETURN(auto acks, Pipeline(msgs, &no_responders));

    uint64_t stored = stored_position_.load();
    uint64_t sequence = first_sequence;
    Status result;
    for (size_t i = 0; i < events.size(); ++i) {
      const RecordedEvent& e = events[i];
      auto it = acks.find(i);
      if (it == acks.end()) {
        result = Status::Unavailable(
            "the stream did not acknowledge record " +
            std::to_string(e.position.value()) + " within " +
            std::to_string(config_.timeout.count()) + " ms" +
            (no_responders ? " (the stream has no leader at the moment)" : ""));
        break;
      }
      const Ack& ack = it->second;
      if (!ack.status.ok()) {
        result = ack.status;
        break;
      }
      if (ack.sequence != sequence + 1) {
        // A duplicate id stored elsewhere in the stream: not this record.
        result = Status::FailedPrecondition(
            "record " + std::to_string(e.position.value()) +
            " is stored at stream sequence " + std::to_string(ack.sequence) +
            ", expected " + std::to_string(sequence + 1));
        break;
      }
      sequence = ack.sequence;
      stored = e.position.value();
      published_.fetch_add(1);
      if (ack.duplicate) duplicates_.fetch_add(1);
    }
    SetStored(stored, sequence);
    return result;
  }

  // The waiters' thread: answers each WhenStored as soon as its position is
  // stored, or once its deadline passes; every one left with false at
  // Stop.
  void RunWaiters() {
    MutexLock lk(&stored_mu_);
    while (true) {
      std::vector<std::pair<std::function<void(bool)>, bool>> due;
      const auto now = std::chrono::steady_clock::now();
      auto next = now + std::chrono::hours(1);
      const uint64_t stored = stored_position_.load();
      for (auto it = waiters_.begin(); it != waiters_.end();) {
        if (it->first <= stored || it->second.deadline <= now ||
            waiters_stopped_) {
          due.emplace_back(std::move(it->second.done), it->first <= stored);
          it = waiters_.erase(it);
        } else {
          next = std::min(next, it->second.deadline);
          ++it;
        }
      }
      if (!due.empty()) {
        lk.Unlock();
        for (auto& [done, ok] : due) done(ok);
        lk.Lock();
        continue;
      }
      if (waiters_stopped_) return;
      stored_cv_.WaitUntil(&stored_mu_, next);
    }
  }

  // Confirms this node holds the primary's epoch (claiming the first one
  // when none was), or halts for good once another node does.
  Status CheckEpoch() {
    ASSIGN_OR_RETURN(std::optional<internal::Epoch> epoch,
                     internal::ReadEpoch(*nats_, config_));
    if (!epoch) {
      auto claimed = internal::ClaimEpoch(*nats_, config_, epoch, config_.node);
      if (!claimed.ok()) {
        return Status::Unavailable(claimed.status().message());
      }
      epoch = std::move(*claimed);
      spdlog::info("replication: node {} is the primary, epoch {}",
                   config_.node, epoch->number);
    }
    last_epoch_check_ = std::chrono::steady_clock::now();
    if (epoch->node == config_.node) {
      epoch_.store(epoch->number);
      holds_epoch_.store(true);
      return Status::OK();
    }
    holds_epoch_.store(false);
    return worker_.Halt(Status::FailedPrecondition(
        "node " + epoch->node + " holds the primary's epoch (" +
        std::to_string(epoch->number) + "), not this node (" + config_.node +
        "): it publishes nothing and takes no writes; rebuild it as a " +
        "follower (README, Failover)"));
  }

  Status Step() {
    if (sub_ && std::chrono::steady_clock::now() - last_epoch_check_ >
                    std::chrono::seconds(1)) {
      // A promotion elsewhere stops this node within about a second, even
      // before its fence refuses a publish.
      RETURN_IF_ERROR(CheckEpoch());
    }
    if (!sub_) {
      auto synced = Sync();
      if (!synced.ok()) {
        failures_.fetch_add(1);
        return synced.status();
      }
      sub_ = std::move(*synced);
      worker_.SetHealthy();
    }
    connected_.store(nats_->connected());
    ASSIGN_OR_RETURN(std::vector<RecordedEvent> events,
                     sub_->Next(kBatch, std::chrono::milliseconds(200)));
    if (!events.empty()) {
      Status published = PublishBatch(events);
      if (!published.ok()) {
        failures_.fetch_add(1);
        return published;
      }
    }
    return MaybeSign();
  }

  // Signs the head the stream has stored, once per interval when it has
  // moved, and publishes the checkpoint (its id the position and epoch, so
  // a resend is dropped).
  Status MaybeSign() {
    if (!signer_) return Status::OK();
    const uint64_t stored = stored_position_.load();
    const auto now = std::chrono::steady_clock::now();
    if (stored == signed_position_ ||
        now - last_signed_ < config_.checkpoint_interval) {
      return Status::OK();
    }
    SignedCheckpoint c;
    c.position = stored;
    c.epoch = epoch_.load();
    c.node = config_.node;
    if (stored > 0) {
      ASSIGN_OR_RETURN(std::vector<RecordedEvent> at,
                       store_.ReadAll(GlobalPosition(stored - 1), 1));
      if (at.empty() || at.front().position.value() != stored) {
        return Status::Corruption("record " + std::to_string(stored) +
                                  ", stored in the stream, is not in the log");
      }
      c.log_hash = at.front().log_hash;
    }
    ASSIGN_OR_RETURN(c.signature,
                     signer_->Sign(internal::SignedBytes(config_, c)));
    internal::Outgoing m;
    m.subject = internal::CheckpointSubject(config_);
    m.id = "checkpoint-" + std::to_string(c.position) + "-" +
           std::to_string(c.epoch);
    m.data = internal::EncodeCheckpoint(c);
    bool no_responders = false;
    ASSIGN_OR_RETURN(auto acks, Pipeline({m}, &no_responders));
    auto it = acks.find(0);
    if (it == acks.end()) {
      return Status::Unavailable(
          "the checkpoint stream did not acknowledge a checkpoint");
    }
    RETURN_IF_ERROR(it->second.status);
    signed_position_ = stored;
    last_signed_ = now;
    checkpoints_.fetch_add(1);
    return Status::OK();
  }

  EventStore& store_;
  const ReplicationConfig config_;
  const std::string subject_;
  // The worker thread's: the connection, and the log from where the
  // stream ends (none until synchronised).
  std::unique_ptr<Nats> nats_;
  std::string inbox_;         // replies come to <inbox>.<batch>.<position>
  internal::SubPtr replies_;  // on <inbox>.>
  uint64_t batch_ = 0;
  std::unique_ptr<Subscription> sub_;
  internal::KeyShipper key_shipper_;
  std::chrono::steady_clock::time_point last_epoch_check_;
  // The signing key (none: no checkpoints), and the last signed head.
  std::unique_ptr<internal::Signer> signer_;
  uint64_t signed_position_ = 0;
  std::chrono::steady_clock::time_point last_signed_;

  struct Waiter {
    std::chrono::steady_clock::time_point deadline;
    std::function<void(bool)> done;
  };
  mutable Mutex stored_mu_;
  mutable CondVar stored_cv_;  // waits on stored_mu_
  // By position.
  std::multimap<uint64_t, Waiter> waiters_ GUARDED_BY(stored_mu_);
  bool waiters_stopped_ GUARDED_BY(stored_mu_) = false;
  std::thread waiters_thread_;

  std::atomic<uint64_t> stored_position_{0}, stream_sequence_{0};
  std::atomic<uint64_t> published_{0}, duplicates_{0}, failures_{0},
      keys_shipped_{0};
  std::atomic<bool> connected_{false};
  std::atomic<bool> holds_epoch_{false};
  std::atomic<uint64_t> epoch_{0}, checkpoints_{0};
  internal::Worker worker_{"replication"};  // last: stopped first
};

}  // namespace

StatusOr<std::unique_ptr<Publisher>> Publisher::Start(EventStore& store,
                                                      ReplicationConfig config,
                                                      KeyReplication keys) {
  RETURN_IF_ERROR(CheckConfig(config));
  auto p = std::make_unique<PublisherImpl>(store, std::move(config),
                                           std::move(keys));
  RETURN_IF_ERROR(p->Prepare());
  p->Begin();
  return std::unique_ptr<Publisher>(std::move(p));
}

}  // namespace caseledger::replicate
