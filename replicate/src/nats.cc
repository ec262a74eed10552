#include "replicate/src/nats.h"

#include <algorithm>
#include <chrono>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace caseledger::replicate::internal {

namespace {

Status Classify(natsStatus s, int jerr, std::string msg) {
  if (jerr == JSStreamNotFoundErr || jerr == JSConsumerNotFoundErr ||
      jerr == JSNoMessageFoundErr || s == NATS_NOT_FOUND) {
    return Status::NotFound(std::move(msg));
  }
  if (jerr == JSStreamWrongLastSequenceErr) {
    return Status::FailedPrecondition(std::move(msg));
  }
  switch (s) {
    case NATS_TIMEOUT:
    case NATS_NO_RESPONDERS:
    case NATS_CONNECTION_CLOSED:
    case NATS_CONNECTION_DISCONNECTED:
    case NATS_NO_SERVER:
    case NATS_STALE_CONNECTION:
    case NATS_IO_ERROR:
    case NATS_SLOW_CONSUMER:
      return Status::Unavailable(std::move(msg));
    default:
      break;
  }
  // JetStream answers "no leader yet" and "insufficient resources" while
  // the cluster elects or recovers.
  if (jerr == JSClusterNotAvailErr || jerr == JSClusterNoPeersErr ||
      jerr == JSInsufficientResourcesErr || jerr == JSStreamOfflineErr) {
    return Status::Unavailable(std::move(msg));
  }
  return Status::IOError(std::move(msg));
}

}  // namespace

Status FromNats(natsStatus s, int jerr, std::string_view what) {
  std::string msg = std::string(what) + ": " + natsStatus_GetText(s);
  if (jerr != 0) msg += " (JetStream error " + std::to_string(jerr) + ")";
  if (const char* last = nats_GetLastError(nullptr);
      last != nullptr && *last != '\0') {
    msg += ": ";
    msg += last;
  }
  return Classify(s, jerr, std::move(msg));
}

Status FromJetStream(int jerr, std::string_view description,
                     std::string_view what) {
  return Classify(NATS_ERR, jerr,
                  std::string(what) + ": JetStream error " +
                      std::to_string(jerr) + ": " + std::string(description));
}

Status Fetch(natsSubscription* sub, int max, Worker& worker,
             std::string_view what,
             const std::function<Status(natsMsgList&)>& apply) {
  natsMsgList list{nullptr, 0};
  jsErrCode jerr = static_cast<jsErrCode>(0);
  const auto t0 = std::chrono::steady_clock::now();
  const natsStatus s = natsSubscription_Fetch(&list, sub, max, 1000, &jerr);
  MsgListGuard guard{&list};
  if (s == NATS_OK) return apply(list);
  if (s != NATS_TIMEOUT) {
    return FromNats(s, jerr, "fetching from " + std::string(what));
  }
  if (std::chrono::steady_clock::now() - t0 < std::chrono::milliseconds(50)) {
    worker.Pause(std::chrono::milliseconds(100));
  }
  return Status::OK();
}

Status DrainedConsumer::Attach(const Nats& nats, const std::string& stream,
                               const std::string& filter,
                               const std::string& durable,
                               const char* description) {
  js_ = nats.js();
  stream_ = stream;
  durable_ = durable;
  jsConsumerConfig cc;
  jsConsumerConfig_Init(&cc);
  cc.Durable = durable.c_str();
  cc.Description = description;
  cc.DeliverPolicy = js_DeliverAll;
  cc.AckPolicy = js_AckAll;
  cc.AckWait = int64_t{30} * 1000 * 1000 * 1000;  // ns
  jsConsumerInfo* ci = nullptr;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  natsStatus s =
      js_AddConsumer(&ci, nats.js(), stream.c_str(), &cc, nullptr, &jerr);
  jsConsumerInfo_Destroy(ci);
  // An existing consumer with this configuration is answered OK.
  if (s != NATS_OK) return FromNats(s, jerr, "creating consumer " + durable);
  jsSubOptions so;
  jsSubOptions_Init(&so);
  so.Stream = stream.c_str();
  so.Consumer = durable.c_str();
  natsSubscription* raw = nullptr;
  jerr = static_cast<jsErrCode>(0);
  s = js_PullSubscribe(&raw, nats.js(), filter.c_str(), durable.c_str(),
                       nullptr, &so, &jerr);
  if (s != NATS_OK) return FromNats(s, jerr, "subscribing to " + durable);
  sub_.reset(raw);
  return Status::OK();
}

