// What `anchor-rl sft` trains on, per sft.mode (docs/design.md §6), and what `anchor-rl sft-prepare`
// writes for inspection:
//   plain              the rows as they are
//   conditional        every target sentence scored (sft.conditional.scorer), labelled good /
//                      bad against the threshold, <|good|> / <|bad|> inserted before it (a
//                      seeded fraction left without a token); the tokens join the vocabulary
//   context_indicator  every (user turn, response) scored by a seed model's attention; turns
//                      above beta get " [IND]" appended to the user message; [IND] joins the
//                      vocabulary
// Deterministic from the config and the data, so a resumed run prepares the same examples.
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "data/chat_template.h"
#include "data/sft_dataset.h"
#include "trainer/config/train_config.h"
#include "trainer/model/pretrained.h"
#include "trainer/sft/sft_examples.h"

namespace anchor::sft {

struct PreparedSft {
  data::SftDataset records;                 // after the mode's text transformation
  std::vector<SftExample> examples;         // one per record
  std::vector<nlohmann::json> annotations;  // one per record: what the mode decided
  nlohmann::json summary;                   // counts (sentences good / bad / none, turns flagged, ...)
};

// data.train read with the config's keys (data.prompt_key, sft.response_key, sft.text_key).
data::SftDataset load_sft_dataset(const TrainConfig& cfg);

// Transforms and tokenizes `records` for cfg.sft.mode; adds the mode's special tokens to
// `policy` (tokenizer and embedding rows; a no-op for tokens it has, e.g. on resume).
PreparedSft prepare_sft_data(const TrainConfig& cfg, data::SftDataset records, Pretrained& policy,
                             const data::ChatTemplate& chat);

// One JSON line per record (source line, kind, transformed messages, the text as tokenized with
// special tokens shown, token and loss-token counts, the mode's annotation).
void write_prepared_sft(const std::string& path, const PreparedSft& prepared, const Tokenizer& tokenizer);

}  // namespace anchor::sft
