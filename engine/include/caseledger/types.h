// Value types of the event store: strong ids and positions, the event
// envelope as proposed by a caller and as recorded by the store.
#pragma once

#include <array>
#include <atomic>
#include <compare>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "caseledger/status.h"

namespace caseledger {

// A value with a tag, so that a version can never be passed where a position
// is expected (after redpanda's named_type).
template <typename T, typename Tag>
class NamedType {
 public:
  constexpr NamedType() = default;
  constexpr explicit NamedType(T v) : value_(v) {}
  constexpr T value() const { return value_; }
  constexpr auto operator<=>(const NamedType&) const = default;

 private:
  T value_{};
};

// 1-based version of an event within its case (stream). A case with no
// events has version 0; its first event has version 1.
using StreamVersion = NamedType<uint64_t, struct StreamVersionTag>;

// 1-based position of an event in the whole log: gapless and strictly
// increasing in commit order. Position 0 means "before the first event".
using GlobalPosition = NamedType<uint64_t, struct GlobalPositionTag>;

// Microseconds since the Unix epoch, UTC.
using Timestamp = NamedType<int64_t, struct TimestampTag>;

Timestamp NowUtc();

// A clock whose time can be set: what a simulation (demo seeding, a test)
// gives a store as its clock (Options::clock = clock.Function()), so that
// everything stamped and every "now" above the store follow the simulated
// time. Unset (or Reset), it reads the system clock. Thread-safe; must
// outlive what reads it.
class SettableClock {
 public:
  Timestamp Now() const {
    const int64_t t = micros_.load(std::memory_order_acquire);
    return t != 0 ? Timestamp(t) : NowUtc();
  }
  void Set(Timestamp t) { micros_.store(t.value(), std::memory_order_release); }
  void Reset() { micros_.store(0, std::memory_order_release); }
  std::function<Timestamp()> Function() const {
    return [this] { return Now(); };
  }

 private:
  std::atomic<int64_t> micros_{0};
};
// RFC 3339 with microseconds, e.g. "2026-11-22T05:30:41.123456Z".
std::string FormatTimestamp(Timestamp t);
// Accepts RFC 3339 / ISO 8601 "YYYY-MM-DDTHH:MM:SS[.ffffff](Z|+HH:MM)".
StatusOr<Timestamp> ParseTimestamp(std::string_view text);
// "YYYY-MM" of `t` (UTC).
std::string MonthOf(Timestamp t);

// A stream (case) id: 1 to 128 characters from [A-Za-z0-9._:-].
// The restriction keeps ids printable, unambiguous in keys, and safe in URLs.
Status ValidateStreamId(std::string_view id);
inline constexpr size_t kMaxStreamIdLength = 128;

// A 128-bit event id, printed as a lowercase RFC 9562 UUID string.
class EventId {
 public:
  EventId() = default;  // the nil UUID
  explicit EventId(const std::array<uint8_t, 16>& bytes) : bytes_(bytes) {}

  // A new time-ordered (version 7) UUID: ids generated close in time are
  // close in key order, which keeps the event-id index compact.
  static EventId NewV7();
  static StatusOr<EventId> Parse(std::string_view text);

  bool IsNil() const;
  std::string ToString() const;
  // The same 36 characters, written at `out` (no allocation).
  void FormatTo(char* out) const;
  const std::array<uint8_t, 16>& bytes() const { return bytes_; }
  auto operator<=>(const EventId&) const = default;

 private:
  std::array<uint8_t, 16> bytes_{};
};

// SHA-256 digest.
using Hash = std::array<uint8_t, 32>;
std::string HashToHex(const Hash& h);
// SHA-256 of `data`, in lower-case hex. (OpenSSL's; a process whose OpenSSL
// cannot hash stops rather than hash wrongly.)
std::string Sha256Hex(std::string_view data);

struct Actor {
  std::string id;
  std::string role;
  bool operator==(const Actor&) const = default;
};

// What a caller expects the case's version to be before its append.
class ExpectedVersion {
 public:
  enum class Kind : uint8_t { kAny, kNoStream, kStreamExists, kExact };

  static ExpectedVersion Any() { return ExpectedVersion(Kind::kAny, 0); }
  static ExpectedVersion NoStream() {
    return ExpectedVersion(Kind::kNoStream, 0);
  }
  static ExpectedVersion StreamExists() {
    return ExpectedVersion(Kind::kStreamExists, 0);
  }
  // The case must be at exactly `v` (0 is the same as NoStream).
  static ExpectedVersion Exact(StreamVersion v) {
    return ExpectedVersion(Kind::kExact, v.value());
  }

  Kind kind() const { return kind_; }
  uint64_t version() const { return version_; }
  bool Matches(uint64_t current) const;
  std::string ToString() const;

 private:
  ExpectedVersion(Kind k, uint64_t v) : kind_(k), version_(v) {}
  Kind kind_;
  uint64_t version_;
};

// An event as a caller proposes it. The store adds the case, version,
// position, recorded-at time and hashes.
struct ProposedEvent {
  EventId event_id;             // nil: the store assigns a new UUIDv7
  std::string type;             // e.g. "ConcernReported"; 1..128 chars
  uint32_t schema_version = 1;  // of `type`'s payload schema
  Timestamp occurred_at;        // client-supplied; 0 if not known
  Actor actor;
  std::string correlation_id;
  std::string causation_id;
  std::string payload;  // a JSON document (checked well-formed on append)
};

// A stored event, owning its fields.
struct RecordedEvent {
  EventId event_id;
  std::string stream_id;
  StreamVersion version;
  GlobalPosition position;
  std::string type;
  uint32_t schema_version = 0;
  Timestamp recorded_at;
  Timestamp occurred_at;
  Actor actor;
  std::string correlation_id;
  std::string causation_id;
  // As stored; read from the log, with at least 64 bytes of capacity after
  // it, the padding simdjson reads past a text's end (FORMAT.md).
  std::string payload;
  // SHA-256(previous case hash || canonical record bytes).
  Hash case_hash{};
  // SHA-256(previous log hash || case_hash).
  Hash log_hash{};
};

// The result of one append call, covering all of its events.
struct AppendResult {
  StreamVersion first_version;
  StreamVersion last_version;
  GlobalPosition first_position;
  GlobalPosition last_position;
  std::vector<EventId> event_ids;
  // True when every event was already stored with the same content: nothing
  // was written and the original versions and positions are returned.
  bool deduplicated = false;
};

// The head of the whole log.
struct LogHead {
  GlobalPosition position;  // 0 for an empty log
  Hash log_hash{};          // all zero for an empty log
};

}  // namespace caseledger
