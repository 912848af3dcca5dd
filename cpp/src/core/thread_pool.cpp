#include "streamattn/core/thread_pool.hpp"

#include <chrono>

#include "streamattn/core/common.hpp"

namespace streamattn {

namespace {
// Polls ready() for at most ThreadPool::kSpinMicroseconds; true if it became true.
template <class F>
bool spin_until(F&& ready) {
  const auto end = std::chrono::steady_clock::now() + std::chrono::microseconds(ThreadPool::kSpinMicroseconds);
  for (int i = 0;; ++i) {
    if (ready()) return true;
    if ((i & 63) == 63 && std::chrono::steady_clock::now() >= end) return false;
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
    __builtin_ia32_pause();
#endif
  }
}

// Set while this thread runs tasks of some pool's run(): a nested run() then runs inline.
thread_local bool in_pool_task = false;

struct TaskScope {
  bool saved;
  TaskScope() : saved(in_pool_task) { in_pool_task = true; }
  ~TaskScope() { in_pool_task = saved; }
};
}  // namespace

ThreadPool::ThreadPool(int threads) {
  require(threads >= 1, "a thread pool needs threads >= 1, got ", threads);
  workers_.reserve(static_cast<std::size_t>(threads - 1));
  try {
    for (int i = 1; i < threads; ++i) workers_.emplace_back([this, i] { worker_loop(i); });
  } catch (...) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_ = true;
    }
    wake_.notify_all();
    for (auto& w : workers_) w.join();
    throw;
  }
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  for (auto& w : workers_) w.join();
}

void ThreadPool::drain(Job& job, int self) {
  TaskScope scope;
  const auto run_task = [&](std::int64_t i) {
    if (job.taken[i].exchange(true, std::memory_order_acq_rel)) return;  // another thread has it
    try {
      (*job.task)(i);
    } catch (...) {
      std::lock_guard<std::mutex> lock(mutex_);
      if (!job.error) job.error = std::current_exception();
    }
    if (job.done.fetch_add(1, std::memory_order_acq_rel) + 1 == job.n) {
      std::lock_guard<std::mutex> lock(mutex_);  // the caller checks `done` under the mutex
      done_.notify_all();
    }
  };
  if (self < job.n) run_task(self);
  for (;;) {
    const std::int64_t i = job.next.fetch_add(1, std::memory_order_relaxed);
    if (i >= job.n) return;
    run_task(i);
  }
}

void ThreadPool::worker_loop(int self) {
  std::uint64_t seen = 0;
  for (;;) {
    const bool woke = spin_until(
        [&] { return stop_.load(std::memory_order_acquire) || generation_.load(std::memory_order_acquire) != seen; });
    std::shared_ptr<Job> job;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      if (!woke) {
        ++sleepers_;
        wake_.wait(lock, [&] { return stop_.load() || generation_.load() != seen; });
        --sleepers_;
      }
      if (stop_.load()) return;
      seen = generation_.load();
      job = job_;
    }
    if (job) drain(*job, self);
  }
}

void ThreadPool::run(std::int64_t n, const std::function<void(std::int64_t)>& f) {
  if (n <= 0) return;
  std::unique_lock<std::mutex> owner(run_mutex_, std::defer_lock);
  if (workers_.empty() || n == 1 || in_pool_task || !owner.try_lock()) {
    TaskScope scope;
    for (std::int64_t i = 0; i < n; ++i) f(i);
    return;
  }
  auto job = std::make_shared<Job>();
  job->task = &f;
  job->n = n;
  job->taken.reset(new std::atomic<bool>[static_cast<std::size_t>(n)]());
  bool sleeping = false;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    job_ = job;
    generation_.fetch_add(1, std::memory_order_acq_rel);
    sleeping = sleepers_ > 0;
  }
  if (sleeping) wake_.notify_all();
  drain(*job, 0);
  spin_until([&] { return job->done.load(std::memory_order_acquire) == n; });
  std::exception_ptr error;
  {
    std::unique_lock<std::mutex> lock(mutex_);
    done_.wait(lock, [&] { return job->done.load(std::memory_order_acquire) == n; });
    job_.reset();
    error = job->error;
  }
  if (error) std::rethrow_exception(error);
}

}  // namespace streamattn
