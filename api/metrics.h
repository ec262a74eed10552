// Request metrics for /metrics: counts by route template and status, and a
// latency histogram. Thread-safe.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <utility>

#include "caseledger/mutex.h"

namespace caseledger::api {

class HttpMetrics {
 public:
  void Record(const std::string& route, int status,
              std::chrono::microseconds latency);
  // Appends the Prometheus text exposition of these metrics to *out.
  void Render(std::string* out) const;

  // Upper bounds of the latency buckets, in seconds.
  static constexpr std::array<double, 10> kBuckets = {
      0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1.0};

 private:
  mutable Mutex mu_;
  std::map<std::pair<std::string, int>, uint64_t> requests_ GUARDED_BY(mu_);
  std::array<uint64_t, kBuckets.size()> buckets_ GUARDED_BY(mu_){};
  uint64_t count_ GUARDED_BY(mu_) = 0;
  double sum_seconds_ GUARDED_BY(mu_) = 0;
};

}  // namespace caseledger::api
