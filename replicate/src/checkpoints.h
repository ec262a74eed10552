// Signed checkpoints of the log's head: the primary signs (position, log
// hash) with an Ed25519 key kept outside the store, at an interval, on a
// stream of their own; a follower and `caseledger verify --checkpoints`
// check that their log holds, at each checkpoint's position, the hash it
// signed. Rewriting history on one node, even with every hash recomputed,
// then shows. Private to replicate/.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <string>

#include "caseledger/replicate/replication.h"
#include "replicate/src/nats.h"

namespace caseledger::replicate::internal {

std::string CheckpointStream(const ReplicationConfig& config);
std::string CheckpointSubject(const ReplicationConfig& config);
// Creates it if missing: kept for good, the configured replicas.
Status EnsureCheckpointStream(const Nats& nats,
                              const ReplicationConfig& config);

// As a message body (JSON, the hash and signature in hex), and back
// (kInvalidArgument when a body is not one).
std::string EncodeCheckpoint(const SignedCheckpoint& c);
StatusOr<SignedCheckpoint> DecodeCheckpoint(std::string_view body);

// The bytes a checkpoint's signature covers: a label, the stream's name,
// the position, the log hash, the epoch and the node.
std::string SignedBytes(const ReplicationConfig& config,
                        const SignedCheckpoint& c);

// An Ed25519 private key (from a secret file: keys::ReadSecretFile).
class Signer {
 public:
  static StatusOr<std::unique_ptr<Signer>> FromFile(const std::string& path);
  ~Signer();
  Signer(const Signer&) = delete;
  Signer& operator=(const Signer&) = delete;

  // 64 bytes.
  StatusOr<std::string> Sign(std::string_view bytes) const;
  // 64 hexadecimal digits.
  const std::string& public_key_hex() const { return public_hex_; }

 private:
  Signer() = default;
  void* key_ = nullptr;  // EVP_PKEY*
  std::string public_hex_;
};

// Whether `signature` is `public_key_hex`'s over `bytes`; kInvalidArgument
// when the key is not 64 hexadecimal digits.
StatusOr<bool> SignatureValid(const std::string& public_key_hex,
                              std::string_view bytes,
                              std::string_view signature);

// Checks `c` against `store`: signed by `public_key_hex`, and, if the log
// reaches its position, holding its log hash there. OK; kCorruption naming
// what differs; kUnavailable (nothing to say yet) when the log is shorter.
Status CheckAgainst(const EventStore& store, const ReplicationConfig& config,
                    const std::string& public_key_hex,
                    const SignedCheckpoint& c);

// The follower's side: the checkpoints stream through a durable consumer;
// those beyond the local head wait until it reaches them.
class CheckpointChecker {
 public:
  CheckpointChecker(const ReplicationConfig& config)
      : config_(config), durable_("checkpoints-" + config.node) {}
  bool enabled() const { return !config_.checkpoint_public_key.empty(); }
  Status Attach(const Nats& nats);
  void Detach() {
    consumer_.Detach();
    waiting_.clear();
  }
  // Takes what the stream delivered, and checks every checkpoint the log
  // now reaches; kCorruption at the first that does not hold.
  Status Check(const EventStore& store);
  uint64_t checked() const { return checked_; }

 private:
  const ReplicationConfig& config_;
  const std::string durable_;
  DrainedConsumer consumer_;
  std::deque<std::pair<SignedCheckpoint, MsgPtr>> waiting_;
  uint64_t checked_ = 0;
};

}  // namespace caseledger::replicate::internal