Status DrainedConsumer::Drain(
    const std::function<Status(std::vector<MsgPtr>)>& take) {
  constexpr uint64_t kBatch = 256;
  if (!sub_ || js_ == nullptr) {
    return Status::Unavailable(durable_ + " is not attached");
  }
  while (true) {
    jsConsumerInfo* ci = nullptr;
    jsErrCode jerr = static_cast<jsErrCode>(0);
    natsStatus s = js_GetConsumerInfo(&ci, js_, stream_.c_str(),
                                      durable_.c_str(), nullptr, &jerr);
    if (s != NATS_OK) return FromNats(s, jerr, "reading " + durable_);
    const uint64_t waiting = ci->NumPending;
    jsConsumerInfo_Destroy(ci);
    if (waiting == 0) return Status::OK();
    const int batch = static_cast<int>(std::min(waiting, kBatch));
    natsMsgList list{nullptr, 0};
    jerr = static_cast<jsErrCode>(0);
    s = natsSubscription_Fetch(&list, sub_.get(), batch, 5000, &jerr);
    MsgListGuard guard{&list};
    if (s == NATS_TIMEOUT) return Status::OK();  // taken meanwhile: later
    if (s != NATS_OK) return FromNats(s, jerr, "fetching from " + durable_);
    std::vector<MsgPtr> msgs;
    msgs.reserve(static_cast<size_t>(list.Count));
    for (int i = 0; i < list.Count; ++i) {
      msgs.emplace_back(list.Msgs[i]);
      list.Msgs[i] = nullptr;  // now `msgs`'
    }
    RETURN_IF_ERROR(take(std::move(msgs)));
  }
}

StatusOr<std::unique_ptr<Nats>> Nats::Connect(const ReplicationConfig& config) {
  natsOptions* opts = nullptr;
  if (natsOptions_Create(&opts) != NATS_OK) {
    return Status::IOError("cannot create NATS options");
  }
  struct OptsGuard {
    natsOptions* o;
    ~OptsGuard() { natsOptions_Destroy(o); }
  } guard{opts};
  std::vector<const char*> servers;
  servers.reserve(config.servers.size());
  for (const std::string& s : config.servers) servers.push_back(s.c_str());
  natsStatus s = natsOptions_SetServers(opts, servers.data(),
                                        static_cast<int>(servers.size()));
  const std::string name = "caseledger-" + config.node;
  if (s == NATS_OK) s = natsOptions_SetName(opts, name.c_str());
  if (s == NATS_OK) s = natsOptions_SetTimeout(opts, config.timeout.count());
  // Reconnect for ever: the cluster may be away for longer than any bound.
  if (s == NATS_OK) s = natsOptions_SetMaxReconnect(opts, -1);
  if (s == NATS_OK) s = natsOptions_SetReconnectWait(opts, 250);
  if (s == NATS_OK && !config.credentials_file.empty()) {
    s = natsOptions_SetUserCredentialsFromFiles(
        opts, config.credentials_file.c_str(), nullptr);
  }
  if (s == NATS_OK && !config.tls_ca_file.empty()) {
    s = natsOptions_SetSecure(opts, true);
    if (s == NATS_OK) {
      s = natsOptions_LoadCATrustedCertificates(opts,
                                                config.tls_ca_file.c_str());
    }
  }
  if (s != NATS_OK) return FromNats(s, 0, "configuring the NATS connection");

  std::unique_ptr<Nats> n(new Nats());
  s = natsConnection_Connect(&n->nc_, opts);
  if (s != NATS_OK) return FromNats(s, 0, "connecting to NATS");
  jsOptions jo;
  jsOptions_Init(&jo);
  jo.Wait = config.timeout.count();
  s = natsConnection_JetStream(&n->js_, n->nc_, &jo);
  if (s != NATS_OK) return FromNats(s, 0, "opening JetStream");
  return n;
}

