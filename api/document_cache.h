// Case documents kept by version, for case reads.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <utility>

#include "caseledger/domain/case.h"
#include "caseledger/mutex.h"

namespace caseledger::api {

// The JSON documents of recently read case states, one per case, kept by
// version (a state at a version is the same for every reader), so that
// reading an unchanged case does not build and serialise its document
// again. Bounded; thread-safe.
class DocumentCache {
 public:
  // The document of `state` (case `id`), made now or kept.
  std::shared_ptr<const std::string> Get(const std::string& id,
                                         const domain::CaseState& state) {
    Shard& s = shards_[std::hash<std::string>()(id) % kShards];
    {
      MutexLock lk(&s.mu);
      auto it = s.docs.find(id);
      if (it != s.docs.end() && it->second.first == state.version) {
        return it->second.second;
      }
    }
    auto doc =
        std::make_shared<const std::string>(domain::ToJson(id, state).dump());
    MutexLock lk(&s.mu);
    auto it = s.docs.find(id);
    if (it == s.docs.end()) {
      if (s.docs.size() >= kPerShard) s.docs.erase(s.docs.begin());
      s.docs.emplace(id, std::make_pair(state.version, doc));
    } else if (it->second.first < state.version) {
      it->second = {state.version, doc};
    }
    return doc;
  }

 private:
  static constexpr size_t kShards = 16;
  static constexpr size_t kPerShard = 128;  // a few KiB each
  struct Shard {
    Mutex mu;
    std::unordered_map<std::string,
                       std::pair<uint64_t, std::shared_ptr<const std::string>>>
        docs GUARDED_BY(mu);
  };
  std::array<Shard, kShards> shards_;
};

}  // namespace caseledger::api
