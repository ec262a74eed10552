// A Bloom filter over keys, for a rebuild to know which keys it has not
// written. Internal to projections.
#pragma once

#include <cstdint>
#include <functional>
#include <string_view>
#include <vector>

namespace caseledger::projections::internal {

// A Bloom filter over keys: MayContain() is true for every key added (and,
// rarely, for one that was not).
class KeyFilter {
 public:
  void Clear() { bits_.assign(kWords, 0); }
  void Add(std::string_view key) {
    if (bits_.empty()) Clear();
    ForEachBit(key,
               [&](uint64_t bit) { bits_[bit / 64] |= 1ull << (bit % 64); });
  }
  bool MayContain(std::string_view key) const {
    if (bits_.empty()) return false;
    bool all = true;
    ForEachBit(key, [&](uint64_t bit) {
      all = all && (bits_[bit / 64] & (1ull << (bit % 64))) != 0;
    });
    return all;
  }

 private:
  // 2^24 bits (2 MB): under 1% false positives up to about 1.7 million keys.
  static constexpr uint64_t kBits = 1ull << 24;
  static constexpr size_t kWords = kBits / 64;
  template <typename F>
  static void ForEachBit(std::string_view key, F f) {
    const uint64_t h = std::hash<std::string_view>{}(key);
    const uint64_t step = (h >> 33) | 1;
    for (uint64_t i = 0; i < 7; ++i) f((h + i * step) % kBits);
  }
  std::vector<uint64_t> bits_;
};

}  // namespace caseledger::projections::internal
