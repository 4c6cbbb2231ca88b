#include "data/text.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <queue>
#include <sstream>
#include <unordered_map>

#include <nlohmann/json.hpp>

#include "core/error.h"

namespace smyrf::data {
namespace fs = std::filesystem;

// ---------------------------------------------------------------- corpus
namespace {
bool skip_file(const fs::path& p) {
  std::string e = p.extension().string();
  return e == ".dat" || e == ".u8";
}
void append_file(const fs::path& p, std::string& out) {
  std::ifstream f(p, std::ios::binary);
  SMYRF_CHECK_HINT(f.good(), "corpus", "cannot read " << p.string(),
                   "check the file's permissions");
  std::ostringstream ss;
  ss << f.rdbuf();
  out += ss.str();
}
}  // namespace

std::string read_corpus(const std::vector<std::string>& paths) {
  SMYRF_CHECK_HINT(!paths.empty(), "corpus", "no corpus paths given", "name text files or folders");
  std::string text;
  for (const std::string& path : paths) {
    SMYRF_CHECK_HINT(fs::exists(path), "corpus", "path not found: " << path,
                     (path.rfind(kFortunesDir, 0) == 0
                          ? "install Debian's fortunes package (apt-get install fortunes)"
                          : "name existing text files or folders"));
    if (fs::is_directory(path)) {
      std::vector<fs::path> files;
      for (auto& e : fs::recursive_directory_iterator(path))
        if (e.is_regular_file() && !skip_file(e.path())) files.push_back(e.path());
      std::sort(files.begin(), files.end());
      for (auto& f : files) append_file(f, text);
    } else {
      append_file(path, text);
    }
  }
  SMYRF_CHECK_HINT(!text.empty(), "corpus", "no text found in the given paths",
                   "the files are empty");
  return text;
}

// ---------------------------------------------------------------- byte tokenizer
std::vector<int32_t> ByteTokenizer::encode(const std::string& text) const {
  std::vector<int32_t> ids(text.size());
  for (size_t i = 0; i < text.size(); ++i) ids[i] = static_cast<unsigned char>(text[i]);
  return ids;
}

std::string ByteTokenizer::decode(const std::vector<int32_t>& ids) const {
  std::string s(ids.size(), '\0');
  for (size_t i = 0; i < ids.size(); ++i) {
    SMYRF_CHECK(ids[i] >= 0 && ids[i] < 256, "ByteTokenizer.decode",
                "id " << ids[i] << " is not a byte");
    s[i] = static_cast<char>(ids[i]);
  }
  return s;
}

std::string ByteTokenizer::to_json() const { return nlohmann::json{{"type", "byte"}}.dump(); }

// ---------------------------------------------------------------- words
namespace {
bool word_byte(unsigned char c) { return std::isalnum(c) || c >= 128; }
uint64_t pair_key(int32_t a, int32_t b) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
}
}  // namespace

std::vector<std::string> split_words(const std::string& t) {
  std::vector<std::string> words;
  size_t i = 0, n = t.size();
  while (i < n) {
    size_t start = i;
    if (t[i] == ' ' && i + 1 < n && word_byte(t[i + 1])) ++i;
    if (word_byte(t[i])) {
      while (i < n && word_byte(t[i])) ++i;
    } else {
      ++i;
    }
    words.push_back(t.substr(start, i - start));
  }
  return words;
}

// ---------------------------------------------------------------- BPE
BpeTokenizer::BpeTokenizer(std::vector<std::pair<int32_t, int32_t>> merges)
    : merges_(std::move(merges)) {
  bytes_.resize(256);
  for (int i = 0; i < 256; ++i) bytes_[i] = std::string(1, static_cast<char>(i));
  for (size_t m = 0; m < merges_.size(); ++m) {
    auto [a, b] = merges_[m];
    int32_t limit = 256 + static_cast<int32_t>(m);
    SMYRF_CHECK(a >= 0 && b >= 0 && a < limit && b < limit, "BpeTokenizer",
                "merge " << m << " refers to ids (" << a << ", " << b << ") not yet defined");
    bytes_.push_back(bytes_[a] + bytes_[b]);
    rank_.emplace_back(pair_key(a, b), static_cast<int32_t>(m));
  }
  std::sort(rank_.begin(), rank_.end());
}

