// DataLoader: endless, reproducible batches prepared on a background thread.
//
// Each epoch visits a permutation of [0, dataset_size) (Philox-seeded from (seed, epoch), so a
// seed fixes every epoch's order) cut into batches of batch_size (the short tail is dropped when
// drop_last). make_batch turns a list of indices into tensors; it runs on the worker thread while
// the training step runs, up to `prefetch` batches ahead. position()/seek() let a checkpoint
// resume at exactly the next batch a run would have seen.
#pragma once
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "core/tensor.h"

namespace smyrf::data {

using Batch = std::vector<Tensor>;

class DataLoader {
 public:
  using MakeBatch = std::function<Batch(const std::vector<int64_t>& indices)>;
  struct Options {
    int64_t batch_size = 32;
    bool shuffle = true;
    bool drop_last = true;
    uint64_t seed = 0;
    int prefetch = 2;  // batches prepared ahead; 0 = synchronous
  };
  struct Position {
    int64_t epoch = 0;
    int64_t batch = 0;  // index of the next batch within the epoch
  };

  DataLoader(int64_t dataset_size, MakeBatch make_batch, Options options);
  ~DataLoader();
  DataLoader(const DataLoader&) = delete;
  DataLoader& operator=(const DataLoader&) = delete;

  Batch next();  // the next batch (crosses epochs); rethrows an error from make_batch
  Position position() const;
  void seek(Position p);
  int64_t batches_per_epoch() const;
  // The indices of batch `p` (pure function of seed, epoch and batch; used by tests).
  std::vector<int64_t> indices_of(Position p) const;

 private:
  void start_worker();
  void stop_worker();
  void worker_loop();
  Position advance(Position p) const;

  int64_t size_;
  MakeBatch make_;
  Options opt_;
  Position consumed_;  // next batch the user gets
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::pair<Batch, std::exception_ptr>> ready_;
  Position produce_;
  bool stop_ = false;
  std::thread worker_;
  mutable std::vector<int64_t> perm_cache_;
  mutable int64_t perm_epoch_ = -1;
  mutable std::mutex perm_mu_;  // guards the permutation cache (worker and caller both read it)
};

}  // namespace smyrf::data
