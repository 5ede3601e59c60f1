#pragma once
// `pictor dev make-tiny-vlm DIR`: writes a complete, loadable Idefics3 / SmolVLM-layout folder (config.json
// with vision_config + text_config, model.safetensors with small random weights, generation_config.json,
// a byte-level BPE tokenizer generated here (vocab.json, merges.txt, tokenizer.json, tokenizer_config.json
// with a SmolVLM-style chat template), preprocessor_config.json and processor_config.json), so the whole
// image-to-text path (loading, chat template, image splitting, generation, CLI) runs in tests offline.
#include <cstdint>
#include <filesystem>

namespace pictor::dev {

struct TinyVlmOptions {
  uint64_t seed = 4321;  // weight seed
};

void make_tiny_vlm(const std::filesystem::path& dir, const TinyVlmOptions& opts = {});

// Writes only the tokenizer files (vocab.json, merges.txt, tokenizer.json, tokenizer_config.json,
// special_tokens_map.json) of the tiny VLM; returns its vocabulary size (added tokens included).
int64_t write_tiny_vlm_tokenizer(const std::filesystem::path& dir);

// The SmolVLM-style chat template the tiny folder carries ("<|im_start|>User:<image>text<end_of_utterance>\n
// Assistant:").
const char* tiny_vlm_chat_template();

}  // namespace pictor::dev
