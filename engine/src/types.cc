#include "caseledger/types.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <pthread.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <mutex>

namespace caseledger {
namespace {

constexpr char kHex[] = "0123456789abcdef";

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Reads exactly `n` decimal digits at text[*i], advancing *i.
bool ReadDigits(std::string_view text, size_t* i, int n, int* out) {
  if (*i + static_cast<size_t>(n) > text.size()) return false;
  int v = 0;
  for (int k = 0; k < n; ++k) {
    char c = text[*i + static_cast<size_t>(k)];
    if (c < '0' || c > '9') return false;
    v = v * 10 + (c - '0');
  }
  *i += static_cast<size_t>(n);
  *out = v;
  return true;
}

bool Expect(std::string_view text, size_t* i, char c) {
  if (*i >= text.size() || text[*i] != c) return false;
  ++*i;
  return true;
}

}  // namespace

Timestamp NowUtc() {
  using namespace std::chrono;
  return Timestamp(
      duration_cast<microseconds>(system_clock::now().time_since_epoch())
          .count());
}

namespace {

// Days since 1970-01-01 -> proleptic Gregorian (year, month, day): Howard
// Hinnant's days_from_civil inverse, exact over the whole int64 range used.
void CivilFromDays(int64_t z, int64_t* y, int* m, int* d) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const int64_t doe = z - era * 146097;  // [0, 146096]
  const int64_t yoe =
      (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;    // [0, 399]
  const int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);  // [0, 365]
  const int64_t mp = (5 * doy + 2) / 153;                       // [0, 11]
  *d = static_cast<int>(doy - (153 * mp + 2) / 5 + 1);
  *m = static_cast<int>(mp < 10 ? mp + 3 : mp - 9);
  *y = yoe + era * 400 + (*m <= 2 ? 1 : 0);
}

// Writes `v` as exactly `n` decimal digits ending just before `end`.
void PutDigits(char* end, int n, int64_t v) {
  for (int k = 0; k < n; ++k) {
    *--end = static_cast<char>('0' + v % 10);
    v /= 10;
  }
}

}  // namespace

// Computed directly rather than through gmtime_r and snprintf: glibc's
// gmtime_r takes the time-zone lock on every call, and documents and feed
// records format several timestamps each.
std::string FormatTimestamp(Timestamp t) {
  const int64_t us = t.value();
  int64_t secs = us / 1000000;
  int64_t frac = us % 1000000;
  if (frac < 0) {
    frac += 1000000;
    secs -= 1;
  }
  int64_t days = secs / 86400;
  int64_t sod = secs % 86400;
  if (sod < 0) {
    sod += 86400;
    days -= 1;
  }
  int64_t year = 0;
  int month = 0, day = 0;
  CivilFromDays(days, &year, &month, &day);
  if (year < 0 || year > 9999) {
    // Outside what four digits hold (never a real record); as before.
    char buf[64];
    std::snprintf(
        buf, sizeof(buf), "%04lld-%02d-%02dT%02lld:%02lld:%02lld.%06lldZ",
        static_cast<long long>(year), month, day,
        static_cast<long long>(sod / 3600),
        static_cast<long long>(sod / 60 % 60), static_cast<long long>(sod % 60),
        static_cast<long long>(frac));
    return buf;
  }
  std::string out = "0000-00-00T00:00:00.000000Z";
  char* p = out.data();
  PutDigits(p + 4, 4, year);
  PutDigits(p + 7, 2, month);
  PutDigits(p + 10, 2, day);
  PutDigits(p + 13, 2, sod / 3600);
  PutDigits(p + 16, 2, sod / 60 % 60);
  PutDigits(p + 19, 2, sod % 60);
  PutDigits(p + 26, 6, frac);
  return out;
}