int32_t BpeTokenizer::rank_of(int32_t a, int32_t b) const {
  uint64_t k = pair_key(a, b);
  auto it = std::lower_bound(rank_.begin(), rank_.end(), std::make_pair(k, int32_t{-1}));
  return it != rank_.end() && it->first == k ? it->second : -1;
}

BpeTokenizer BpeTokenizer::train(const std::string& text, int64_t vocab_size) {
  SMYRF_CHECK_HINT(vocab_size >= 256, "BpeTokenizer.train",
                   "vocab_size " << vocab_size << " is below 256",
                   "byte-level BPE needs the 256 byte symbols plus merges");
  std::unordered_map<std::string, int64_t> freq;
  for (auto& w : split_words(text)) freq[w]++;
  std::vector<std::pair<std::string, int64_t>> uniq(freq.begin(), freq.end());
  std::sort(uniq.begin(), uniq.end());  // deterministic word order
  std::vector<std::vector<int32_t>> words;
  std::vector<int64_t> counts;
  for (auto& [w, c] : uniq) {
    if (w.size() < 2) continue;
    std::vector<int32_t> ids;
    for (unsigned char ch : w) ids.push_back(ch);
    words.push_back(std::move(ids));
    counts.push_back(c);
  }
  std::unordered_map<uint64_t, int64_t> pair_count;
  std::unordered_map<uint64_t, std::vector<int32_t>> pair_words;
  auto add_pairs = [&](int32_t wi, int64_t sign) {
    const auto& w = words[wi];
    for (size_t i = 0; i + 1 < w.size(); ++i) {
      uint64_t k = pair_key(w[i], w[i + 1]);
      pair_count[k] += sign * counts[wi];
      if (sign > 0) pair_words[k].push_back(wi);
    }
  };
  for (int32_t wi = 0; wi < static_cast<int32_t>(words.size()); ++wi) add_pairs(wi, +1);
  // max-heap of (count, smaller key first); stale entries are skipped when popped
  using Entry = std::pair<int64_t, uint64_t>;
  auto cmp = [](const Entry& x, const Entry& y) {
    return x.first != y.first ? x.first < y.first : x.second > y.second;
  };
  std::priority_queue<Entry, std::vector<Entry>, decltype(cmp)> heap(cmp);
  for (auto& [k, c] : pair_count) heap.push({c, k});
  std::vector<std::pair<int32_t, int32_t>> merges;
  std::vector<int32_t> stamp(words.size(), -1);
  while (static_cast<int64_t>(merges.size()) + 256 < vocab_size && !heap.empty()) {
    auto [c, k] = heap.top();
    heap.pop();
    auto it = pair_count.find(k);
    if (it == pair_count.end() || it->second != c) continue;  // stale
    if (c < 2) break;                                         // nothing worth merging
    const int32_t a = static_cast<int32_t>(k >> 32), b = static_cast<int32_t>(k & 0xffffffffu);
    const int32_t t = 256 + static_cast<int32_t>(merges.size());
    merges.emplace_back(a, b);
    std::vector<int32_t> affected = std::move(pair_words[k]);
    pair_words.erase(k);
    const int32_t m = static_cast<int32_t>(merges.size());
    std::unordered_map<uint64_t, int64_t> touched;  // pairs whose counts changed
    for (int32_t wi : affected) {
      if (stamp[wi] == m) continue;
      stamp[wi] = m;
      auto& w = words[wi];
      bool has = false;
      for (size_t i = 0; i + 1 < w.size() && !has; ++i) has = w[i] == a && w[i + 1] == b;
      if (!has) continue;
      for (size_t i = 0; i + 1 < w.size(); ++i) touched[pair_key(w[i], w[i + 1])] = 0;
      add_pairs(wi, -1);
      std::vector<int32_t> nw;
      for (size_t i = 0; i < w.size();) {
        if (i + 1 < w.size() && w[i] == a && w[i + 1] == b) {
          nw.push_back(t);
          i += 2;
        } else {
          nw.push_back(w[i++]);
        }
      }
      w = std::move(nw);
      add_pairs(wi, +1);
      for (size_t i = 0; i + 1 < w.size(); ++i) touched[pair_key(w[i], w[i + 1])] = 0;
    }
    pair_count.erase(k);
    // re-announce every changed count; the old heap entries of those pairs no longer match
    // pair_count and are skipped when popped
    for (auto& [pk, unused] : touched) {
      auto pc = pair_count.find(pk);
      if (pc != pair_count.end() && pc->second > 0) heap.push({pc->second, pk});
    }
  }
  return BpeTokenizer(std::move(merges));
}

