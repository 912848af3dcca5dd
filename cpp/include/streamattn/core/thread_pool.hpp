// streamattn/core/thread_pool.hpp — a small persistent pool of worker threads (docs/design.md,
// "Threads").
//
// ThreadPool(threads) starts threads - 1 workers once; run(n, f) calls f(0) .. f(n - 1), the
// calling thread taking tasks like any worker, and returns when every call has returned. Task i
// < threads() goes to the same thread at every run when that thread is ready for it (task 0 to
// the caller, task i to worker i): a caller that splits its data the same way at every run keeps
// each part in one core's cache. A thread that finds its own task gone, or has done it, takes any
// task not yet taken, so a slow or descheduled worker never holds a run up.
// Between runs a worker polls for the next one for at most kSpinMicroseconds (a stream's chunk
// products come every few tens of microseconds; a condition-variable wake-up costs about that
// on a virtual machine), then sleeps on a condition variable: no unbounded spin-waiting. The first exception thrown by
// a task is rethrown by run() once every task has finished. Calls that cannot use the workers run every task on the
// calling thread, in order: a run() from inside a task of any pool's run (nesting), or a run() while another thread's
// run() holds the pool. The destructor wakes and joins the workers.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace streamattn {

class ThreadPool {
 public:
  /// How long an idle worker (and a caller waiting for the last task) polls before sleeping.
  static constexpr int kSpinMicroseconds = 50;

  /// threads >= 1 (1: no worker, run() calls the tasks in order on the calling thread).
  explicit ThreadPool(int threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  /// Threads a run() can use (workers + the calling thread).
  int threads() const { return static_cast<int>(workers_.size()) + 1; }

  /// Calls f(i) for i in [0, n) on the workers and the calling thread; returns when all have
  /// returned, rethrowing the first exception a task threw (the other tasks still run).
  void run(std::int64_t n, const std::function<void(std::int64_t)>& f);

 private:
  // One run(): its tasks are claimed through `next` and counted through `done`, so run() returns
  // as soon as every task has finished, without waiting for a worker that was slow to wake (a
  // worker holding an old job finds no task left in it).
  struct Job {
    const std::function<void(std::int64_t)>* task = nullptr;
    std::int64_t n = 0;
    std::atomic<std::int64_t> next{0}, done{0};
    std::unique_ptr<std::atomic<bool>[]> taken;  // taken[i]: task i was claimed (exactly once)
    std::exception_ptr error;                    // guarded by the pool's mutex_
  };

  void worker_loop(int self);
  // Runs the tasks of `job` this thread can claim: its own (self) first, then any untaken one.
  void drain(Job& job, int self);

  std::vector<std::thread> workers_;
  std::mutex run_mutex_;  // one run() at a time uses the workers
  std::mutex mutex_;
  std::condition_variable wake_, done_;
  std::atomic<std::uint64_t> generation_{0};  // bumped (under mutex_) by every run() using the workers
  std::atomic<bool> stop_{false};
  int sleepers_ = 0;          // workers waiting on wake_ (guarded by mutex_)
  std::shared_ptr<Job> job_;  // the current run's job (guarded by mutex_)
};

}  // namespace streamattn
