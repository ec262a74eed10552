// The thread the publisher and the follower each run on: one step at a time
// until stopped, retrying a failed step with backoff (100 ms doubling to 2 s)
// and reporting it as kUnavailable meanwhile, and halting for good on
// kCorruption, which it keeps reporting. Private to replicate/.
#pragma once

#include <nats/nats.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <string>
#include <thread>

#include "caseledger/mutex.h"
#include "caseledger/status.h"

namespace caseledger::replicate::internal {

class Worker {
 public:
  // `name` prefixes the log lines.
  explicit Worker(std::string name) : name_(std::move(name)) {}
  ~Worker() { Stop(); }
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  // Runs `step` on the thread until Stop; `step` returns OK when it did its
  // part (or had nothing to do), and what went wrong otherwise. `reset` runs
  // after a failure, before the next step, and once more at the end (on
  // the thread, which then releases what the NATS client kept for it).
  void Start(std::function<Status()> step, std::function<void()> reset) {
    thread_ = std::thread([this, step = std::move(step),
                           reset = std::move(reset)] { Run(step, reset); });
  }

  // Idempotent.
  void Stop() {
    {
      MutexLock lk(&mu_);
      if (stopping_) return;
      stopping_ = true;
    }
    wake_.SignalAll();
    if (thread_.joinable()) thread_.join();
  }

  bool stopping() const {
    MutexLock lk(&mu_);
    return stopping_;
  }

  Status Health() const {
    MutexLock lk(&mu_);
    return health_;
  }
  void SetHealthy() {
    MutexLock lk(&mu_);
    health_ = Status::OK();
  }

  // For a step to stop the worker for good, as a Corruption does: returns
  // `why`, which the step returns and Health() reports from then on.
  Status Halt(Status why) {
    MutexLock lk(&mu_);
    halted_ = true;
    return why;
  }

  // Sleeps up to `d`, or until Stop.
  void Pause(std::chrono::milliseconds d) {
    MutexLock lk(&mu_);
    SleepLocked(std::chrono::steady_clock::now() + d);
  }

 private:
  void Run(const std::function<Status()>& step,
           const std::function<void()>& reset) {
    auto backoff = std::chrono::milliseconds(100);
    while (!stopping()) {
      Status failed = step();
      if (failed.ok()) {
        backoff = std::chrono::milliseconds(100);
        continue;
      }
      reset();
      MutexLock lk(&mu_);
      if (failed.IsCorruption() || halted_) {
        spdlog::error("{} stopped: {}", name_, failed.ToString());
        health_ = failed;
        while (!stopping_) wake_.Wait(&mu_);
        break;
      }
      spdlog::warn("{}: {} (retrying in {} ms)", name_, failed.ToString(),
                   backoff.count());
      health_ = Status::Unavailable(failed.message());
      SleepLocked(std::chrono::steady_clock::now() + backoff);
      backoff = std::min(backoff * 2, std::chrono::milliseconds(2000));
    }
    reset();
    nats_ReleaseThreadMemory();
  }

  void SleepLocked(std::chrono::steady_clock::time_point until) REQUIRES(mu_) {
    while (!stopping_ && wake_.WaitUntil(&mu_, until)) {
    }
  }

  const std::string name_;
  mutable Mutex mu_;
  CondVar wake_;  // waits on mu_
  bool stopping_ GUARDED_BY(mu_) = false;
  bool halted_ GUARDED_BY(mu_) = false;
  Status health_ GUARDED_BY(mu_) = Status::Unavailable("not yet connected");
  std::thread thread_;
};

}  // namespace caseledger::replicate::internal
