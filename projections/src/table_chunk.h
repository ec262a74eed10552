// Operations gathered for a table file, and sorted for it. Internal to
// projections (a rebuild's writer uses it; tests check it).
#pragma once

#include <algorithm>
#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

namespace caseledger::projections::internal {

// Operations on keys, in the order they came: each puts a key (with a
// value) or deletes it. A table file holds one entry per key, in key order,
// so the operations are sorted by key, and the last on each key is the one
// that counts.
class TableChunk {
  static_assert(std::endian::native == std::endian::little,
                "heads are made big-endian by swapping bytes");

 public:
  // At most this many operations (their order is kept in 32 bits), and
  // values of at most this many bytes in all.
  static constexpr size_t kMaxOps = size_t{1} << 30;
  static constexpr size_t kMaxValueBytes = (size_t{1} << 32) - 1;

  void Add(std::string_view key, bool put, std::string_view value = {}) {
    Op op{};
    char head[kHead] = {};
    std::memcpy(head, key.data(), std::min(key.size(), kHead));
    for (size_t w = 0; w < op.head.size(); ++w) {
      uint64_t v;
      std::memcpy(&v, head + 8 * w, 8);
      op.head[w] = __builtin_bswap64(v);  // big-endian: ordered as bytes
    }
    op.offset = keys_.size();
    op.put = put ? 1 : 0;
    op.size = static_cast<uint32_t>(key.size());
    op.seq = static_cast<uint32_t>(ops_.size());
    op.value_offset = static_cast<uint32_t>(values_.size());
    op.value_size = static_cast<uint32_t>(value.size());
    keys_.append(key);
    values_.append(value);
    ops_.push_back(op);
  }
  // Room for `ops` more operations and their keys' and values' bytes, so
  // that adding them copies nothing again (and faults in no page twice).
  void Reserve(size_t ops, size_t key_bytes, size_t value_bytes) {
    ops_.reserve(ops_.size() + ops);
    keys_.reserve(keys_.size() + key_bytes);
    values_.reserve(values_.size() + value_bytes);
  }
  size_t size() const { return ops_.size(); }
  size_t value_bytes() const { return values_.size(); }
  // The value of the operation added `index`-th (before ForEachLast sorts
  // them).
  std::string_view ValueOf(size_t index) const {
    return std::string_view(values_).substr(ops_[index].value_offset,
                                            ops_[index].value_size);
  }
  bool empty() const { return ops_.empty(); }
  void Clear() {
    ops_.clear();
    keys_.clear();
    values_.clear();
  }

  // Sorts the operations by key (a key's in the order they came), then
  // calls f(key, put, value) for the last operation on each key, in key
  // order, while f returns true.
  template <typename F>
  void ForEachLast(F f) {
    std::sort(ops_.begin(), ops_.end(), [this](const Op& a, const Op& b) {
      for (size_t w = 0; w < kHead / 8; ++w) {
        if (a.head[w] != b.head[w]) return a.head[w] < b.head[w];
      }
      if (!SameKey(a, b)) return KeyOf(a) < KeyOf(b);
      return a.seq < b.seq;
    });
    char head[kHead];
    for (size_t i = 0; i < ops_.size(); ++i) {
      if (i + 1 < ops_.size() && SameKey(ops_[i], ops_[i + 1])) continue;
      const Op& op = ops_[i];
      // A key that fits its head is read from there: its bytes in keys_,
      // in sorted order, would each be a cache miss.
      std::string_view key;
      if (op.size <= kHead) {
        for (size_t w = 0; w < op.head.size(); ++w) {
          const uint64_t v = __builtin_bswap64(op.head[w]);
          std::memcpy(head + 8 * w, &v, 8);
        }
        key = std::string_view(head, op.size);
      } else {
        key = KeyOf(op);
      }
      if (!f(key, op.put != 0,
             std::string_view(values_).substr(op.value_offset,
                                              op.value_size))) {
        return;
      }
    }
  }

 private:
  // An operation: its key (in keys_), whether it puts it (and its value, in
  // values_), and when it came.
  // Compared first by the key's first kHead bytes, held here (big-endian,
  // so compared as integers they order as the bytes do; padded with zeros,
  // so keys equal there are compared whole). Nearly every index key differs
  // there (most are shorter): a comparison seldom reads the keys' bytes,
  // spread over megabytes (reading them was most of a rebuild's sorting).
  static constexpr size_t kHead = 40;
  struct Op {
    std::array<uint64_t, kHead / 8> head;
    uint64_t offset : 40;  // in keys_
    uint64_t put : 1;
    uint32_t size;
    uint32_t seq;
    uint32_t value_offset;  // in values_ (under 4 GB: see Add)
    uint32_t value_size;
  };
  static_assert(sizeof(Op) == 64);
  std::string_view KeyOf(const Op& op) const {
    return std::string_view(keys_).substr(op.offset, op.size);
  }
  bool SameKey(const Op& a, const Op& b) const {
    return a.head == b.head && a.size == b.size &&
           (a.size <= kHead || KeyOf(a) == KeyOf(b));
  }

  std::vector<Op> ops_;
  std::string keys_;
  std::string values_;
};

}  // namespace caseledger::projections::internal
