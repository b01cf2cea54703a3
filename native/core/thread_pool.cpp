#include "core/thread_pool.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

namespace kw {
namespace {

thread_local bool tl_in_parallel = false;

class Pool {
 public:
  explicit Pool(int n) : target_(n) {}
  ~Pool() = delete;  // lives for the process: joining at exit can deadlock in Node's teardown

  int size() const { return target_; }
  void resize(int n) { target_ = n; }

  void run(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn) {
    int64_t chunks = std::min<int64_t>(target_, (n + grain - 1) / grain);
    if (chunks <= 1 || tl_in_parallel) {
      bool prev = tl_in_parallel;
      tl_in_parallel = true;
      try {
        fn(0, n);
      } catch (...) {
        tl_in_parallel = prev;
        throw;
      }
      tl_in_parallel = prev;
      return;
    }
    std::lock_guard<std::mutex> one_job(job_mu_);  // one loop at a time from outside
    ensure_workers(int(chunks) - 1);
    std::exception_ptr err;
    std::mutex err_mu;
    std::atomic<int64_t> next{0};
    int64_t step = (n + chunks - 1) / chunks;
    auto work = [&] {
      tl_in_parallel = true;
      for (;;) {
        int64_t c = next.fetch_add(1);
        if (c >= chunks) break;
        int64_t b = c * step, e = std::min(n, b + step);
        if (b >= e) continue;
        try {
          fn(b, e);
        } catch (...) {
          std::lock_guard<std::mutex> l(err_mu);
          if (!err) err = std::current_exception();
        }
      }
      tl_in_parallel = false;
    };
    {
      std::lock_guard<std::mutex> l(mu_);
      task_ = work;
      pending_ = int(chunks) - 1;
      requested_ = pending_;
      generation_++;
    }
    cv_.notify_all();
    work();
    std::unique_lock<std::mutex> l(mu_);
    done_cv_.wait(l, [&] { return pending_ == 0; });
    task_ = nullptr;
    if (err) std::rethrow_exception(err);
  }

 private:
  void ensure_workers(int want) {
    while (int(workers_.size()) < want) {
      int idx = int(workers_.size());
      workers_.emplace_back([this, idx] { loop(idx); });
      workers_.back().detach();
    }
  }

  void loop(int idx) {
    uint64_t seen = 0;
    for (;;) {
      std::function<void()> task;
      {
        std::unique_lock<std::mutex> l(mu_);
        cv_.wait(l, [&] { return generation_ != seen && pending_ > 0 && idx < requested_; });
        seen = generation_;
        task = task_;
      }
      task();
      std::lock_guard<std::mutex> l(mu_);
      if (--pending_ == 0) done_cv_.notify_all();
    }
  }

  int target_;
  std::mutex job_mu_, mu_;
  std::condition_variable cv_, done_cv_;
  std::function<void()> task_;
  int pending_ = 0;
  int requested_ = 0;  // workers asked to join the current loop
  uint64_t generation_ = 0;
  std::vector<std::thread> workers_;
};

Pool& pool() {
  static Pool* p = new Pool(std::max(1u, std::thread::hardware_concurrency()));
  return *p;
}

}  // namespace

int num_threads() { return pool().size(); }

void set_num_threads(int n) {
  int hw = int(std::max(1u, std::thread::hardware_concurrency()));
  pool().resize(std::max(1, std::min(n, hw)));
}

bool in_parallel_region() { return tl_in_parallel; }

void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  pool().run(n, std::max<int64_t>(1, grain), fn);
}

}  // namespace kw