StatusOr<Timestamp> ParseTimestamp(std::string_view text) {
  size_t i = 0;
  int year = 0, mon = 0, day = 0, hour = 0, min = 0, sec = 0;
  auto bad = [&] {
    return Status::InvalidArgument(
        "timestamp must be RFC 3339, e.g. 2026-01-31T09:30:00Z: '" +
        std::string(text.substr(0, 64)) + "'");
  };
  if (!ReadDigits(text, &i, 4, &year) || !Expect(text, &i, '-') ||
      !ReadDigits(text, &i, 2, &mon) || !Expect(text, &i, '-') ||
      !ReadDigits(text, &i, 2, &day)) {
    return bad();
  }
  if (i >= text.size() || (text[i] != 'T' && text[i] != 't' && text[i] != ' '))
    return bad();
  ++i;
  if (!ReadDigits(text, &i, 2, &hour) || !Expect(text, &i, ':') ||
      !ReadDigits(text, &i, 2, &min) || !Expect(text, &i, ':') ||
      !ReadDigits(text, &i, 2, &sec)) {
    return bad();
  }
  int64_t micros = 0;
  if (i < text.size() && text[i] == '.') {
    ++i;
    int digits = 0;
    while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
      if (digits < 6) micros = micros * 10 + (text[i] - '0');
      ++digits;
      ++i;
    }
    if (digits == 0) return bad();
    for (int k = digits; k < 6; ++k) micros *= 10;
  }
  int64_t offset_secs = 0;
  if (i < text.size() && (text[i] == 'Z' || text[i] == 'z')) {
    ++i;
  } else if (i < text.size() && (text[i] == '+' || text[i] == '-')) {
    int sign = text[i] == '-' ? -1 : 1;
    ++i;
    int oh, om;
    if (!ReadDigits(text, &i, 2, &oh) || !Expect(text, &i, ':') ||
        !ReadDigits(text, &i, 2, &om) || oh > 23 || om > 59) {
      return bad();
    }
    offset_secs = sign * (int64_t{oh} * 3600 + int64_t{om} * 60);
  } else {
    return bad();
  }
  if (i != text.size()) return bad();
  if (mon < 1 || mon > 12 || day < 1 || hour > 23 || min > 59 || sec > 60)
    return bad();
  using namespace std::chrono;
  year_month_day ymd{std::chrono::year(year), month(static_cast<unsigned>(mon)),
                     std::chrono::day(static_cast<unsigned>(day))};
  if (!ymd.ok()) return bad();
  int64_t days = sys_days(ymd).time_since_epoch().count();
  int64_t secs = days * 86400 + int64_t{hour} * 3600 + int64_t{min} * 60 + sec -
                 offset_secs;
  return Timestamp(secs * 1000000 + micros);
}

Status ValidateStreamId(std::string_view id) {
  if (id.empty() || id.size() > kMaxStreamIdLength) {
    return Status::InvalidArgument("case id must be 1 to 128 characters");
  }
  for (char c : id) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '.' || c == '_' || c == ':' ||
              c == '-';
    if (!ok) {
      return Status::InvalidArgument(
          "case id may contain only letters, digits and . _ : -");
    }
  }
  return Status::OK();
}

namespace {

// Bumped in a child after fork(), so the child never hands out random bytes
// its parent took already.
std::atomic<uint64_t> g_fork_generation{0};

// Random bytes from OpenSSL's DRBG (cryptographic quality), fetched a
// kilobyte at a time per thread: one RAND_bytes call costs more than 2 us
// here whatever its length, and every append of an event without an id
// needs 10 bytes.
void PooledRandomBytes(uint8_t* out, size_t n) {
  static std::once_flag once;
  std::call_once(once, [] {
    pthread_atfork(nullptr, nullptr, [] {
      g_fork_generation.fetch_add(1, std::memory_order_relaxed);
    });
  });
  struct Pool {
    std::array<uint8_t, 1024> bytes;
    size_t used = sizeof(bytes);
    uint64_t generation = 0;
    ~Pool() {
      OPENSSL_cleanse(bytes.data(), bytes.size());
      used = bytes.size();  // a late call (from a later destructor) refills
    }
  };
  thread_local Pool pool;
  const uint64_t generation = g_fork_generation.load(std::memory_order_relaxed);
  if (pool.used + n > pool.bytes.size() || pool.generation != generation) {
    if (RAND_bytes(pool.bytes.data(), static_cast<int>(pool.bytes.size())) !=
        1) {
      std::abort();  // no randomness: an id could repeat; better to stop
    }
    pool.used = 0;
    pool.generation = generation;
  }
  std::memcpy(out, pool.bytes.data() + pool.used, n);
  OPENSSL_cleanse(pool.bytes.data() + pool.used, n);  // handed out once
  pool.used += n;
}

}  // namespace

