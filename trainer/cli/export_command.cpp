// `anchor-rl export --merge CKPT --out DIR`: a LoRA checkpoint (or any adapter directory) as a
// plain Hugging Face model directory: each adapted weight W + (alpha / rank) · B·A, the trained
// token rows written into the embedding, the tokenizer beside it.
#include <CLI/CLI.hpp>
#include <torch/torch.h>

#include <filesystem>
#include <iostream>
#include <memory>

#include "trainer/checkpoint/checkpoint.h"
#include "trainer/cli/commands.h"
#include "trainer/common/error.h"
#include "trainer/common/file_util.h"
#include "trainer/model/pretrained.h"

namespace anchor::cli {
namespace {

namespace fs = std::filesystem;

struct ExportOptions {
  std::string merge;
  std::string out;
  std::string dtype = "auto";
};

// `auto`: the dtype the base model's config.json names (transformers 5 `dtype`, 4.x `torch_dtype`).
at::ScalarType save_dtype(const std::string& dtype, const std::string& base_dir) {
  std::string name = dtype;
  if (name == "auto") {
    const nlohmann::json config = read_json_file((fs::path(base_dir) / "config.json").string());
    name = config.value("dtype", config.value("torch_dtype", std::string("float32")));
  }
  if (name == "float32") return at::kFloat;
  if (name == "bfloat16") return at::kBFloat16;
  if (name == "float16") return at::kHalf;
  AR_FAIL("--dtype ", dtype, ": the base model's dtype '", name, "' is not float32, bfloat16 or float16");
}

int run_export(const ExportOptions& o) {
  std::string source = o.merge;
  // A run directory: its newest intact checkpoint.
  if (fs::is_directory(fs::path(source) / "checkpoints")) source = resolve_checkpoint(source, "latest");
  AR_CHECK(fs::is_directory(source), "--merge ", source, ": not a directory");
  AR_CHECK(is_adapter_directory(source), "--merge ", source, ": no ", kAdapterConfigFile,
           " (not a LoRA checkpoint; a full model directory needs no merge)");
  AR_CHECK(!fs::exists(o.out) || (fs::is_directory(o.out) && fs::is_empty(o.out)), "--out ", o.out,
           ": exists and is not an empty directory (nothing was written)");
  Pretrained p = load_pretrained(source, torch::TensorOptions().dtype(torch::kFloat));
  const at::ScalarType dtype = save_dtype(o.dtype, p.base_dir);
  const LoraSettings lora = p.model.lora();
  p.model.merge_adapters();  // in float32, then converted once
  // Written beside the target and renamed into place: an interrupted export leaves no half model.
  const fs::path out = fs::absolute(o.out).lexically_normal();
  const fs::path tmp = out.parent_path() / (".tmp-" + out.filename().string());
  fs::remove_all(tmp);
  save_model(p.model, tmp.string(), 0, dtype);
  p.tokenizer.save(tmp.string());
  if (fs::exists(out)) fs::remove(out);
  fs::rename(tmp, out);
  std::cout << "merged " << source << " (rank " << lora.rank << ", alpha " << lora.alpha << ", "
            << lora.targets.size() << " target modules"
            << (lora.trainable_tokens.empty() ? std::string() : str_cat(", ", lora.trainable_tokens.size(), " token rows"))
            << ") into " << p.base_dir << " -> " << out.string() << " (" << c10::toString(dtype) << ")\n";
  return 0;
}

}  // namespace

Action register_export(CLI::App& app) {
  auto o = std::make_shared<ExportOptions>();
  CLI::App* sub = app.add_subcommand("export", "Write a LoRA checkpoint as a plain Hugging Face model (base + merged adapters)");
  sub->add_option("--merge", o->merge, "LoRA checkpoint or adapter directory (a run directory: its latest checkpoint)")
      ->required();
  sub->add_option("--out", o->out, "new model directory (must not exist, or be empty)")->required();
  sub->add_option("--dtype", o->dtype, "weights dtype: auto (the base model's), float32, bfloat16 or float16")
      ->check(CLI::IsMember({"auto", "float32", "bfloat16", "float16"}));
  return [sub, o]() -> int { return sub->parsed() ? run_export(*o) : -1; };
}

}  // namespace anchor::cli
