// SHA-256 (FIPS 180-4) of bytes and files, so a frozen model's weights can be named by a checksum
// that anyone can recompute with `sha256sum`. Hex digests are lowercase, 64 characters.
#pragma once
#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

namespace smyrf {

// Incremental hasher: update() any number of times, then digest() once (a later update() or
// digest() throws, because the padding has been appended).
class Sha256 {
 public:
  Sha256();
  void update(const void* data, size_t size);
  void update(const std::string& bytes) { update(bytes.data(), bytes.size()); }
  std::array<uint8_t, 32> digest();
  std::string hex_digest();

 private:
  void compress(const uint8_t* block);
  std::array<uint32_t, 8> h_;
  std::array<uint8_t, 64> buf_{};
  size_t buf_len_ = 0;
  uint64_t total_bytes_ = 0;
  bool finished_ = false;
};

std::string sha256_hex(const std::string& bytes);
// Streams the file; throws smyrf::Error (op "sha256") naming the path when it cannot be read.
std::string sha256_file_hex(const std::string& path);

}  // namespace smyrf
