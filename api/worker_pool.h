// A small pool of threads for work that may block (durable appends wait for
// an fsync), so that the HTTP I/O threads never do.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

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
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Task> queue_;  // guarded by mu_
  bool stopping_ = false;   // guarded by mu_
  std::vector<std::thread> threads_;
};

}  // namespace caseledger::api
