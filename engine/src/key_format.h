// Key and value encodings of the engine's column families. The byte layouts
// are documented in engine/FORMAT.md; keep the two in step.
//
// All integers are fixed-width big-endian, so RocksDB's bytewise key order is
// numeric order.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "caseledger/storage.h"
#include "caseledger/types.h"

namespace caseledger::internal {

// Column family names.
inline constexpr char kLogCf[] = "log";                   // be64(position)
inline constexpr char kStreamIndexCf[] = "stream_index";  // u8 len|id|be64(v)
inline constexpr char kEventIdsCf[] = "event_ids";        // uuid16
inline constexpr char kStreamsCf[] = "streams";           // stream id
inline constexpr char kMetaCf[] = "meta";                 // fixed names

// Keys in the meta column family.
inline constexpr char kMetaFormatKey[] = "format";  // value: be32(version)
inline constexpr char kMetaHeadKey[] = "head";      // be64(position) | hash(32)
inline constexpr uint32_t kStoreFormatVersion = 1;

// log: be64(position)
inline std::string LogKey(uint64_t position) {
  std::string k;
  k.reserve(8);
  PutBe64(&k, position);
  return k;
}

// stream_index: u8(len(id)) | id | be64(version)
// The length byte makes the id a self-delimiting prefix: no id's keys can
// interleave with another's.
inline std::string StreamIndexPrefix(std::string_view stream_id) {
  std::string k;
  k.reserve(1 + stream_id.size() + 8);
  k.push_back(static_cast<char>(static_cast<uint8_t>(stream_id.size())));
  k.append(stream_id);
  return k;
}

inline std::string StreamIndexKey(std::string_view stream_id,
                                  uint64_t version) {
  std::string k = StreamIndexPrefix(stream_id);
  PutBe64(&k, version);
  return k;
}

// event_ids: the 16 raw bytes of the UUID.
inline std::string EventIdKey(const EventId& id) {
  return std::string(reinterpret_cast<const char*>(id.bytes().data()), 16);
}

// streams value: be64(last version) | be64(last position) | case hash(32)
struct StreamHead {
  uint64_t version = 0;
  uint64_t position = 0;
  Hash hash{};
};
std::string EncodeStreamHead(const StreamHead& head);
bool DecodeStreamHead(std::string_view value, StreamHead* head);

// meta "head": be64(position) | log hash(32)
std::string EncodeLogHead(const LogHead& head);
bool DecodeLogHead(std::string_view value, LogHead* head);

}  // namespace caseledger::internal
