// Thin owners of the NATS C client's objects, and the few JetStream calls
// the publisher and the follower share. Private to replicate/.
#pragma once

#include <nats/nats.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "caseledger/replicate/replication.h"
#include "caseledger/status.h"
#include "replicate/src/worker.h"

namespace caseledger::replicate::internal {

struct MsgDeleter {
  void operator()(natsMsg* m) const { natsMsg_Destroy(m); }
};
using MsgPtr = std::unique_ptr<natsMsg, MsgDeleter>;

// A NATS error as a Status: kUnavailable for what retrying may mend (no
// connection, a timeout, no stream leader yet), kNotFound for a missing
// stream, consumer or message, kFailedPrecondition for JetStream's "wrong
// last sequence" (the stream moved on), kIOError otherwise. The message names
// `what`, the client's status and JetStream's error code.
Status FromNats(natsStatus s, int jerr, std::string_view what);
// An error JetStream answered in a reply's body ({"error": {"err_code",
// "description"}}), classified the same way.
Status FromJetStream(int jerr, std::string_view description,
                     std::string_view what);

// Destroys a fetched list's messages when it goes.
struct MsgListGuard {
  natsMsgList* list;
  ~MsgListGuard() { natsMsgList_Destroy(list); }
};

struct SubDeleter {
  void operator()(natsSubscription* s) const { natsSubscription_Destroy(s); }
};
using SubPtr = std::unique_ptr<natsSubscription, SubDeleter>;

// One pull from a bound consumer: up to `max` messages, waiting at most a
// second. `apply` runs on what came (the list is destroyed after it) and
// its status is returned. When nothing came the answer is OK; if the client
// said so at once, `worker` pauses first (libnats 3.4.1 can report a
// timeout at once after an earlier one: a pull loop must not spin). Other
// failures name `what`.
Status Fetch(natsSubscription* sub, int max, Worker& worker,
             std::string_view what,
             const std::function<Status(natsMsgList&)>& apply);

// A durable pull consumer (created if missing) delivering a stream from its
// start, taken without waiting: what the follower reads beside the log.
// Acknowledgement is AckAll (acknowledging a message acknowledges those
// before it); what is not acknowledged within 30 s is delivered again.
class Nats;
class DrainedConsumer {
 public:
  Status Attach(const Nats& nats, const std::string& stream,
                const std::string& filter, const std::string& durable,
                const char* description);
  void Detach() {
    sub_.reset();
    js_ = nullptr;
  }
  // Hands `take` every message the consumer has yet to deliver, in order,
  // a fetched batch (up to 256) at a time, owned by `take`, which should
  // acknowledge what it is done with (the consumer delivers at most 1,000
  // unacknowledged); stops at the first error it returns. Asks the consumer
  // how many wait first, and fetches exactly those: a fetch that finds
  // nothing costs this client its whole expiry, even with no-wait.
  Status Drain(const std::function<Status(std::vector<MsgPtr>)>& take);

 private:
  jsCtx* js_ = nullptr;  // the attaching connection's
  std::string stream_, durable_;
  SubPtr sub_;
};

// One connection to the cluster with its JetStream context. The client
// reconnects by itself, for ever, across the configured servers.
class Nats {
 public:
  static StatusOr<std::unique_ptr<Nats>> Connect(
      const ReplicationConfig& config);
  ~Nats();
  Nats(const Nats&) = delete;
  Nats& operator=(const Nats&) = delete;

  natsConnection* connection() const { return nc_; }
  jsCtx* js() const { return js_; }
  bool connected() const;

