// Replication of the log through a NATS JetStream cluster.
//
// The stream is the log. The primary's Publisher ships every committed
// record exactly as stored (EncodeStoredRecord: its bytes, position and
// both hashes) to one subject of a stream replicated on the cluster, in
// position order, each message with its position as the message id
// (JetStream drops a duplicate id) and the stream's expected last sequence
// (JetStream refuses a message that does not follow the one the publisher
// last saw stored). So the stream holds the log in order, without gaps or
// duplicates, across restarts of either side.
//
// A Follower consumes the stream with a durable consumer and applies each
// record with EventStore::AppendReplicated, which checks both hash chains
// before it writes: a follower's log is the primary's byte for byte, and a
// record that breaks a chain stops the follower (it reports why) instead of
// entering its log.
//
// The records are the log's own bytes: personal fields in them are already
// sealed (engine/keys), so nothing leaves the node in the clear.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "caseledger/event_store.h"
#include "caseledger/keys/keys.h"
#include "caseledger/status.h"

namespace caseledger::replicate {

struct ReplicationConfig {
  // The cluster's servers, e.g. {"nats://10.0.0.1:4222", ...}; the client
  // fails over between them.
  std::vector<std::string> servers;
  // This node's name: it names the follower's durable consumer. 1 to 64
  // characters from [A-Za-z0-9_-].
  std::string node;
  // The JetStream stream (created by the primary if missing) and the
  // subject prefix its messages use: records on `<subjects>.log`.
  std::string stream = "CASELEDGER";
  std::string subjects = "caseledger";
  // How many servers store the stream (JetStream's R; 1, 3 or 5).
  int replicas = 3;
  // How long one publish or fetch waits for the cluster.
  std::chrono::milliseconds timeout{5000};
  // Optional: a NATS credentials file (JWT and seed), and a CA bundle that
  // makes the connection TLS-only.
  std::string credentials_file;
  std::string tls_ca_file;

  // The anchored head. On the primary: an Ed25519 signing key (a secret
  // file of 64 hex digits, mode 0600, kept outside the store:
  // CreateSigningKey) and how often the head is signed. On followers and
  // for verification: the key's public half (64 hex digits).
  std::string signing_key_file;
  std::chrono::milliseconds checkpoint_interval{60000};
  std::string checkpoint_public_key;
};

// A signed checkpoint: the log's head as the primary stored it in the
// stream, signed with its Ed25519 key.
struct SignedCheckpoint {
  uint64_t position = 0;
  Hash log_hash{};
  uint64_t epoch = 0;
  std::string node;
  std::string signature;  // 64 bytes
};

// Makes a new signing key in `path` (mode 0600, never overwriting);
// returns its public key, 64 hex digits, for the followers' configuration.
StatusOr<std::string> CreateSigningKey(const std::string& path);
// The public key of the signing key in `path`.
StatusOr<std::string> SigningPublicKey(const std::string& path);

struct CheckpointReport {
  uint64_t checked = 0;        // signed checkpoints this log holds
  uint64_t beyond_head = 0;    // checkpoints past this log's head
  uint64_t last_position = 0;  // the last checked checkpoint's position
};
// Reads every signed checkpoint from the cluster and checks each: signed
// by `config.checkpoint_public_key`, and this log holding its log hash at
// its position. kCorruption, naming the first that fails.
StatusOr<CheckpointReport> VerifyCheckpoints(const EventStore& store,
                                             const ReplicationConfig& config);

// The data keys travel beside the log, on a stream of their own
// (`<stream>_KEYS`): wrapped by the KEK, so a follower opens the personal
// fields only with the same KEK, and one message per key, which the
// primary purges when an erasure destroys the key (a follower destroys its
// copy when it applies the erasure's record).
struct KeyReplication {
  keys::KeyStore* store = nullptr;  // null: keys are not replicated
  // For a record that erases personal data, the scope of the keys it
  // destroys ("*": all the case's); nullopt for any other record.
  std::function<std::optional<std::string>(const RecordedEvent&)> erased_scope;
};

// OK when the configuration can be used; otherwise what is wrong with it.
Status CheckConfig(const ReplicationConfig& config);

struct PublisherStats {
  uint64_t committed_position = 0;  // the local log's head
  uint64_t stored_position = 0;     // the last record the stream has stored
  uint64_t stream_sequence = 0;     // its sequence in the stream
  uint64_t published = 0;           // records stored by this process
  uint64_t duplicates = 0;          // of them, already stored (resends)
  uint64_t keys_shipped = 0;        // data keys stored in the key stream
  uint64_t epoch = 0;               // the primary's epoch this node holds
  uint64_t checkpoints = 0;         // signed checkpoints published
  uint64_t failures = 0;            // batches that failed and were retried
  bool connected = false;
};

// Publishes the store's log to the stream, from where the stream ends, on
// a thread of its own: it reads the log through a subscription, so an
// append never waits for it, and a slow or absent cluster only grows the
// lag (committed_position - stored_position), which stats() reports.
class Publisher {
 public:
  // Starts publishing. Fails only on a bad configuration; a cluster that
  // cannot be reached is retried (with backoff) until Stop.
  // With `keys`, the data keys of each batch's cases are stored in the key
  // stream before the batch's records are published.
  static StatusOr<std::unique_ptr<Publisher>> Start(EventStore& store,
                                                    ReplicationConfig config,
                                                    KeyReplication keys = {});
  virtual ~Publisher() = default;

  // Blocks until the stream has stored every record through `position` or
  // the timeout passes; whether it has.
  virtual bool WaitStored(GlobalPosition position,
                          std::chrono::milliseconds timeout) const = 0;

