#include "data/loader.h"

#include "core/error.h"
#include "core/random.h"

namespace smyrf::data {

DataLoader::DataLoader(int64_t size, MakeBatch make, Options opt)
    : size_(size), make_(std::move(make)), opt_(opt) {
  SMYRF_CHECK_HINT(size > 0, "DataLoader", "the dataset is empty", "check the data path");
  SMYRF_CHECK_HINT(opt.batch_size > 0, "DataLoader",
                   "batch_size must be positive, got " << opt.batch_size,
                   "use a batch size of at least 1");
  SMYRF_CHECK_HINT(
      !opt.drop_last || opt.batch_size <= size, "DataLoader",
      "batch_size " << opt.batch_size << " exceeds the dataset size " << size << " with drop_last",
      "lower the batch size or set drop_last=false");
  produce_ = consumed_;
  start_worker();
}

DataLoader::~DataLoader() { stop_worker(); }

int64_t DataLoader::batches_per_epoch() const {
  return opt_.drop_last ? size_ / opt_.batch_size : (size_ + opt_.batch_size - 1) / opt_.batch_size;
}

DataLoader::Position DataLoader::advance(Position p) const {
  if (++p.batch >= batches_per_epoch()) {
    p.batch = 0;
    ++p.epoch;
  }
  return p;
}

std::vector<int64_t> DataLoader::indices_of(Position p) const {
  std::lock_guard<std::mutex> lock(perm_mu_);
  if (perm_epoch_ != p.epoch) {
    if (opt_.shuffle) {
      // one Philox stream per (seed, epoch): the order of epoch e never depends on epoch e - 1
      Generator g(opt_.seed * 0x9E3779B97F4A7C15ull + static_cast<uint64_t>(p.epoch) + 1);
      perm_cache_ = randperm(size_, &g).to_vector<int64_t>();
    } else {
      perm_cache_.resize(size_);
      for (int64_t i = 0; i < size_; ++i) perm_cache_[i] = i;
    }
    perm_epoch_ = p.epoch;
  }
  int64_t begin = p.batch * opt_.batch_size, end = std::min(size_, begin + opt_.batch_size);
  return std::vector<int64_t>(perm_cache_.begin() + begin, perm_cache_.begin() + end);
}

void DataLoader::start_worker() {
  stop_ = false;
  if (opt_.prefetch > 0) worker_ = std::thread([this] { worker_loop(); });
}

void DataLoader::stop_worker() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (worker_.joinable()) worker_.join();
}

void DataLoader::worker_loop() {
  for (;;) {
    Position p;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return stop_ || static_cast<int>(ready_.size()) < opt_.prefetch; });
      if (stop_) return;
      p = produce_;
      produce_ = advance(produce_);
    }
    std::pair<Batch, std::exception_ptr> item;
    try {
      item.first = make_(indices_of(p));
    } catch (...) {
      item.second = std::current_exception();
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stop_) return;
      ready_.push_back(std::move(item));
    }
    cv_.notify_all();
  }
}

Batch DataLoader::next() {
  if (opt_.prefetch == 0) {
    Batch b = make_(indices_of(consumed_));
    consumed_ = advance(consumed_);
    return b;
  }
  std::pair<Batch, std::exception_ptr> item;
  {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return !ready_.empty(); });
    item = std::move(ready_.front());
    ready_.pop_front();
    consumed_ = advance(consumed_);
  }
  cv_.notify_all();
  if (item.second) std::rethrow_exception(item.second);
  return std::move(item.first);
}

DataLoader::Position DataLoader::position() const {
  std::lock_guard<std::mutex> lock(mu_);
  return consumed_;
}

void DataLoader::seek(Position p) {
  SMYRF_CHECK(p.epoch >= 0 && p.batch >= 0 && p.batch < batches_per_epoch(), "DataLoader.seek",
              "position (epoch " << p.epoch << ", batch " << p.batch << ") is outside an epoch of "
                                 << batches_per_epoch() << " batches");
  stop_worker();
  ready_.clear();
  consumed_ = produce_ = p;
  start_worker();
}

}  // namespace smyrf::data
