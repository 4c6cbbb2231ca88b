// Corpora, byte and BPE tokenizers, splits and training windows.
#include <doctest/doctest.h>

#include <unistd.h>
#include <filesystem>
#include <fstream>
#include <map>

#include "data/text.h"

using namespace smyrf;
using namespace smyrf::data;
namespace fs = std::filesystem;

namespace {
const std::string kSample =
    "the cat sat on the mat. the cat ate the rat; the rat sat on the hat.\n"
    "A hat, a mat, a cat: that is that! 42 cats and 7 rats... naïve café déjà vu\n";
}

TEST_CASE("split_words keeps every byte and attaches one leading space to words") {
  auto w = split_words("hi  there, you2!");
  std::string joined;
  for (auto& s : w) joined += s;
  CHECK(joined == "hi  there, you2!");
  CHECK(w == std::vector<std::string>{"hi", " ", " there", ",", " you2", "!"});
}

TEST_CASE("byte tokenizer round-trips any bytes") {
  ByteTokenizer t;
  std::string s = kSample + std::string("\0\xff\x80", 3);
  auto ids = t.encode(s);
  CHECK(ids.size() == s.size());
  CHECK(t.decode(ids) == s);
  CHECK_THROWS_AS(t.decode({300}), Error);
}

TEST_CASE("BPE: deterministic training, lossless round trip, fewer tokens than bytes") {
  std::string corpus;
  for (int i = 0; i < 20; ++i) corpus += kSample;
  BpeTokenizer a = BpeTokenizer::train(corpus, 300);
  BpeTokenizer b = BpeTokenizer::train(corpus, 300);
  CHECK(a.merges() == b.merges());
  CHECK(a.vocab_size() > 256);
  CHECK(a.vocab_size() <= 300);
  auto ids = a.encode(kSample);
  CHECK(a.decode(ids) == kSample);
  CHECK(ids.size() < kSample.size() / 2);
  // the most frequent pair in this corpus is merged first
  CHECK(a.token_bytes(256).size() == 2);
  // unseen text, including bytes never in the corpus, still round-trips
  std::string other = "zebra qux \x01\x02 ünïcödé";
  CHECK(a.decode(a.encode(other)) == other);
  // JSON round trip gives the same encoding
  auto c = tokenizer_from_json(a.to_json());
  CHECK(c->kind() == "bpe");
  CHECK(c->encode(kSample) == ids);
  CHECK(tokenizer_from_json(ByteTokenizer().to_json())->vocab_size() == 256);
  CHECK_THROWS_WITH_AS(tokenizer_from_json("{\"type\": \"wordpiece\"}"),
                       doctest::Contains("unknown tokenizer"), Error);
  CHECK_THROWS_AS(BpeTokenizer::train(corpus, 100), Error);
}

TEST_CASE("BPE training matches a from-scratch recount at every merge") {
  // brute force: recount all pairs over the word multiset after each merge and take the max
  std::string corpus;
  for (int i = 0; i < 5; ++i) corpus += kSample;
  BpeTokenizer fast = BpeTokenizer::train(corpus, 290);
  std::map<std::string, int64_t> freq;
  for (auto& w : split_words(corpus))
    if (w.size() >= 2) freq[w]++;
  std::vector<std::pair<std::vector<int32_t>, int64_t>> words;
  for (auto& [w, c] : freq) {
    std::vector<int32_t> ids;
    for (unsigned char ch : w) ids.push_back(ch);
    words.emplace_back(ids, c);
  }
  for (size_t m = 0; m < fast.merges().size(); ++m) {
    std::map<std::pair<int32_t, int32_t>, int64_t> counts;
    for (auto& [w, c] : words)
      for (size_t i = 0; i + 1 < w.size(); ++i) counts[{w[i], w[i + 1]}] += c;
    std::pair<int32_t, int32_t> best{-1, -1};
    int64_t bc = 0;
    for (auto& [p, c] : counts)
      if (c > bc) bc = c, best = p;  // map order: ties go to the smaller pair
    REQUIRE(bc >= 2);
    CHECK(fast.merges()[m] == best);
    for (auto& [w, c] : words) {
      std::vector<int32_t> nw;
      for (size_t i = 0; i < w.size();) {
        if (i + 1 < w.size() && w[i] == best.first && w[i + 1] == best.second) {
          nw.push_back(256 + static_cast<int32_t>(m));
          i += 2;
        } else {
          nw.push_back(w[i++]);
        }
      }
      w = nw;
    }
  }
}

TEST_CASE("corpus: files and folders, clear errors, the default fortunes corpus") {
  fs::path dir = fs::temp_directory_path() / ("smyrf_text_" + std::to_string(::getpid()));
  fs::create_directories(dir / "sub");
  std::ofstream(dir / "b.txt") << "bbb";
  std::ofstream(dir / "sub" / "a.txt") << "aaa";
  std::ofstream(dir / "skip.dat") << "index";
  CHECK(read_corpus({dir.string()}) == "bbbaaa");
  CHECK(read_corpus({(dir / "b.txt").string()}) == "bbb");
  CHECK_THROWS_WITH_AS(read_corpus({(dir / "missing").string()}),
                       doctest::Contains("path not found"), Error);
  fs::create_directories(dir / "empty");
  CHECK_THROWS_WITH_AS(read_corpus({(dir / "empty").string()}), doctest::Contains("no text"),
                       Error);
  fs::remove_all(dir);
  if (fs::exists(kFortunesDir)) CHECK(read_corpus({kFortunesDir}).size() > 1000000);
}

TEST_CASE("splits and windows: targets are inputs shifted by one") {
  std::vector<int32_t> toks(100);
  for (int i = 0; i < 100; ++i) toks[i] = i;
  TokenStreams s = split_tokens(toks, 0.1);
  CHECK(s.train.size() == 90);
  CHECK(s.val.front() == 90);
  Generator g(3);
  auto [x, y] = random_windows(s.train, 4, 8, g);
  CHECK(x.shape() == Shape{4, 8});
  auto xv = x.to_vector<int64_t>(), yv = y.to_vector<int64_t>();
  for (size_t i = 0; i < xv.size(); ++i) CHECK(yv[i] == xv[i] + 1);
  CHECK_THROWS_WITH_AS(random_windows(s.val, 1, 20, g), doctest::Contains("too short"), Error);
}