  // Calls `done` once: with true as soon as the stream has stored every
  // record through `position`, with false once `timeout` has passed
  // without that (or the publisher stops first). It runs on a thread the
  // publisher keeps for this, never on the caller's; it must not block.
  virtual void WhenStored(GlobalPosition position,
                          std::chrono::milliseconds timeout,
                          std::function<void(bool stored)> done) = 0;

  virtual PublisherStats stats() const = 0;

  // OK while publishing; kUnavailable while the cluster cannot be reached
  // (publishing resumes by itself); kCorruption when the stream holds a
  // record at a position this log holds differently (the stream is another
  // node's log, or this log was changed): nothing more is published;
  // kFailedPrecondition once another node holds the primary's epoch (this
  // node was replaced): nothing more is published.
  virtual Status Health() const = 0;

  // Whether this node holds the primary's epoch: true once the cluster
  // confirmed it (the epoch is claimed at the first start), false again
  // for good once another node was promoted. A server takes writes only
  // while it is true.
  virtual bool HoldsEpoch() const = 0;

  // Stops the thread. Idempotent; the destructor calls it.
  virtual void Stop() = 0;
};

struct FollowerStats {
  uint64_t applied_position = 0;     // the local log's head
  uint64_t stream_sequence = 0;      // the stream sequence applied through
  uint64_t pending = 0;              // messages the consumer has yet to deliver
  uint64_t applied = 0;              // records written by this process
  uint64_t redelivered = 0;          // records skipped as already stored
  uint64_t keys_taken = 0;           // data keys stored from the key stream
  uint64_t checkpoints_checked = 0;  // signed checkpoints this log holds
  bool connected = false;
};

// Applies the stream to the store on a thread of its own. The durable
// consumer is `follower-<node>`; where to resume is kept in
// `checkpoint_path` (a small file beside the store), so a restart resumes
// where it stopped and a lost checkpoint costs only a replay, whose
// records are compared with those stored and skipped.
class Follower {
 public:
  // With `keys`, the key stream is taken into the key store before each
  // batch is applied, and the erasures applied destroy their keys.
  static StatusOr<std::unique_ptr<Follower>> Start(EventStore& store,
                                                   ReplicationConfig config,
                                                   std::string checkpoint_path,
                                                   KeyReplication keys = {});
  virtual ~Follower() = default;

  // Blocks until the local log reaches `position` or the timeout passes.
  virtual bool WaitApplied(GlobalPosition position,
                           std::chrono::milliseconds timeout) const = 0;

  virtual FollowerStats stats() const = 0;

  // OK while following; kUnavailable while the cluster or the stream cannot
  // be reached; kCorruption, naming the record and why, once a record broke
  // a chain: the follower applies nothing more (until restarted).
  virtual Status Health() const = 0;

  virtual void Stop() = 0;
};

// What a promotion did: the epoch this node now holds, and the log's head
// when it was fenced (every node's log agrees up to it).
struct Promotion {
  uint64_t epoch = 0;
  GlobalPosition position;
  Hash log_hash{};
};

// Makes this node, a follower whose server is stopped, the primary:
//  1. applies the stream to `store` (as a Follower, with `keys`, from
//     `checkpoint_path`) through its last record;
//  2. claims the next epoch for `config.node` in the cluster's key-value
//     bucket by compare-and-set (kFailedPrecondition if another promotion
//     came first);
//  3. writes a fence into the stream right after its last record, applying
//     first whatever the replaced primary stored meanwhile (it stops within
//     about a second of the claim; any publish of its that expected a
//     sequence before the fence is refused).
// Then `serve` this store with this node's name: its publisher goes on from
// the fence. Run again after a failure, it finishes what is left.
StatusOr<Promotion> Promote(EventStore& store, ReplicationConfig config,
                            const std::string& checkpoint_path,
                            const KeyReplication& keys,
                            std::chrono::milliseconds catch_up);

// An event a follower sends the primary to write. Reads of a case are
// recorded in the log (CaseRead), and a follower's log takes no writes of
// its own: its reads' records go to the primary, whose log brings them
// back.
struct ForwardedEvent {
  std::string stream_id;
  ProposedEvent event;  // with its event id: written once however often sent
};

// On a follower: sends events to the primary through the cluster, on a
// stream of their own (`<stream>_ACCESS`, subjects `<subjects>-access.>`,
// replicated like the log), each message with its event id as its id.
class Forwarder {
 public:
  static StatusOr<std::unique_ptr<Forwarder>> Start(ReplicationConfig config);
  virtual ~Forwarder() = default;

  // Publishes `events`, in order, on the forwarder's thread; `done` runs
  // once there: OK once the cluster has stored every one (a quorum of its
  // servers), otherwise why not (kUnavailable when the cluster cannot be
  // reached within the configured timeout). Never blocks the caller.
  virtual void Forward(std::vector<ForwardedEvent> events,
                       std::function<void(Status)> done) = 0;

  // Answers what is still queued with kUnavailable, and stops.
  virtual void Stop() = 0;
};

// On the primary: takes what followers forwarded, in order, and hands each
// event to `write`, which checks it, appends it and says (through its
// callback) once it is durable or why it was refused. A batch is
// acknowledged to the cluster only once every event of it is written or
// refused; an event that cannot be written now (kUnavailable, a full
// disk) is delivered again later.
class Intake {
 public:
  using Write =
      std::function<void(ForwardedEvent, std::function<void(Status)>)>;
  static StatusOr<std::unique_ptr<Intake>> Start(ReplicationConfig config,
                                                 Write write);
  virtual ~Intake() = default;

  virtual uint64_t written() const = 0;  // events written by this process
  virtual uint64_t refused() const = 0;  // events refused (logged)
  virtual Status Health() const = 0;
  virtual void Stop() = 0;
};

}  // namespace caseledger::replicate
