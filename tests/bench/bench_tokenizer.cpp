// Benchmark: encode throughput of anchor-rl's tokenizer on a file of texts (one JSON string per
// line), best of --repeat passes; prints one JSON line. scripts/bench/bench_tokenizer.py compares it
// with the `tokenizers` library on the same texts.
//   anchor-bench-tokenizer --model DIR --texts FILE.jsonl [--repeat 3]
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstring>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "trainer/model/tokenizer.h"

int main(int argc, char** argv) {
  std::string model, texts_file;
  int repeat = 3;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--model")) model = argv[i + 1];
    else if (!std::strcmp(argv[i], "--texts")) texts_file = argv[i + 1];
    else if (!std::strcmp(argv[i], "--repeat")) repeat = std::atoi(argv[i + 1]);
  }
  if (model.empty() || texts_file.empty()) {
    std::cerr << "usage: anchor-bench-tokenizer --model DIR --texts FILE.jsonl [--repeat 3]\n";
    return 1;
  }
  try {
    const anchor::Tokenizer tok = anchor::Tokenizer::load(model);
    std::vector<std::string> texts;
    std::ifstream in(texts_file);
    std::string line;
    size_t bytes = 0;
    while (std::getline(in, line)) {
      texts.push_back(nlohmann::json::parse(line).get<std::string>());
      bytes += texts.back().size();
    }
    double best = 1e30;
    size_t tokens = 0;
    for (int r = 0; r < repeat; ++r) {
      tokens = 0;
      const auto t0 = std::chrono::steady_clock::now();
      for (const auto& t : texts) tokens += tok.encode(t, false).size();
      best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
    std::cout << nlohmann::json{{"texts", texts.size()}, {"bytes", bytes}, {"tokens", tokens}, {"seconds", best},
                                {"mb_per_second", bytes / 1e6 / best}, {"tokens_per_second", tokens / best}}
                     .dump()
              << "\n";
  } catch (const std::exception& e) {
    std::cerr << "anchor-bench-tokenizer: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