std::vector<int32_t> BpeTokenizer::encode_word(const std::string& word) const {
  std::vector<int32_t> ids;
  for (unsigned char ch : word) ids.push_back(ch);
  while (ids.size() >= 2) {
    int32_t best = -1;
    for (size_t i = 0; i + 1 < ids.size(); ++i) {
      int32_t r = rank_of(ids[i], ids[i + 1]);
      if (r >= 0 && (best < 0 || r < best)) best = r;
    }
    if (best < 0) break;
    auto [a, b] = merges_[best];
    std::vector<int32_t> nw;
    for (size_t i = 0; i < ids.size();) {
      if (i + 1 < ids.size() && ids[i] == a && ids[i + 1] == b) {
        nw.push_back(256 + best);
        i += 2;
      } else {
        nw.push_back(ids[i++]);
      }
    }
    ids = std::move(nw);
  }
  return ids;
}

std::vector<int32_t> BpeTokenizer::encode(const std::string& text) const {
  std::unordered_map<std::string, std::vector<int32_t>> cache;
  std::vector<int32_t> out;
  out.reserve(text.size() / 3);
  for (const std::string& w : split_words(text)) {
    auto it = cache.find(w);
    if (it == cache.end()) it = cache.emplace(w, encode_word(w)).first;
    out.insert(out.end(), it->second.begin(), it->second.end());
  }
  return out;
}

std::string BpeTokenizer::decode(const std::vector<int32_t>& ids) const {
  std::string s;
  for (int32_t id : ids) {
    SMYRF_CHECK(id >= 0 && id < vocab_size(), "BpeTokenizer.decode",
                "id " << id << " is outside the vocabulary of " << vocab_size());
    s += bytes_[id];
  }
  return s;
}

std::string BpeTokenizer::to_json() const {
  nlohmann::json j;
  j["type"] = "bpe";
  j["merges"] = nlohmann::json::array();
  for (auto [a, b] : merges_) j["merges"].push_back({a, b});
  return j.dump();
}

std::unique_ptr<Tokenizer> tokenizer_from_json(const std::string& text) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const std::exception& e) {
    throw Error("tokenizer", std::string("invalid tokenizer JSON: ") + e.what(),
                "the file is damaged");
  }
  std::string type = j.value("type", "");
  if (type == "byte") return std::make_unique<ByteTokenizer>();
  SMYRF_CHECK_HINT(type == "bpe", "tokenizer", "unknown tokenizer type '" << type << "'",
                   "expected byte or bpe");
  std::vector<std::pair<int32_t, int32_t>> merges;
  for (auto& m : j.at("merges"))
    merges.emplace_back(m.at(0).get<int32_t>(), m.at(1).get<int32_t>());
  return std::make_unique<BpeTokenizer>(std::move(merges));
}

// ---------------------------------------------------------------- streams and windows
TokenStreams split_tokens(std::vector<int32_t> tokens, double val_fraction) {
  SMYRF_CHECK(val_fraction > 0 && val_fraction < 1, "split_tokens",
              "val_fraction must be in (0, 1), got " << val_fraction);
  size_t cut = tokens.size() - static_cast<size_t>(tokens.size() * val_fraction);
  TokenStreams s;
  s.val.assign(tokens.begin() + cut, tokens.end());
  tokens.resize(cut);
  s.train = std::move(tokens);
  return s;
}

std::pair<Tensor, Tensor> random_windows(const std::vector<int32_t>& stream, int64_t batch,
                                         int64_t context, Generator& gen) {
  const int64_t n = static_cast<int64_t>(stream.size());
  SMYRF_CHECK_HINT(n > context, "random_windows",
                   "a stream of " << n << " tokens is too short for windows of " << context + 1,
                   "use a shorter context or a larger corpus");
  Tensor starts = randint(0, n - context, {batch}, DType::Int64, &gen);
  std::vector<int64_t> st = starts.to_vector<int64_t>();
  std::vector<int64_t> x(batch * context), y(batch * context);
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t i = 0; i < context; ++i) {
      x[b * context + i] = stream[st[b] + i];
      y[b * context + i] = stream[st[b] + i + 1];
    }
  return {from_vector(x, {batch, context}), from_vector(y, {batch, context})};
}

}  // namespace smyrf::data
