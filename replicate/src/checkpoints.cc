#include "replicate/src/checkpoints.h"

#include <openssl/evp.h>
#include <spdlog/spdlog.h>

#include <nlohmann/json.hpp>

#include "caseledger/keys/keys.h"

namespace caseledger::replicate::internal {
namespace {

constexpr size_t kSignatureBytes = 64;
constexpr size_t kPublicKeyBytes = 32;

// nullopt unless `hex` is 2 * `bytes` hexadecimal digits.
std::optional<std::string> FromHex(std::string_view hex, size_t bytes) {
  if (hex.size() != 2 * bytes) return std::nullopt;
  auto digit = [](char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::string out(bytes, '\0');
  for (size_t i = 0; i < bytes; ++i) {
    const int hi = digit(hex[2 * i]);
    const int lo = digit(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out[i] = static_cast<char>(hi * 16 + lo);
  }
  return out;
}

struct PkeyDeleter {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
struct MdCtxDeleter {
  void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};
using MdCtxPtr = std::unique_ptr<EVP_MD_CTX, MdCtxDeleter>;

const unsigned char* Bytes(std::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}

}  // namespace

std::string CheckpointStream(const ReplicationConfig& config) {
  return config.stream + "_CHECKPOINTS";
}

std::string CheckpointSubject(const ReplicationConfig& config) {
  return config.subjects + "-checkpoints.signed";
}

std::string EncodeCheckpoint(const SignedCheckpoint& c) {
  return nlohmann::json{{"position", c.position},
                        {"log_hash", HashToHex(c.log_hash)},
                        {"epoch", c.epoch},
                        {"node", c.node},
                        {"signature", Hex(c.signature)}}
      .dump();
}

StatusOr<SignedCheckpoint> DecodeCheckpoint(std::string_view body) {
  const auto j = nlohmann::json::parse(body, nullptr, false);
  SignedCheckpoint c;
  std::optional<std::string> hash, signature;
  if (j.is_object() && j.contains("position") &&
      j["position"].is_number_unsigned() && j.contains("epoch") &&
      j["epoch"].is_number_unsigned() && j.contains("node") &&
      j["node"].is_string() && j.contains("log_hash") &&
      j["log_hash"].is_string() && j.contains("signature") &&
      j["signature"].is_string()) {
    c.position = j["position"].get<uint64_t>();
    c.epoch = j["epoch"].get<uint64_t>();
    c.node = j["node"].get<std::string>();
    hash = FromHex(j["log_hash"].get<std::string>(), c.log_hash.size());
    signature = FromHex(j["signature"].get<std::string>(), kSignatureBytes);
  }
  if (!hash || !signature) {
    return Status::InvalidArgument("a message is not a signed checkpoint");
  }
  std::copy(hash->begin(), hash->end(), c.log_hash.begin());
  c.signature = std::move(*signature);
  return c;
}

std::string SignedBytes(const ReplicationConfig& config,
                        const SignedCheckpoint& c) {
  std::string out = "caseledger checkpoint 1";
  for (const std::string& part :
       {config.stream, std::to_string(c.position), HashToHex(c.log_hash),
        std::to_string(c.epoch), c.node}) {
    out.push_back('\n');
    out += part;
  }
  return out;
}

StatusOr<std::unique_ptr<Signer>> Signer::FromFile(const std::string& path) {
  ASSIGN_OR_RETURN(std::unique_ptr<keys::SecretKey> seed,
                   keys::ReadSecretFile(path, "signing key"));
  std::unique_ptr<Signer> s(new Signer());
  EVP_PKEY* key = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, nullptr,
                                               seed->data(), keys::kKeyBytes);
  if (key == nullptr) {
    return Status::InvalidArgument("signing key file " + path +
                                   ": not an Ed25519 key");
  }
  s->key_ = key;
  std::string pub(kPublicKeyBytes, '\0');
  size_t len = pub.size();
  if (EVP_PKEY_get_raw_public_key(
          key, reinterpret_cast<unsigned char*>(pub.data()), &len) != 1 ||
      len != kPublicKeyBytes) {
    return Status::IOError("deriving the public key of " + path);
  }
  s->public_hex_ = Hex(pub);
  return s;
}

Signer::~Signer() { EVP_PKEY_free(static_cast<EVP_PKEY*>(key_)); }

StatusOr<std::string> Signer::Sign(std::string_view bytes) const {
  MdCtxPtr ctx(EVP_MD_CTX_new());
  std::string sig(kSignatureBytes, '\0');
  size_t len = sig.size();
  if (!ctx ||
      EVP_DigestSignInit(ctx.get(), nullptr, nullptr, nullptr,
                         static_cast<EVP_PKEY*>(key_)) != 1 ||
      EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()),
                     &len, Bytes(bytes), bytes.size()) != 1 ||
      len != kSignatureBytes) {
    return Status::IOError("signing a checkpoint failed");
  }
  return sig;
}

StatusOr<bool> SignatureValid(const std::string& public_key_hex,
                              std::string_view bytes,
                              std::string_view signature) {
  std::optional<std::string> pub = FromHex(public_key_hex, kPublicKeyBytes);
  if (!pub) {
    return Status::InvalidArgument(
        "the checkpoint public key must be 64 hexadecimal digits");
  }
  std::unique_ptr<EVP_PKEY, PkeyDeleter> key(EVP_PKEY_new_raw_public_key(
      EVP_PKEY_ED25519, nullptr, Bytes(*pub), pub->size()));
  MdCtxPtr ctx(EVP_MD_CTX_new());
  if (!key || !ctx) {
    return Status::InvalidArgument("the checkpoint public key is not one");
  }
  if (EVP_DigestVerifyInit(ctx.get(), nullptr, nullptr, nullptr, key.get()) !=
      1) {
    return Status::IOError("verifying a checkpoint's signature failed");
  }
  return signature.size() == kSignatureBytes &&
         EVP_DigestVerify(ctx.get(), Bytes(signature), signature.size(),
                          Bytes(bytes), bytes.size()) == 1;
}

Status CheckAgainst(const EventStore& store, const ReplicationConfig& config,
                    const std::string& public_key_hex,
                    const SignedCheckpoint& c) {
  const std::string at = "the signed checkpoint at position " +
                         std::to_string(c.position) + " (epoch " +
                         std::to_string(c.epoch) + ", node " + c.node + ")";
  ASSIGN_OR_RETURN(
      bool valid,
      SignatureValid(public_key_hex, SignedBytes(config, c), c.signature));
  if (!valid) {
    return Status::Corruption(at + " is not signed by the configured key");
  }
  if (c.position == 0) return Status::OK();
  ASSIGN_OR_RETURN(std::vector<RecordedEvent> record,
                   store.ReadAll(GlobalPosition(c.position - 1), 1));
  if (record.empty() || record.front().position.value() != c.position) {
    return Status::Unavailable("this log does not reach " + at + " yet");
  }
  if (record.front().log_hash != c.log_hash) {
    return Status::Corruption(
        "this log's hash at position " + std::to_string(c.position) + " is " +
        HashToHex(record.front().log_hash) + ", not the " +
        HashToHex(c.log_hash) + " of " + at +
        ": its history was rewritten, here or on the primary");
  }
  return Status::OK();
}

Status EnsureCheckpointStream(const Nats& nats,
                              const ReplicationConfig& config) {
  return EnsureStreamFor(nats, config, CheckpointStream(config),
                         config.subjects + "-checkpoints.>",
                         "caseledger: the signed heads of the log");
}

Status CheckpointChecker::Attach(const Nats& nats) {
  RETURN_IF_ERROR(EnsureCheckpointStream(nats, config_));
  return consumer_.Attach(nats, CheckpointStream(config_),
                          config_.subjects + "-checkpoints.>", durable_,
                          "caseledger follower: signed checkpoints");
}

Status CheckpointChecker::Check(const EventStore& store) {
  if (!enabled()) return Status::OK();
  // (Those waiting stay unacknowledged; the consumer delivers at most
  // 1,000 such, so fewer than that are taken.)
  if (waiting_.size() < 512) {
    bool enough = false;
    Status drained = consumer_.Drain([&](std::vector<MsgPtr> batch) -> Status {
      for (MsgPtr& m : batch) {
        ASSIGN_OR_RETURN(
            SignedCheckpoint c,
            DecodeCheckpoint(std::string_view(
                natsMsg_GetData(m.get()),
                static_cast<size_t>(natsMsg_GetDataLength(m.get())))));
        waiting_.emplace_back(std::move(c), std::move(m));
      }
      // Enough for now: the rest once the log has caught up with these.
      enough = waiting_.size() >= 512;
      return enough ? Status::Unavailable("enough waiting") : Status::OK();
    });
    if (!enough) RETURN_IF_ERROR(drained);
  }
  while (!waiting_.empty()) {
    Status s = CheckAgainst(store, config_, config_.checkpoint_public_key,
                            waiting_.front().first);
    if (s.IsUnavailable()) break;  // the log has yet to reach it
    RETURN_IF_ERROR(s);
    natsMsg_Ack(waiting_.front().second.get(), nullptr);
    waiting_.pop_front();
    ++checked_;
  }
  return Status::OK();
}

}  // namespace caseledger::replicate::internal

