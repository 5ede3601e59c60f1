#pragma once
// Which files of a hub repository `pictor pull` downloads.
//
// Default rule (no --include): keep what Pictor loads, skip everything else:
//   * kept: *.json (configs, tokenizer.json, vocab.json, *.safetensors.index.json), *.txt (merges.txt,
//     vocab.txt), *.model (SentencePiece tokenizers), *.jinja (chat templates), *.safetensors;
//   * so other weight formats are never fetched: *.bin, *.ckpt, *.pt, *.pth, *.onnx, *.msgpack, *.h5, *.gguf,
//     and neither are docs/images (README.md, *.png ...);
//   * weight variants are skipped when the plain file exists: "name.VARIANT.safetensors" (fp16, bf16,
//     ema, non_ema ...), its shards "name.VARIANT-00001-of-00002.safetensors" and its index
//     "name.VARIANT.safetensors.index.json" are dropped if "name.safetensors" or
//     "name.safetensors.index.json" is in the same folder; a variant-only repo keeps its variant;
//   * in a diffusers repo (model_index.json at the root), *.safetensors at the root are single-file
//     checkpoints duplicating the component folders (e.g. v1-5-pruned-emaonly.safetensors) and are skipped.
// --include GLOB (repeatable) replaces the default rule: exactly the files matching one glob are kept.
// --exclude GLOB (repeatable) then removes matching files. Globs are shell-style (fnmatch) on the full
// repository path, and '*' also matches '/' (like huggingface-cli): "unet/*", "*.fp16.*".
#include <string>
#include <vector>

namespace pictor::hub {

struct FileFilter {
  std::vector<std::string> include;  // empty: the default rule above
  std::vector<std::string> exclude;
};

bool glob_match(const std::string& pattern, const std::string& path);

// Returns the subset of `repo_files` (repository paths) to download, in the input order.
std::vector<std::string> select_files(const std::vector<std::string>& repo_files, const FileFilter& filter);

}  // namespace pictor::hub