 private:
  Nats() = default;
  natsConnection* nc_ = nullptr;
  jsCtx* js_ = nullptr;
};

// The subject records are published on.
std::string LogSubject(const ReplicationConfig& config);

// Creates the stream if it does not exist (file storage, the configured
// replicas, messages never deleted or purged, duplicate window 2 minutes);
// an existing stream is left as it is.
Status EnsureStream(const Nats& nats, const ReplicationConfig& config);

// Creates stream `name` on `subjects` if it does not exist, like the log's:
// file storage, the configured replicas, messages kept for good.
Status EnsureStreamFor(const Nats& nats, const ReplicationConfig& config,
                       const std::string& name, const std::string& subjects,
                       const char* description);

// The stream of followers' forwarded events, and its subject.
std::string AccessStream(const ReplicationConfig& config);
std::string AccessSubject(const ReplicationConfig& config);
// Creates it if missing: a work queue, on the configured replicas.
Status EnsureAccessStream(const Nats& nats, const ReplicationConfig& config);

// `bytes` in lower-case hexadecimal.
std::string Hex(std::string_view bytes);

// The stream of the primary's data keys, wrapped by the KEK: one message
// per (case, scope), on KeySubject; KeyCaseFilter is the prefix of a
// case's subjects (its keys are on KeyCaseFilter + ".>").
std::string KeyStream(const ReplicationConfig& config);
std::string KeySubject(const ReplicationConfig& config,
                       std::string_view case_id, std::string_view scope);
std::string KeyCaseFilter(const ReplicationConfig& config,
                          std::string_view case_id);
// Where the primary notes the id of the KEK every key in the stream is
// wrapped by (after a rotation, the keys are sent again). No key's subject
// (theirs have two hex tokens after the prefix).
std::string KeyKekSubject(const ReplicationConfig& config);
// Creates it if missing: the configured replicas, the last message per
// subject kept, deletes and purges allowed (erasure).
Status EnsureKeyStream(const Nats& nats, const ReplicationConfig& config);

// Who is the primary: an epoch number and the node that holds it, kept in
// the JetStream key-value bucket `<stream>_EPOCH` (key "primary") and
// changed only by compare-and-set on its revision.
struct Epoch {
  uint64_t number = 0;
  std::string node;
  uint64_t revision = 0;  // the bucket's, for compare-and-set
};
// The current epoch; nullopt before any primary claimed one. Creates the
// bucket if it is missing.
StatusOr<std::optional<Epoch>> ReadEpoch(const Nats& nats,
                                         const ReplicationConfig& config);
// Claims the epoch after `seen` (epoch 1 when there was none) for `node`,
// only if the bucket still holds `seen`: kFailedPrecondition if another
// claim came first.
StatusOr<Epoch> ClaimEpoch(const Nats& nats, const ReplicationConfig& config,
                           const std::optional<Epoch>& seen,
                           const std::string& node);
// The subject of the fence a promotion writes into the log's stream (the
// epoch and the node, JSON): any publish by the replaced primary that
// expected the sequence before it is refused by JetStream.
std::string EpochSubject(const ReplicationConfig& config);

// A forwarded event as a message body (JSON), and back; kInvalidArgument
// when a body does not decode.
std::string EncodeForwarded(const ForwardedEvent& e);
StatusOr<ForwardedEvent> DecodeForwarded(std::string_view body);

// The stream's last sequence (0 when empty); kNotFound without the stream.
StatusOr<uint64_t> StreamLastSequence(const Nats& nats,
                                      const ReplicationConfig& config);

// The last record message in the stream: its sequence and bytes; nullopt
// when the stream holds no record.
struct StoredMessage {
  uint64_t sequence = 0;
  std::string data;
};
StatusOr<std::optional<StoredMessage>> LastRecord(
    const Nats& nats, const ReplicationConfig& config);
// The message holding record `position` of the log; nullopt when the
// stream does not hold it. (Searched from sequence `position` on: records
// are in position order, with only the promotions' fences between them.)
StatusOr<std::optional<StoredMessage>> FindRecord(
    const Nats& nats, const ReplicationConfig& config, uint64_t position);
// The last message on `subject` of `stream`; nullopt when there is none.
StatusOr<std::optional<StoredMessage>> LastOnSubject(
    const Nats& nats, const std::string& stream, const std::string& subject);

}  // namespace caseledger::replicate::internal