EventId EventId::NewV7() {
  std::array<uint8_t, 16> b{};
  PooledRandomBytes(b.data() + 6, b.size() - 6);
  uint64_t ms = static_cast<uint64_t>(NowUtc().value() / 1000);
  for (int k = 0; k < 6; ++k) {
    b[static_cast<size_t>(k)] = static_cast<uint8_t>(ms >> (40 - 8 * k));
  }
  b[6] = static_cast<uint8_t>(0x70 | (b[6] & 0x0F));  // version 7
  b[8] = static_cast<uint8_t>(0x80 | (b[8] & 0x3F));  // RFC 9562 variant
  return EventId(b);
}

StatusOr<EventId> EventId::Parse(std::string_view text) {
  std::array<uint8_t, 16> b{};
  size_t n = 0;
  if (text.size() != 36) {
    return Status::InvalidArgument(
        "event id must be a UUID like 01890a5d-ac96-774b-bcce-b302099a8057");
  }
  for (size_t i = 0; i < text.size();) {
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (text[i] != '-') break;
      ++i;
      continue;
    }
    int hi = HexValue(text[i]);
    int lo = i + 1 < text.size() ? HexValue(text[i + 1]) : -1;
    if (hi < 0 || lo < 0 || n >= 16) break;
    b[n++] = static_cast<uint8_t>(hi * 16 + lo);
    i += 2;
  }
  if (n != 16) {
    return Status::InvalidArgument(
        "event id must be a UUID like 01890a5d-ac96-774b-bcce-b302099a8057");
  }
  return EventId(b);
}

bool EventId::IsNil() const {
  for (uint8_t v : bytes_) {
    if (v != 0) return false;
  }
  return true;
}

std::string EventId::ToString() const {
  // Written in place (a folding pass formats one per event).
  std::string out(36, '-');
  FormatTo(out.data());
  return out;
}

void EventId::FormatTo(char* out) const {
  for (size_t i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) *out++ = '-';
    *out++ = kHex[bytes_[i] >> 4];
    *out++ = kHex[bytes_[i] & 0xF];
  }
}

std::string MonthOf(Timestamp t) { return FormatTimestamp(t).substr(0, 7); }

std::string Sha256Hex(std::string_view data) {
  // Fetched once: EVP_sha256() in a digest call looks the algorithm up in
  // the provider on every call.
  static EVP_MD* const kSha256 = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  Hash digest;
  unsigned int len = 0;
  if (kSha256 == nullptr ||
      EVP_Digest(data.data(), data.size(), digest.data(), &len, kSha256,
                 nullptr) != 1 ||
      len != digest.size()) {
    // Only a broken OpenSSL installation gets here; a wrong hash (of a
    // token, say) would be worse than stopping.
    std::abort();
  }
  return HashToHex(digest);
}

std::string HashToHex(const Hash& h) {
  std::string out;
  out.reserve(64);
  for (uint8_t v : h) {
    out.push_back(kHex[v >> 4]);
    out.push_back(kHex[v & 0xF]);
  }
  return out;
}

bool ExpectedVersion::Matches(uint64_t current) const {
  switch (kind_) {
    case Kind::kAny:
      return true;
    case Kind::kNoStream:
      return current == 0;
    case Kind::kStreamExists:
      return current > 0;
    case Kind::kExact:
      return current == version_;
  }
  return false;
}

std::string ExpectedVersion::ToString() const {
  switch (kind_) {
    case Kind::kAny:
      return "any";
    case Kind::kNoStream:
      return "no stream";
    case Kind::kStreamExists:
      return "stream exists";
    case Kind::kExact:
      return std::to_string(version_);
  }
  return "?";
}

}  // namespace caseledger
