// Promotion: a follower becomes the primary, fenced by an epoch.
#include <spdlog/spdlog.h>

#include <nlohmann/json.hpp>

#include "caseledger/replicate/replication.h"
#include "replicate/src/nats.h"

namespace caseledger::replicate {
namespace {

using internal::MsgPtr;
using internal::Nats;

constexpr int kFenceAttempts = 30;

// The position of the stream's last record (0 when it holds none).
StatusOr<uint64_t> StreamHead(const Nats& nats,
                              const ReplicationConfig& config) {
  ASSIGN_OR_RETURN(std::optional<internal::StoredMessage> last,
                   internal::LastRecord(nats, config));
  if (!last) return uint64_t{0};
  ASSIGN_OR_RETURN(RecordedEvent e, DecodeStoredRecord(last->data));
  return e.position.value();
}

// Applies the stream to `store` until its log reaches the stream's last
// record, as a follower does (every record checked).
Status CatchUp(EventStore& store, const ReplicationConfig& config,
               const std::string& checkpoint_path, const KeyReplication& keys,
               const Nats& nats, std::chrono::milliseconds timeout) {
  ASSIGN_OR_RETURN(uint64_t head, StreamHead(nats, config));
  if (store.committed_position().value() >= head) return Status::OK();
  ASSIGN_OR_RETURN(std::unique_ptr<Follower> follower,
                   Follower::Start(store, config, checkpoint_path, keys));
  const bool reached = follower->WaitApplied(GlobalPosition(head), timeout);
  Status health = follower->Health();
  follower->Stop();
  if (reached) return Status::OK();
  if (health.IsCorruption()) return health;
  return Status::Unavailable("could not apply the stream through position " +
                             std::to_string(head) + " within " +
                             std::to_string(timeout.count()) + " ms (" +
                             health.ToString() + ")");
}

// Writes the fence: a message on the epoch subject that must follow
// `last_sequence` exactly. kFailedPrecondition when the stream moved on.
Status WriteFence(const Nats& nats, const ReplicationConfig& config,
                  const internal::Epoch& epoch, uint64_t last_sequence) {
  const std::string subject = internal::EpochSubject(config);
  const std::string body =
      nlohmann::json{{"epoch", epoch.number}, {"node", epoch.node}}.dump();
  natsMsg* raw = nullptr;
  natsStatus s = natsMsg_Create(&raw, subject.c_str(), nullptr, body.data(),
                                static_cast<int>(body.size()));
  MsgPtr msg(raw);
  const std::string id = "epoch-" + std::to_string(epoch.number);
  const std::string expected = std::to_string(last_sequence);
  if (s == NATS_OK) s = natsMsgHeader_Set(msg.get(), "Nats-Msg-Id", id.c_str());
  // Set by hand: the client leaves out an expected sequence of 0.
  if (s == NATS_OK) {
    s = natsMsgHeader_Set(msg.get(), "Nats-Expected-Last-Sequence",
                          expected.c_str());
  }
  if (s != NATS_OK) return internal::FromNats(s, 0, "making the fence");
  jsPubAck* ack = nullptr;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  s = js_PublishMsg(&ack, nats.js(), msg.get(), nullptr, &jerr);
  jsPubAck_Destroy(ack);
  if (s != NATS_OK) {
    return internal::FromNats(
        s, jerr, "writing the fence of epoch " + std::to_string(epoch.number));
  }
  return Status::OK();
}

// Whether the last fence in the stream is `epoch`'s.
StatusOr<bool> FenceWritten(const Nats& nats, const ReplicationConfig& config,
                            const internal::Epoch& epoch) {
  ASSIGN_OR_RETURN(std::optional<internal::StoredMessage> last,
                   internal::LastOnSubject(nats, config.stream,
                                           internal::EpochSubject(config)));
  if (!last) return false;
  const auto j = nlohmann::json::parse(last->data, nullptr, false);
  return j.is_object() && j.value("epoch", uint64_t{0}) == epoch.number &&
         j.value("node", std::string()) == epoch.node;
}

}  // namespace

StatusOr<Promotion> Promote(EventStore& store, ReplicationConfig config,
                            const std::string& checkpoint_path,
                            const KeyReplication& keys,
                            std::chrono::milliseconds catch_up) {
  RETURN_IF_ERROR(CheckConfig(config));
  ASSIGN_OR_RETURN(std::unique_ptr<Nats> nats, Nats::Connect(config));
  RETURN_IF_ERROR(internal::StreamLastSequence(*nats, config).status());

  // 1. Everything the stream holds now, applied here.
  RETURN_IF_ERROR(
      CatchUp(store, config, checkpoint_path, keys, *nats, catch_up));

  // 2. The epoch, claimed by compare-and-set (a promotion run again after
  // it was cut short finds it already claimed for this node).
  ASSIGN_OR_RETURN(std::optional<internal::Epoch> current,
                   internal::ReadEpoch(*nats, config));
  internal::Epoch epoch;
  if (current && current->node == config.node) {
    epoch = *current;
  } else {
    ASSIGN_OR_RETURN(epoch,
                     internal::ClaimEpoch(*nats, config, current, config.node));
  }
  spdlog::info("promote: node {} holds epoch {}", config.node, epoch.number);

  // 3. The fence, right after the last record: if the replaced primary
  // stored more meanwhile (it stops within about a second of the claim),
  // those records are applied first. The replaced primary's next publish
  // then expects a sequence before the fence, and is refused.
  Promotion out;
  out.epoch = epoch.number;
  for (int attempt = 0;; ++attempt) {
    // The sequence before the head: a record stored between the two
    // reads is then either applied (the head shows it) or makes the fence
    // expect a stale sequence (refused, and tried again).
    ASSIGN_OR_RETURN(uint64_t last_sequence,
                     internal::StreamLastSequence(*nats, config));
    ASSIGN_OR_RETURN(bool fenced, FenceWritten(*nats, config, epoch));
    ASSIGN_OR_RETURN(uint64_t head, StreamHead(*nats, config));
    if (fenced && head == store.committed_position().value()) break;
    if (fenced) {
      return Status::Corruption(
          "the stream holds records up to position " + std::to_string(head) +
          " beyond the fence of epoch " + std::to_string(epoch.number) +
          ", which this log (at " +
          std::to_string(store.committed_position().value()) +
          ") does not: another node published after the promotion");
    }
    if (head > store.committed_position().value()) {
      RETURN_IF_ERROR(
          CatchUp(store, config, checkpoint_path, keys, *nats, catch_up));
      continue;
    }
    Status written = WriteFence(*nats, config, epoch, last_sequence);
    if (written.ok()) continue;  // checked at the top
    if (attempt >= kFenceAttempts) return written;
    spdlog::info("promote: the stream moved on ({}); catching up again",
                 written.ToString());
  }
  const LogHead head = store.Head();
  out.position = head.position;
  out.log_hash = head.log_hash;
  return out;
}

}  // namespace caseledger::replicate