namespace caseledger::replicate {

StatusOr<std::string> CreateSigningKey(const std::string& path) {
  RETURN_IF_ERROR(keys::CreateSecretFile(path, "signing key").status());
  return SigningPublicKey(path);
}

StatusOr<std::string> SigningPublicKey(const std::string& path) {
  ASSIGN_OR_RETURN(std::unique_ptr<internal::Signer> signer,
                   internal::Signer::FromFile(path));
  return signer->public_key_hex();
}

StatusOr<CheckpointReport> VerifyCheckpoints(const EventStore& store,
                                             const ReplicationConfig& config) {
  RETURN_IF_ERROR(CheckConfig(config));
  if (config.checkpoint_public_key.empty()) {
    return Status::InvalidArgument(
        "verifying checkpoints needs the signing key's public half");
  }
  ASSIGN_OR_RETURN(std::unique_ptr<internal::Nats> nats,
                   internal::Nats::Connect(config));
  const std::string stream = internal::CheckpointStream(config);
  jsErrCode jerr = static_cast<jsErrCode>(0);
  jsStreamInfo* si = nullptr;
  natsStatus s =
      js_GetStreamInfo(&si, nats->js(), stream.c_str(), nullptr, &jerr);
  if (s != NATS_OK) {
    return internal::FromNats(s, jerr, "reading stream " + stream);
  }
  const uint64_t first = si->State.FirstSeq, last = si->State.LastSeq;
  jsStreamInfo_Destroy(si);
  CheckpointReport report;
  for (uint64_t seq = first; seq != 0 && seq <= last; ++seq) {
    natsMsg* raw = nullptr;
    jerr = static_cast<jsErrCode>(0);
    s = js_GetMsg(&raw, nats->js(), stream.c_str(), seq, nullptr, &jerr);
    internal::MsgPtr m(raw);
    if (s != NATS_OK) {
      return internal::FromNats(s, jerr,
                                "reading checkpoint " + std::to_string(seq));
    }
    ASSIGN_OR_RETURN(SignedCheckpoint c,
                     internal::DecodeCheckpoint(std::string_view(
                         natsMsg_GetData(m.get()),
                         static_cast<size_t>(natsMsg_GetDataLength(m.get())))));
    Status checked =
        internal::CheckAgainst(store, config, config.checkpoint_public_key, c);
    if (checked.IsUnavailable()) {
      ++report.beyond_head;
      continue;
    }
    RETURN_IF_ERROR(checked);
    ++report.checked;
    report.last_position = std::max(report.last_position, c.position);
  }
  return report;
}

}  // namespace caseledger::replicate