Nats::~Nats() {
  if (js_ != nullptr) jsCtx_Destroy(js_);
  if (nc_ != nullptr) {
    natsConnection_Close(nc_);
    natsConnection_Destroy(nc_);
  }
}

bool Nats::connected() const {
  return nc_ != nullptr &&
         natsConnection_Status(nc_) == NATS_CONN_STATUS_CONNECTED;
}

std::string LogSubject(const ReplicationConfig& config) {
  return config.subjects + ".log";
}

namespace {

// Creates stream `name` on `subjects` if it does not exist (file storage,
// the configured replicas, a duplicate window of 2 minutes); an existing
// stream is left as it is.
// `keep_last` > 0 keeps only that many messages per subject, and lets
// messages be deleted and purged; otherwise a limits stream keeps every
// message for good.
Status EnsureStreamNamed(const Nats& nats, const ReplicationConfig& config,
                         const std::string& name, const std::string& subjects,
                         jsRetentionPolicy retention, const char* description,
                         int64_t keep_last = 0) {
  jsErrCode jerr = static_cast<jsErrCode>(0);
  jsStreamInfo* si = nullptr;
  natsStatus s = js_GetStreamInfo(&si, nats.js(), name.c_str(), nullptr, &jerr);
  if (s == NATS_OK) {
    jsStreamInfo_Destroy(si);
    return Status::OK();
  }
  Status got = FromNats(s, jerr, "reading stream " + name);
  if (!got.IsNotFound()) return got;

  const char* subject_list[] = {subjects.c_str()};
  jsStreamConfig sc;
  jsStreamConfig_Init(&sc);
  sc.Name = name.c_str();
  sc.Description = description;
  sc.Subjects = subject_list;
  sc.SubjectsLen = 1;
  sc.Storage = js_FileStorage;
  sc.Replicas = config.replicas;
  sc.Retention = retention;
  sc.Discard = js_DiscardNew;  // never drop a message to make room
  const bool for_good = retention == js_LimitsPolicy && keep_last == 0;
  sc.DenyDelete = for_good;
  sc.DenyPurge = for_good;
  if (keep_last > 0) sc.MaxMsgsPerSubject = keep_last;
  sc.Duplicates = int64_t{120} * 1000 * 1000 * 1000;  // 2 minutes, in ns
  jerr = static_cast<jsErrCode>(0);
  s = js_AddStream(&si, nats.js(), &sc, nullptr, &jerr);
  if (s == NATS_OK) {
    jsStreamInfo_Destroy(si);
    return Status::OK();
  }
  if (jerr == JSStreamNameExistErr) return Status::OK();  // raced another
  return FromNats(s, jerr, "creating stream " + name);
}

}  // namespace

Status EnsureStream(const Nats& nats, const ReplicationConfig& config) {
  // Messages are never deleted or purged: the stream is the log.
  return EnsureStreamNamed(nats, config, config.stream, config.subjects + ".>",
                           js_LimitsPolicy,
                           "caseledger: the event log, record by record");
}

Status EnsureStreamFor(const Nats& nats, const ReplicationConfig& config,
                       const std::string& name, const std::string& subjects,
                       const char* description) {
  return EnsureStreamNamed(nats, config, name, subjects, js_LimitsPolicy,
                           description);
}

std::string AccessStream(const ReplicationConfig& config) {
  return config.stream + "_ACCESS";
}

std::string AccessSubject(const ReplicationConfig& config) {
  return config.subjects + "-access.reads";
}

Status EnsureAccessStream(const Nats& nats, const ReplicationConfig& config) {
  // A work queue: a message goes once the primary has written it to the
  // log, which is then its record.
  return EnsureStreamNamed(nats, config, AccessStream(config),
                           config.subjects + "-access.>", js_WorkQueuePolicy,
                           "caseledger: followers' read records, for the "
                           "primary's log");
}

std::string KeyStream(const ReplicationConfig& config) {
  return config.stream + "_KEYS";
}

