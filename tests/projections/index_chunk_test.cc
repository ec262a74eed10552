// The index operations a rebuild gathers for a table file: sorted by key,
// the last operation on each key kept, as a plain ordered map of the same
// operations says.
#include "projections/src/index_chunk.h"

#include <gtest/gtest.h>

#include <map>
#include <random>
#include <string>
#include <utility>
#include <vector>

namespace caseledger::projections::internal {
namespace {

std::vector<std::pair<std::string, bool>> Last(IndexChunk& chunk) {
  std::vector<std::pair<std::string, bool>> out;
  chunk.ForEachLast([&](std::string_view key, bool put) {
    out.emplace_back(std::string(key), put);
    return true;
  });
  return out;
}

// Keys that share long beginnings (past the 40 bytes compared as integers),
// differ only in length or in a zero byte, or are empty; each operated on
// several times, in chunks appended to one another.
TEST(IndexChunkTest, KeepsTheLastOperationOnEachKeyInKeyOrder) {
  std::mt19937 rng(5);
  auto pick = [&rng](size_t n) {
    return std::uniform_int_distribution<size_t>(0, n - 1)(rng);
  };
  const std::vector<std::string> starts = {"",
                                           "a",
                                           std::string("a\0", 2),
                                           std::string(39, 'x'),
                                           std::string(40, 'x'),
                                           std::string(41, 'x'),
                                           "b\x1f"
                                           "2026-01-06T02:05:00.000000Z\x1f"
                                           "2026-01-06T20:36:00Z",
                                           "\xff\xfe"};
  const std::vector<std::string> ends = {
      "", "1", "2", std::string(1, '\0'), "case-000001", "case-000002", "\x80"};
  for (int round = 0; round < 200; ++round) {
    IndexChunk chunk;
    std::map<std::string, bool> expected;
    for (int part = 0, parts = 1 + static_cast<int>(pick(3)); part < parts;
         ++part) {
      IndexChunk more;
      for (size_t i = 0, n = pick(300); i < n; ++i) {
        const std::string key = starts[pick(starts.size())] +
                                ends[pick(ends.size())] +
                                ends[pick(ends.size())];
        const bool put = pick(2) == 0;
        more.Add(key, put);
        expected[key] = put;
      }
      chunk.Append(more);
    }
    const std::vector<std::pair<std::string, bool>> want(expected.begin(),
                                                         expected.end());
    ASSERT_EQ(Last(chunk), want) << "round " << round;
  }
}

TEST(IndexChunkTest, StopsWhenTold) {
  IndexChunk chunk;
  for (const char* k : {"c", "a", "b"}) chunk.Add(k, true);
  std::vector<std::string> seen;
  chunk.ForEachLast([&](std::string_view key, bool) {
    seen.emplace_back(key);
    return seen.size() < 2;
  });
  EXPECT_EQ(seen, (std::vector<std::string>{"a", "b"}));
}

}  // namespace
}  // namespace caseledger::projections::internal
