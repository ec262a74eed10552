// The operations a rebuild gathers for a table file: sorted by key, the
// last operation on each key kept (with its value), as a plain ordered map
// of the same operations says.
#include "projections/src/table_chunk.h"

#include <gtest/gtest.h>

#include <map>
#include <random>
#include <string>
#include <utility>
#include <vector>

namespace caseledger::projections::internal {
namespace {

// key -> put (else delete) and value.
using Ops = std::vector<std::pair<std::string, std::pair<bool, std::string>>>;

Ops Last(TableChunk& chunk) {
  Ops out;
  chunk.ForEachLast([&](std::string_view key, bool put, std::string_view v) {
    out.emplace_back(std::string(key), std::make_pair(put, std::string(v)));
    return true;
  });
  return out;
}

// Keys that share long beginnings (past the 40 bytes compared as integers),
// differ only in length or in a zero byte, or are empty; each operated on
// several times, in chunks appended to one another.
TEST(TableChunkTest, KeepsTheLastOperationOnEachKeyInKeyOrder) {
  std::mt19937 rng(5);
  auto pick = [&rng](size_t n) {
    return std::uniform_int_distribution<size_t>(0, n - 1)(rng);
  };
  const std::vector<std::string> starts = {
      "",
      "a",
      std::string("a\0", 2),
      std::string(39, 'x'),
      std::string(40, 'x'),
      std::string(41, 'x'),
      std::string("b\x1f"
                  "2026-01-06T02:05:00.000000Z\x1f"
                  "2026-01-06T20:36:00Z"),
      "\xff\xfe"};
  const std::vector<std::string> ends = {
      "", "1", "2", std::string(1, '\0'), "case-000001", "case-000002", "\x80"};
  for (int round = 0; round < 200; ++round) {
    TableChunk chunk;
    std::map<std::string, std::pair<bool, std::string>> expected;
    for (size_t i = 0, n = pick(900); i < n; ++i) {
      const std::string key = starts[pick(starts.size())] +
                              ends[pick(ends.size())] + ends[pick(ends.size())];
      const bool put = pick(2) == 0;
      const std::string value = put ? std::to_string(pick(1000)) : "";
      chunk.Add(key, put, value);
      expected[key] = {put, value};
    }
    const Ops want(expected.begin(), expected.end());
    ASSERT_EQ(Last(chunk), want) << "round " << round;
  }
}

TEST(TableChunkTest, StopsWhenTold) {
  TableChunk chunk;
  for (const char* k : {"c", "a", "b"}) chunk.Add(k, true);
  std::vector<std::string> seen;
  chunk.ForEachLast([&](std::string_view key, bool, std::string_view) {
    seen.emplace_back(key);
    return seen.size() < 2;
  });
  EXPECT_EQ(seen, (std::vector<std::string>{"a", "b"}));
}

}  // namespace
}  // namespace caseledger::projections::internal
