#include "trainer/sft/vocabulary_extension.h"

#include "trainer/common/error.h"

namespace anchor::sft {

std::vector<int64_t> add_special_tokens(Pretrained& pretrained, const std::vector<std::string>& tokens,
                                        double noise_std, uint64_t seed) {
  const int64_t base_rows = pretrained.tokenizer.vocab_size();
  std::vector<int64_t> ids, added;
  for (const std::string& token : tokens) {
    int64_t id = pretrained.tokenizer.token_id(token);
    if (id < 0) {
      id = pretrained.tokenizer.add_special_token(token);
      added.push_back(id);
    }
    ids.push_back(id);
  }
  // A model whose embedding is smaller than its tokenizer's vocabulary could not embed the
  // tokenizer's own ids; the loader refuses such models, so base_rows rows always exist.
  AR_CHECK(base_rows <= pretrained.model.config().vocab_size, "adding special tokens: the tokenizer has ", base_rows,
           " tokens but the model only ", pretrained.model.config().vocab_size, " embedding rows");
  pretrained.model.init_token_rows(added, base_rows, noise_std, seed);
  // LoRA: the base embedding is frozen, so these tokens' rows train beside the adapters (a resumed
  // run or adapters that already train them keep theirs).
  if (pretrained.model.has_lora() && pretrained.model.lora().trainable_tokens != ids)
    pretrained.model.train_token_rows(ids);
  return ids;
}

}  // namespace anchor::sft