std::string Hex(std::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) {
    out.push_back(kDigits[c >> 4]);
    out.push_back(kDigits[c & 15]);
  }
  return out;
}

std::string KeySubject(const ReplicationConfig& config,
                       std::string_view case_id, std::string_view scope) {
  // Hex: a case id or a scope may hold dots, which separate subject tokens.
  return KeyCaseFilter(config, case_id) + "." + Hex(scope);
}

std::string KeyCaseFilter(const ReplicationConfig& config,
                          std::string_view case_id) {
  return config.subjects + "-keys." + Hex(case_id);
}

namespace {

constexpr char kEpochKey[] = "primary";

struct KvDeleter {
  void operator()(kvStore* kv) const { kvStore_Destroy(kv); }
};
using KvPtr = std::unique_ptr<kvStore, KvDeleter>;

StatusOr<KvPtr> EpochBucket(const Nats& nats, const ReplicationConfig& config) {
  const std::string bucket = config.stream + "_EPOCH";
  kvStore* kv = nullptr;
  natsStatus s = js_KeyValue(&kv, nats.js(), bucket.c_str());
  if (s == NATS_OK) return KvPtr(kv);
  Status got = FromNats(s, 0, "opening bucket " + bucket);
  if (!got.IsNotFound()) return got;
  kvConfig kc;
  kvConfig_Init(&kc);
  kc.Bucket = bucket.c_str();
  kc.Description = "caseledger: which node is the primary, at which epoch";
  kc.History = 64;  // the last promotions, for whoever investigates
  kc.StorageType = js_FileStorage;
  kc.Replicas = config.replicas;
  s = js_CreateKeyValue(&kv, nats.js(), &kc);
  if (s != NATS_OK) return FromNats(s, 0, "creating bucket " + bucket);
  return KvPtr(kv);
}

std::string EncodeEpoch(uint64_t number, const std::string& node) {
  return nlohmann::json{{"epoch", number}, {"node", node}}.dump();
}

}  // namespace

StatusOr<std::optional<Epoch>> ReadEpoch(const Nats& nats,
                                         const ReplicationConfig& config) {
  ASSIGN_OR_RETURN(KvPtr kv, EpochBucket(nats, config));
  kvEntry* e = nullptr;
  natsStatus s = kvStore_Get(&e, kv.get(), kEpochKey);
  if (s == NATS_NOT_FOUND) return std::optional<Epoch>();
  if (s != NATS_OK) return FromNats(s, 0, "reading the epoch");
  const std::string value(static_cast<const char*>(kvEntry_Value(e)),
                          static_cast<size_t>(kvEntry_ValueLen(e)));
  Epoch epoch;
  epoch.revision = kvEntry_Revision(e);
  kvEntry_Destroy(e);
  const auto j = nlohmann::json::parse(value, nullptr, false);
  if (!j.is_object() || !j.contains("epoch") ||
      !j["epoch"].is_number_unsigned() || !j.contains("node") ||
      !j["node"].is_string()) {
    return Status::Corruption("the epoch entry does not parse: " + value);
  }
  epoch.number = j["epoch"].get<uint64_t>();
  epoch.node = j["node"].get<std::string>();
  return std::optional<Epoch>(std::move(epoch));
}

StatusOr<Epoch> ClaimEpoch(const Nats& nats, const ReplicationConfig& config,
                           const std::optional<Epoch>& seen,
                           const std::string& node) {
  ASSIGN_OR_RETURN(KvPtr kv, EpochBucket(nats, config));
  Epoch next;
  next.number = seen ? seen->number + 1 : 1;
  next.node = node;
  const std::string value = EncodeEpoch(next.number, node);
  const int len = static_cast<int>(value.size());
  natsStatus s = seen ? kvStore_Update(&next.revision, kv.get(), kEpochKey,
                                       value.data(), len, seen->revision)
                      : kvStore_Create(&next.revision, kv.get(), kEpochKey,
                                       value.data(), len);
  if (s == NATS_OK) return next;
  if (s == NATS_ERR) {
    // The revision did not match (or the key existed): another claim.
    return Status::FailedPrecondition("the epoch changed while epoch " +
                                      std::to_string(next.number) +
                                      " was being claimed for " + node);
  }
  return FromNats(s, 0, "claiming epoch " + std::to_string(next.number));
}

