#include "api/worker_pool.h"

#include <spdlog/spdlog.h>

namespace caseledger::api {

WorkerPool::WorkerPool(size_t threads, std::shared_ptr<spdlog::logger> logger)
    : logger_(std::move(logger)) {
  for (size_t i = 0; i < std::max<size_t>(1, threads); ++i) {
    threads_.emplace_back([this] { Loop(); });
  }
}

WorkerPool::~WorkerPool() { Stop(); }

void WorkerPool::Post(std::function<void()> work, std::string request_id) {
  Task task{std::move(work), std::move(request_id)};
  {
    MutexLock lk(&mu_);
    if (!stopping_) {
      queue_.push_back(std::move(task));
      cv_.Signal();
      return;
    }
  }
  Run(task);
}

void WorkerPool::Run(Task& task) noexcept {
  const char* what = nullptr;
  std::string text;
  try {
    task.work();
  } catch (const std::exception& e) {
    text = e.what();
    what = text.c_str();
  } catch (...) {
    what = "a non-standard exception";
  }
  if (what == nullptr) return;
  try {
    (logger_ ? *logger_ : *spdlog::default_logger_raw())
        .error("request {}: a worker's task threw: {}",
               task.request_id.empty() ? "-" : task.request_id, what);
    // Destroying the task (and any Respond it holds) happens here, inside
    // the guard: its 500 answer is sent now.
    task.work = nullptr;
  } catch (...) {
  }
}

void WorkerPool::Stop() {
  {
    MutexLock lk(&mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  cv_.SignalAll();
  for (auto& t : threads_) t.join();
}

void WorkerPool::Loop() {
  for (;;) {
    Task task;
    {
      MutexLock lk(&mu_);
      while (!stopping_ && queue_.empty()) cv_.Wait(&mu_);
      if (queue_.empty()) return;
      task = std::move(queue_.front());
      queue_.pop_front();
    }
    Run(task);
  }
}

}  // namespace caseledger::api
