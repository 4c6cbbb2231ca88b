// Text corpora and tokenizers for language-model pretraining.
//
// Corpus: the concatenated bytes of the files (or of every regular file under the folders) a
// user names, in sorted path order, with a fixed train/validation split (the last
// `val_fraction` of the token stream is validation). Errors name the path and give a hint.
//
// Tokenizers map bytes to ids and back, losslessly:
//   - ByteTokenizer: 256 symbols, one per byte.
//   - BpeTokenizer: byte-level byte-pair encoding trained on the corpus; ids 0..255 are the
//     bytes, id 256 + m is merge m. Text is pre-split into words (a run of letters/digits with
//     at most one leading space, or a single other byte) so merges never cross word boundaries.
// Both save to and load from JSON (saved next to a model so its ids stay meaningful).
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/random.h"
#include "core/tensor.h"

namespace smyrf::data {

// Where Debian's fortunes package installs its plain-text files (the default corpus).
constexpr const char* kFortunesDir = "/usr/share/games/fortunes";

// Reads the files; folders are walked recursively. Skips files whose names end in .dat or .u8
// (fortune's index files and duplicates) and non-regular files. Throws on a missing or
// unreadable path, or when no text was found.
std::string read_corpus(const std::vector<std::string>& paths);

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;
  virtual int64_t vocab_size() const = 0;
  virtual std::vector<int32_t> encode(const std::string& text) const = 0;
  virtual std::string decode(const std::vector<int32_t>& ids) const = 0;
  virtual std::string to_json() const = 0;
  virtual std::string kind() const = 0;
};

class ByteTokenizer : public Tokenizer {
 public:
  int64_t vocab_size() const override { return 256; }
  std::vector<int32_t> encode(const std::string& text) const override;
  std::string decode(const std::vector<int32_t>& ids) const override;
  std::string to_json() const override;
  std::string kind() const override { return "byte"; }
};

class BpeTokenizer : public Tokenizer {
 public:
  // Learns vocab_size - 256 merges from `text` (vocab_size >= 256). Deterministic: ties in pair
  // frequency are broken by the smaller (left, right) pair.
  static BpeTokenizer train(const std::string& text, int64_t vocab_size);
  explicit BpeTokenizer(std::vector<std::pair<int32_t, int32_t>> merges);
  int64_t vocab_size() const override { return 256 + static_cast<int64_t>(merges_.size()); }
  std::vector<int32_t> encode(const std::string& text) const override;
  std::string decode(const std::vector<int32_t>& ids) const override;
  std::string to_json() const override;
  std::string kind() const override { return "bpe"; }
  const std::vector<std::pair<int32_t, int32_t>>& merges() const { return merges_; }
  const std::string& token_bytes(int32_t id) const { return bytes_[id]; }

 private:
  std::vector<int32_t> encode_word(const std::string& word) const;
  std::vector<std::pair<int32_t, int32_t>> merges_;
  std::vector<std::string> bytes_;                  // id -> bytes
  std::vector<std::pair<uint64_t, int32_t>> rank_;  // sorted (pair key, merge index)
  int32_t rank_of(int32_t a, int32_t b) const;      // merge index or -1
};

std::unique_ptr<Tokenizer> tokenizer_from_json(const std::string& json);

// Splits text into the words BPE works within (see above); concatenating them gives the text.
std::vector<std::string> split_words(const std::string& text);

// A tokenised corpus split into train and validation streams.
struct TokenStreams {
  std::vector<int32_t> train, val;
};
TokenStreams split_tokens(std::vector<int32_t> tokens, double val_fraction);

// `batch` random windows of context + 1 tokens from `stream`, as (inputs, targets) int64 tensors
// of shape (batch, context), targets shifted by one. Throws when the stream is too short.
std::pair<Tensor, Tensor> random_windows(const std::vector<int32_t>& stream, int64_t batch,
                                         int64_t context, Generator& gen);

}  // namespace smyrf::data