std::string EpochSubject(const ReplicationConfig& config) {
  return config.subjects + ".epoch";
}

std::string KeyKekSubject(const ReplicationConfig& config) {
  return config.subjects + "-keys.kek";
}

Status EnsureKeyStream(const Nats& nats, const ReplicationConfig& config) {
  // One message per key (a newer wrapping replaces the older); an erasure
  // purges the key's subject.
  return EnsureStreamNamed(nats, config, KeyStream(config),
                           config.subjects + "-keys.>", js_LimitsPolicy,
                           "caseledger: data keys, wrapped by the KEK",
                           /*keep_last=*/1);
}

StatusOr<uint64_t> StreamLastSequence(const Nats& nats,
                                      const ReplicationConfig& config) {
  jsErrCode jerr = static_cast<jsErrCode>(0);
  jsStreamInfo* si = nullptr;
  natsStatus s =
      js_GetStreamInfo(&si, nats.js(), config.stream.c_str(), nullptr, &jerr);
  if (s != NATS_OK) {
    return FromNats(s, jerr, "reading stream " + config.stream);
  }
  const uint64_t last = si->State.LastSeq;
  jsStreamInfo_Destroy(si);
  return last;
}

StatusOr<std::optional<StoredMessage>> LastOnSubject(
    const Nats& nats, const std::string& stream, const std::string& subject) {
  jsErrCode jerr = static_cast<jsErrCode>(0);
  natsMsg* raw = nullptr;
  natsStatus s = js_GetLastMsg(&raw, nats.js(), stream.c_str(), subject.c_str(),
                               nullptr, &jerr);
  MsgPtr msg(raw);
  if (s != NATS_OK) {
    Status st = FromNats(s, jerr, "reading the last message on " + subject);
    if (st.IsNotFound() && jerr == JSNoMessageFoundErr) {
      return std::optional<StoredMessage>();
    }
    return st;
  }
  StoredMessage out;
  out.sequence = natsMsg_GetSequence(msg.get());
  out.data.assign(natsMsg_GetData(msg.get()),
                  static_cast<size_t>(natsMsg_GetDataLength(msg.get())));
  return std::optional<StoredMessage>(std::move(out));
}

StatusOr<std::optional<StoredMessage>> FindRecord(
    const Nats& nats, const ReplicationConfig& config, uint64_t position) {
  const std::string log = LogSubject(config);
  uint64_t seq = position;
  // Each step either lands on the record or skips what lies before it: at
  // most one step per fence between the stream's start and the record.
  for (int steps = 0; seq > 0 && steps < 100000; ++steps) {
    natsMsg* raw = nullptr;
    jsErrCode jerr = static_cast<jsErrCode>(0);
    natsStatus s =
        js_GetMsg(&raw, nats.js(), config.stream.c_str(), seq, nullptr, &jerr);
    MsgPtr msg(raw);
    if (s != NATS_OK) {
      Status st =
          FromNats(s, jerr, "reading stream sequence " + std::to_string(seq));
      if (st.IsNotFound()) return std::optional<StoredMessage>();
      return st;
    }
    if (log != natsMsg_GetSubject(msg.get())) {
      ++seq;
      continue;
    }
    StoredMessage m;
    m.sequence = seq;
    m.data.assign(natsMsg_GetData(msg.get()),
                  static_cast<size_t>(natsMsg_GetDataLength(msg.get())));
    ASSIGN_OR_RETURN(RecordedEvent e, DecodeStoredRecord(m.data));
    if (e.position.value() == position) {
      return std::optional<StoredMessage>(std::move(m));
    }
    if (e.position.value() > position) break;
    seq += position - e.position.value();
  }
  return std::optional<StoredMessage>();
}

StatusOr<std::optional<StoredMessage>> LastRecord(
    const Nats& nats, const ReplicationConfig& config) {
  return LastOnSubject(nats, config.stream, LogSubject(config));
}

}  // namespace caseledger::replicate::internal
