// The data keys' replication, beside the log's: the primary ships the
// wrapped keys of the cases a batch of records touches before it ships the
// records, and purges the keys an erasure destroys; a follower stores what
// the key stream holds before it applies each batch, and destroys the keys
// the erasures it applies name. Private to replicate/.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "caseledger/replicate/replication.h"
#include "replicate/src/nats.h"

namespace caseledger::replicate::internal {

// One message of a publish pipeline.
struct Outgoing {
  std::string subject;
  std::string id;  // Nats-Msg-Id
  std::string data;
  // Nats-Expected-Last-Sequence, if set.
  std::optional<uint64_t> expected_last;
  std::vector<std::pair<std::string, std::string>> headers;
};

// The primary's side; used on the publisher's thread only.
class KeyShipper {
 public:
  KeyShipper(const ReplicationConfig& config, KeyReplication keys)
      : config_(config), keys_(std::move(keys)) {}

  bool enabled() const { return keys_.store != nullptr; }

  // The wrapped keys of the cases `events` belong to, those this process
  // has not yet had stored (after a restart: all of them once; storing
  // one again replaces it with itself).
  StatusOr<std::vector<Outgoing>> Pending(
      const std::vector<RecordedEvent>& events) const;
  // The message that stores `key` in the key stream.
  Outgoing Message(keys::WrappedKey key) const;
  // `m` (one of Pending's or Message's) is stored in the key stream.
  void Stored(const Outgoing& m);

  // Whether the key stream's keys are wrapped by another KEK than ours
  // (a rotation since they were sent) or were never noted as sent whole:
  // then every key is sent again (ForEach), and the KEK noted (KekNote).
  StatusOr<bool> NeedsResend(const Nats& nats) const;
  Status ForEach(const std::function<Status(Outgoing)>& fn) const;
  Outgoing KekNote() const;

  // Purges from the key stream every key the erasures among `events`
  // destroy. Idempotent.
  Status PurgeErased(const Nats& nats,
                     const std::vector<RecordedEvent>& events) const;

 private:
  const ReplicationConfig& config_;
  const KeyReplication keys_;
  // Subject -> message id (a digest of the wrapping) of what was stored.
  // Bounded: emptied when full, which costs only sending keys again.
  std::unordered_map<std::string, std::string> stored_;
};

// A key message's body and headers, back to the key (kInvalidArgument when
// they do not describe one).
StatusOr<keys::WrappedKey> DecodeKeyMessage(natsMsg* m);

// The follower's side; used on the follower's thread only.
class KeyTaker {
 public:
  KeyTaker(const ReplicationConfig& config, KeyReplication keys)
      : config_(config),
        keys_(std::move(keys)),
        durable_("keys-" + config.node) {}

  bool enabled() const { return keys_.store != nullptr; }

  // Binds the durable consumer of the key stream (created if missing).
  Status Attach(const Nats& nats);
  void Detach() { consumer_.Detach(); }

  // Stores every key the stream holds that this consumer has not yet
  // delivered. The primary stores a batch's keys before its records, so
  // after this the keys of the records fetched before it are here.
  Status Drain();

  // The erasures among `records` (encoded records), as plans: recorded in
  // the key store before the records are appended, so that a crash
  // between the append and Destroy is finished at the next start.
  StatusOr<std::vector<keys::KeyStore::PlannedErasure>> PlanErasures(
      const std::vector<std::string>& records) const;
  // Destroys the keys of `plans` (their records are in the log) and drops
  // the plans.
  Status Erase(const std::vector<keys::KeyStore::PlannedErasure>& plans) const;

  uint64_t taken() const { return taken_; }

 private:
  const ReplicationConfig& config_;
  const KeyReplication keys_;
  const std::string durable_;
  DrainedConsumer consumer_;
  uint64_t taken_ = 0;
};

}  // namespace caseledger::replicate::internal
