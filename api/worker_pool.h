// A small pool of threads for work that may block (durable appends wait for
// an fsync), so that the HTTP I/O threads never do.
#pragma once

#include <deque>
#include <functional>
#include <memory>
#include <thread>
#include <vector>

#include "caseledger/mutex.h"

namespace spdlog {
class logger;
}

namespace caseledger::api {

class WorkerPool {
 public:
  // `logger` receives what a piece of work throws (the default logger when
  // null).
  explicit WorkerPool(size_t threads,
                      std::shared_ptr<spdlog::logger> logger = nullptr);
  ~WorkerPool();  // Stop()
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  // Runs `work` on a pool thread. After Stop(), runs it on the caller's.
  // An exception `work` throws is logged and goes no further: the thread
  // carries on with the next piece of work. Work that answers a request
  // holds the request's Router::Respond, which answers 500 when the work is
  // dropped unanswered.
  // `request_id` names the request the work serves in that log line.
  void Post(std::function<void()> work, std::string request_id = {});

  // Finishes everything queued, then joins the threads. Idempotent.
  void Stop();

 private:
  void Loop();
  struct Task {
    std::function<void()> work;
    std::string request_id;
  };
  void Run(Task& task) noexcept;
  std::shared_ptr<spdlog::logger> logger_;
  Mutex mu_;
  CondVar cv_;  // waits on mu_
  std::deque<Task> queue_ GUARDED_BY(mu_);
  bool stopping_ GUARDED_BY(mu_) = false;
  std::vector<std::thread> threads_;
};

}  // namespace caseledger::api
