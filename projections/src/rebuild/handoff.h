// A bounded queue between two threads of a rebuild. Internal.
#pragma once

#include <cstddef>
#include <deque>
#include <optional>
#include <utility>

#include "caseledger/mutex.h"

namespace caseledger::projections::internal {

// A bounded hand-off between two threads. Close() abandons it: blocked and
// later calls return at once (Push false, Pop nothing).
template <typename T>
class Handoff {
 public:
  explicit Handoff(size_t capacity) : capacity_(capacity) {}

  bool Push(T v) {
    MutexLock lk(&mu_);
    while (!closed_ && q_.size() >= capacity_) cv_.Wait(&mu_);
    if (closed_) return false;
    q_.push_back(std::move(v));
    cv_.SignalAll();
    return true;
  }
  std::optional<T> Pop() {
    MutexLock lk(&mu_);
    while (!closed_ && q_.empty()) cv_.Wait(&mu_);
    if (closed_) return std::nullopt;
    T v = std::move(q_.front());
    q_.pop_front();
    cv_.SignalAll();
    return v;
  }
  void Close() {
    {
      MutexLock lk(&mu_);
      closed_ = true;
    }
    cv_.SignalAll();
  }

 private:
  const size_t capacity_;
  Mutex mu_;
  CondVar cv_;  // waits on mu_
  std::deque<T> q_ GUARDED_BY(mu_);
  bool closed_ GUARDED_BY(mu_) = false;
};

}  // namespace caseledger::projections::internal
