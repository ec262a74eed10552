#include "engine/src/record.h"

#include <openssl/evp.h>

#include <cstdlib>
#include <cstring>

#include "engine/src/key_format.h"

namespace caseledger::internal {
namespace {

// Fixed header: format(1) position(8) version(8) recorded_at(8)
// occurred_at(8) event_id(16) schema_version(4).
constexpr size_t kFixedHeader = 1 + 8 + 8 + 8 + 8 + 16 + 4;

void PutString(std::string* dst, std::string_view s) {
  PutBe32(dst, static_cast<uint32_t>(s.size()));
  dst->append(s);
}

bool GetString(std::string_view* in, std::string_view* out) {
  if (in->size() < 4) return false;
  uint32_t n = GetBe32(in->data());
  if (in->size() - 4 < n) return false;
  *out = in->substr(4, n);
  in->remove_prefix(4 + static_cast<size_t>(n));
  return true;
}

// OpenSSL's SHA-256 uses the CPU's SHA extensions where present; the digest
// is fetched once and each thread reuses its own context.
Hash Sha256Of2(const uint8_t* a, size_t an, const uint8_t* b, size_t bn) {
  static EVP_MD* const kSha256 = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  struct Ctx {
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    ~Ctx() { EVP_MD_CTX_free(ctx); }
  };
  thread_local Ctx t;
  Hash out;
  unsigned int len = 0;
  if (kSha256 == nullptr || t.ctx == nullptr ||
      EVP_DigestInit_ex(t.ctx, kSha256, nullptr) != 1 ||
      EVP_DigestUpdate(t.ctx, a, an) != 1 ||
      EVP_DigestUpdate(t.ctx, b, bn) != 1 ||
      EVP_DigestFinal_ex(t.ctx, out.data(), &len) != 1 || len != out.size()) {
    // Only a broken OpenSSL installation gets here; a wrong hash would be
    // worse than stopping.
    std::abort();
  }
  return out;
}

}  // namespace

namespace {

// The fields of the canonical bytes, wherever they come from.
struct CanonicalFields {
  const EventId& id;
  std::string_view stream_id;
  uint64_t version;
  uint64_t position;
  int64_t recorded_at;
  int64_t occurred_at;
  uint32_t schema_version;
  std::string_view type, actor_id, actor_role, correlation_id, causation_id,
      payload;
};

void EncodeFields(const CanonicalFields& f, std::string* dst) {
  dst->reserve(dst->size() + kFixedHeader + size_t{7} * 4 + f.stream_id.size() +
               f.type.size() + f.actor_id.size() + f.actor_role.size() +
               f.correlation_id.size() + f.causation_id.size() +
               f.payload.size() + 2 * kHashSize);
  dst->push_back(static_cast<char>(kRecordFormatV1));
  PutBe64(dst, f.position);
  PutBe64(dst, f.version);
  PutBe64(dst, static_cast<uint64_t>(f.recorded_at));
  PutBe64(dst, static_cast<uint64_t>(f.occurred_at));
  dst->append(reinterpret_cast<const char*>(f.id.bytes().data()), 16);
  PutBe32(dst, f.schema_version);
  PutString(dst, f.stream_id);
  PutString(dst, f.type);
  PutString(dst, f.actor_id);
  PutString(dst, f.actor_role);
  PutString(dst, f.correlation_id);
  PutString(dst, f.causation_id);
  PutString(dst, f.payload);
}

}  // namespace

void EncodeCanonical(const ProposedEvent& e, const EventId& id,
                     std::string_view stream_id, uint64_t version,
                     uint64_t position, int64_t recorded_at, std::string* dst) {
  EncodeFields({id, stream_id, version, position, recorded_at,
                e.occurred_at.value(), e.schema_version, e.type, e.actor.id,
                e.actor.role, e.correlation_id, e.causation_id, e.payload},
               dst);
}

Status DecodeRecord(std::string_view value, EventView* out) {
  if (value.size() < kFixedHeader + 2 * kHashSize) {
    return Status::Corruption("event record too short");
  }
  const char* p = value.data();
  if (static_cast<uint8_t>(p[0]) != kRecordFormatV1) {
    return Status::Corruption("unknown event record format " +
                              std::to_string(static_cast<uint8_t>(p[0])));
  }
  out->position = GetBe64(p + 1);
  out->version = GetBe64(p + 9);
  out->recorded_at = static_cast<int64_t>(GetBe64(p + 17));
  out->occurred_at = static_cast<int64_t>(GetBe64(p + 25));
  std::array<uint8_t, 16> id;
  std::memcpy(id.data(), p + 33, 16);
  out->event_id = EventId(id);
  out->schema_version = GetBe32(p + 49);
  std::string_view body = value.substr(0, value.size() - 2 * kHashSize);
  std::string_view rest = body.substr(kFixedHeader);
  if (!GetString(&rest, &out->stream_id) || !GetString(&rest, &out->type) ||
      !GetString(&rest, &out->actor_id) ||
      !GetString(&rest, &out->actor_role) ||
      !GetString(&rest, &out->correlation_id) ||
      !GetString(&rest, &out->causation_id) ||
      !GetString(&rest, &out->payload) || !rest.empty()) {
    return Status::Corruption("event record fields do not parse");
  }
  out->canonical = body;
  std::memcpy(out->case_hash.data(), value.data() + body.size(), kHashSize);
  std::memcpy(out->log_hash.data(), value.data() + body.size() + kHashSize,
              kHashSize);
  return Status::OK();
}

RecordedEvent ToRecordedEvent(const EventView& v) {
  RecordedEvent e;
  e.event_id = v.event_id;
  e.stream_id = std::string(v.stream_id);
  e.version = StreamVersion(v.version);
  e.position = GlobalPosition(v.position);
  e.type = std::string(v.type);
  e.schema_version = v.schema_version;
  e.recorded_at = Timestamp(v.recorded_at);
  e.occurred_at = Timestamp(v.occurred_at);
  e.actor = Actor{std::string(v.actor_id), std::string(v.actor_role)};
  e.correlation_id = std::string(v.correlation_id);
  e.causation_id = std::string(v.causation_id);
  // With room after the text for the padding simdjson reads past its end
  // (simdjson::SIMDJSON_PADDING, 64 bytes), so the projections parse it where
  // it is: a payload without that room is copied into a padded buffer first.
  e.payload.reserve(v.payload.size() + 64);
  e.payload.assign(v.payload);
  e.case_hash = v.case_hash;
  e.log_hash = v.log_hash;
  return e;
}

bool SameContent(const EventView& stored, std::string_view stream_id,
                 const ProposedEvent& e) {
  return stored.stream_id == stream_id && stored.type == e.type &&
         stored.schema_version == e.schema_version &&
         stored.occurred_at == e.occurred_at.value() &&
         stored.actor_id == e.actor.id && stored.actor_role == e.actor.role &&
         stored.correlation_id == e.correlation_id &&
         stored.causation_id == e.causation_id && stored.payload == e.payload;
}

Hash ChainCaseHash(const Hash& prev_case_hash, std::string_view canonical) {
  return Sha256Of2(prev_case_hash.data(), prev_case_hash.size(),
                   reinterpret_cast<const uint8_t*>(canonical.data()),
                   canonical.size());
}

Hash ChainLogHash(const Hash& prev_log_hash, const Hash& case_hash) {
  return Sha256Of2(prev_log_hash.data(), prev_log_hash.size(), case_hash.data(),
                   case_hash.size());
}

std::string EncodeStreamHead(const StreamHead& head) {
  std::string v;
  v.reserve(16 + kHashSize);
  PutBe64(&v, head.version);
  PutBe64(&v, head.position);
  v.append(reinterpret_cast<const char*>(head.hash.data()), kHashSize);
  return v;
}

bool DecodeStreamHead(std::string_view value, StreamHead* head) {
  if (value.size() != 16 + kHashSize) return false;
  head->version = GetBe64(value.data());
  head->position = GetBe64(value.data() + 8);
  std::memcpy(head->hash.data(), value.data() + 16, kHashSize);
  return true;
}

std::string EncodeLogHead(const LogHead& head) {
  std::string v;
  v.reserve(8 + kHashSize);
  PutBe64(&v, head.position.value());
  v.append(reinterpret_cast<const char*>(head.log_hash.data()), kHashSize);
  return v;
}

bool DecodeLogHead(std::string_view value, LogHead* head) {
  if (value.size() != 8 + kHashSize) return false;
  head->position = GlobalPosition(GetBe64(value.data()));
  std::memcpy(head->log_hash.data(), value.data() + 8, kHashSize);
  return true;
}

}  // namespace caseledger::internal

namespace caseledger {

std::string EncodeStoredRecord(const RecordedEvent& e) {
  std::string out;
  internal::EncodeFields(
      {e.event_id, e.stream_id, e.version.value(), e.position.value(),
       e.recorded_at.value(), e.occurred_at.value(), e.schema_version, e.type,
       e.actor.id, e.actor.role, e.correlation_id, e.causation_id, e.payload},
      &out);
  out.append(reinterpret_cast<const char*>(e.case_hash.data()),
             internal::kHashSize);
  out.append(reinterpret_cast<const char*>(e.log_hash.data()),
             internal::kHashSize);
  return out;
}

StatusOr<RecordedEvent> DecodeStoredRecord(std::string_view bytes) {
  internal::EventView v;
  RETURN_IF_ERROR(internal::DecodeRecord(bytes, &v));
  return internal::ToRecordedEvent(v);
}

}  // namespace caseledger
