# Sources that compile without LibTorch, by library. Shared by the main build and the fuzzing
# build (tests/fuzz/), which compiles them with clang and -fsanitize=fuzzer-no-link.
set(ANCHOR_LOG_SOURCES trainer/common/log.cpp)
# Errors, files, config, data, rewards, checkpoint manifests, safetensors headers, ablation studies.
set(ANCHOR_BASE_SOURCES
  trainer/common/error.cpp
  trainer/common/file_util.cpp
  trainer/common/stop_request.cpp
  trainer/common/test_hooks.cpp
  trainer/checkpoint/checkpoint_manifest.cpp
  trainer/model/safetensors_header.cpp
  trainer/model/llama_config.cpp
  trainer/model/lora_config.cpp
  rewards/answer_extraction.cpp
  rewards/countdown.cpp
  rewards/arithmetic_claims.cpp
  rewards/reward_function.cpp
  rewards/reward_parameters.cpp
  rewards/reward_protocol.cpp
  rewards/reward_process.cpp
  rewards/http_reward_client.cpp
  rewards/external_reward.cpp
  data/prompt_dataset.cpp
  data/sft_dataset.cpp
  data/chat_template.cpp
  trainer/config/train_config.cpp
  trainer/config/config_validation.cpp
  credit/credit_options.cpp
  credit/sentence_segmentation.cpp
  trainer/rollout/control_tokens.cpp
  trainer/sft/control_text.cpp
  trainer/analysis/credit_html.cpp
  trainer/ablation/ablation_spec.cpp
  trainer/ablation/ablation_statistics.cpp
  trainer/ablation/ablation_report.cpp
  trainer/ablation/ablation_runner.cpp
)
# Tokenizers: SentencePiece, and tokenizer.json byte-level BPE on PCRE2 + ICU.
set(ANCHOR_TOKENIZER_SOURCES
  trainer/model/unicode_text.cpp
  trainer/model/byte_level.cpp
  trainer/model/pre_tokenizer.cpp
  trainer/model/bpe_model.cpp
  trainer/model/hf_tokenizer.cpp
  trainer/model/sentencepiece_tokenizer.cpp
  trainer/model/tokenizer.cpp
)
