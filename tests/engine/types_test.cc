#include "caseledger/types.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <ctime>
#include <random>
#include <set>
#include <vector>

namespace caseledger {
namespace {

TEST(EventIdTest, ParsesAndPrintsCanonicalUuids) {
  auto id = EventId::Parse("01890A5D-AC96-774B-BCCE-B302099A8057");
  ASSERT_TRUE(id.ok());
  EXPECT_EQ(id->ToString(), "01890a5d-ac96-774b-bcce-b302099a8057");
  EXPECT_FALSE(id->IsNil());
  EXPECT_TRUE(EventId().IsNil());
}

TEST(EventIdTest, RejectsMalformedUuids) {
  for (const char* bad : {"", "01890a5d", "01890a5d-ac96-774b-bcce-b302099a805",
                          "01890a5dxac96-774b-bcce-b302099a8057",
                          "01890a5d-ac96-774b-bcce-b302099a805g"}) {
    EXPECT_TRUE(EventId::Parse(bad).status().IsInvalidArgument()) << bad;
  }
}

TEST(EventIdTest, NewV7IdsAreVersion7UniqueAndTimeOrdered) {
  std::set<EventId> seen;
  EventId prev = EventId::NewV7();
  for (int i = 0; i < 1000; ++i) {
    EventId id = EventId::NewV7();
    EXPECT_EQ(id.bytes()[6] >> 4, 7);
    EXPECT_EQ(id.bytes()[8] >> 6, 2);
    EXPECT_TRUE(seen.insert(id).second);
    // The 48-bit millisecond prefix never goes backwards.
    EXPECT_GE(
        std::vector<uint8_t>(id.bytes().begin(), id.bytes().begin() + 6),
        std::vector<uint8_t>(prev.bytes().begin(), prev.bytes().begin() + 6));
    prev = id;
  }
}

// Ids drawn in a child after fork() never repeat the parent's: the
// random bytes each thread fetches ahead are not reused across the fork.
TEST(EventIdTest, AForkedChildDrawsIdsOfItsOwn) {
  (void)EventId::NewV7();  // this thread now holds random bytes ahead
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    close(fds[0]);
    for (int i = 0; i < 8; ++i) {
      const std::string id = EventId::NewV7().ToString();
      if (write(fds[1], id.data(), id.size()) !=
          static_cast<ssize_t>(id.size())) {
        _exit(2);
      }
    }
    _exit(0);
  }
  close(fds[1]);
  std::set<std::string> parent;
  for (int i = 0; i < 8; ++i) parent.insert(EventId::NewV7().ToString());
  std::string all;
  char buf[512];
  for (ssize_t n; (n = read(fds[0], buf, sizeof(buf))) > 0;) {
    all.append(buf, static_cast<size_t>(n));
  }
  close(fds[0]);
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  ASSERT_EQ(all.size(), 8u * 36);
  for (size_t i = 0; i < all.size(); i += 36) {
    // The random parts differ (the millisecond prefix may well not).
    const std::string id = all.substr(i, 36);
    EXPECT_FALSE(parent.count(id)) << id;
    for (const std::string& p : parent) {
      EXPECT_NE(id.substr(14), p.substr(14)) << id;
    }
  }
}

TEST(TimestampTest, FormatsAndParsesRfc3339) {
  auto t = ParseTimestamp("2026-11-22T05:30:41.123456Z");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(FormatTimestamp(*t), "2026-11-22T05:30:41.123456Z");
  auto offset = ParseTimestamp("2026-11-22T06:30:41.5+01:00");
  ASSERT_TRUE(offset.ok());
  EXPECT_EQ(FormatTimestamp(*offset), "2026-11-22T05:30:41.500000Z");
  EXPECT_EQ(ParseTimestamp("1970-01-01T00:00:00Z")->value(), 0);
}

// The direct calendar arithmetic agrees with the C library's gmtime_r,
// second by second across leap days and centuries, and before 1970.
TEST(TimestampTest, FormatsAsGmtimeDoes) {
  std::mt19937_64 rng(7);
  // 1600-01-01 .. 2400-12-31, in seconds, plus chosen edges.
  std::uniform_int_distribution<int64_t> secs(-11676096000LL, 13569465599LL);
  std::vector<int64_t> samples = {0,          -1,          86399,
                                  86400,      951782400,   951868800,
                                  4107542400, -2208988800, 253402300799LL};
  for (int i = 0; i < 20000; ++i) samples.push_back(secs(rng));
  for (int64_t s : samples) {
    for (int64_t frac : {0LL, 1LL, 999999LL}) {
      std::time_t tt = static_cast<std::time_t>(s);
      std::tm tm{};
      ASSERT_NE(gmtime_r(&tt, &tm), nullptr);
      char want[64];
      std::snprintf(want, sizeof(want), "%04d-%02d-%02dT%02d:%02d:%02d.%06lldZ",
                    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                    tm.tm_min, tm.tm_sec, static_cast<long long>(frac));
      ASSERT_EQ(FormatTimestamp(Timestamp(s * 1000000 + frac)), want) << s;
    }
  }
  // A negative time with a fraction falls in the second before.
  EXPECT_EQ(FormatTimestamp(Timestamp(-1)), "1969-12-31T23:59:59.999999Z");
}

TEST(TimestampTest, RejectsMalformedTimestamps) {
  for (const char* bad : {"", "2026-11-22", "2026-13-01T00:00:00Z",
                          "2026-02-30T00:00:00Z", "2026-11-22T05:30:41",
                          "2026-11-22T05:30:41Zjunk", "2026-11-22T25:00:00Z"}) {
    EXPECT_TRUE(ParseTimestamp(bad).status().IsInvalidArgument()) << bad;
  }
}

TEST(ExpectedVersionTest, MatchesByKind) {
  EXPECT_TRUE(ExpectedVersion::Any().Matches(0));
  EXPECT_TRUE(ExpectedVersion::Any().Matches(9));
  EXPECT_TRUE(ExpectedVersion::NoStream().Matches(0));
  EXPECT_FALSE(ExpectedVersion::NoStream().Matches(1));
  EXPECT_FALSE(ExpectedVersion::StreamExists().Matches(0));
  EXPECT_TRUE(ExpectedVersion::StreamExists().Matches(1));
  EXPECT_TRUE(ExpectedVersion::Exact(StreamVersion(3)).Matches(3));
  EXPECT_FALSE(ExpectedVersion::Exact(StreamVersion(3)).Matches(2));
}

TEST(StreamIdTest, AcceptsOnlyTheSafeAlphabet) {
  EXPECT_TRUE(ValidateStreamId("case-2026.11_a:b").ok());
  EXPECT_FALSE(ValidateStreamId("").ok());
  EXPECT_FALSE(ValidateStreamId("a b").ok());
  EXPECT_FALSE(ValidateStreamId("a/b").ok());
  EXPECT_FALSE(ValidateStreamId(std::string(129, 'x')).ok());
}

}  // namespace
}  // namespace caseledger
