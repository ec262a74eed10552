// The stored event record (the value in the `log` column family) and the
// SHA-256 chain over it. Layout in engine/FORMAT.md.
#pragma once

#include <string>
#include <string_view>

#include "caseledger/status.h"
#include "caseledger/types.h"

namespace caseledger::internal {

inline constexpr uint8_t kRecordFormatV1 = 1;
inline constexpr size_t kHashSize = 32;

// A decoded record whose strings point into the stored bytes. Valid only as
// long as those bytes are.
struct EventView {
  EventId event_id;
  std::string_view stream_id;
  uint64_t version = 0;
  uint64_t position = 0;
  std::string_view type;
  uint32_t schema_version = 0;
  int64_t recorded_at = 0;
  int64_t occurred_at = 0;
  std::string_view actor_id;
  std::string_view actor_role;
  std::string_view correlation_id;
  std::string_view causation_id;
  std::string_view payload;
  // The bytes the case hash covers (everything before the two hashes).
  std::string_view canonical;
  Hash case_hash{};
  Hash log_hash{};
};

// Appends the canonical bytes of an event (no hashes) to *dst.
void EncodeCanonical(const ProposedEvent& e, const EventId& id,
                     std::string_view stream_id, uint64_t version,
                     uint64_t position, int64_t recorded_at, std::string* dst);

// Decodes a stored record; kCorruption when the bytes do not parse.
Status DecodeRecord(std::string_view value, EventView* out);

RecordedEvent ToRecordedEvent(const EventView& v);

// True when a stored event carries the same caller-supplied content as `e`
// proposed for `stream_id` (everything but the store-assigned fields).
bool SameContent(const EventView& stored, std::string_view stream_id,
                 const ProposedEvent& e);

// case_hash = SHA-256(prev_case_hash | canonical)
Hash ChainCaseHash(const Hash& prev_case_hash, std::string_view canonical);
// log_hash = SHA-256(prev_log_hash | case_hash)
Hash ChainLogHash(const Hash& prev_log_hash, const Hash& case_hash);

}  // namespace caseledger::internal
