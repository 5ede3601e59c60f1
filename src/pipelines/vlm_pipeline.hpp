#pragma once
// Image -> text with a transformers-layout vision-language model folder: Idefics3 / SmolVLM or LLaVA-1.5,
// picked from config.json (`model_type`, else `architectures`). One request is one user turn holding the
// images followed by the text, rendered with the model's chat template (add_generation_prompt), with every
// `<image>` expanded to the model's image tokens, tokenized, generated and decoded (special tokens
// skipped, whitespace stripped) — the same steps as transformers' processor + generate + batch_decode.
#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "formats/image.hpp"
#include "models/text_generation.hpp"
#include "tokenizers/llm_tokenizer.hpp"

namespace pictor::pipelines {

enum class VlmFamily { Idefics3, Llava };
const char* vlm_family_name(VlmFamily family);  // "idefics3", "llava"

// Model inputs of one request, for inspection and tests.
struct VlmInputs {
  std::string rendered_prompt;      // chat template output
  std::string expanded_prompt;      // after image-token expansion (what is tokenized)
  at::Tensor input_ids;             // [1, T] int64
  at::Tensor attention_mask;        // [1, T] int64 (all ones)
  at::Tensor pixel_values;          // Idefics3 [1, frames, 3, H, W]; LLaVA [N, 3, H, W]
  at::Tensor pixel_attention_mask;  // Idefics3 only
};

struct VlmCallbacks {
  // Called with each new piece of decoded text as generation goes (leading whitespace of the answer and
  // incomplete UTF-8 sequences are held back, special tokens skipped). Return false to stop early.
  std::function<bool(const std::string& piece)> on_text;
};

struct VlmOutput {
  std::string text;                 // decoded new tokens (special tokens skipped), whitespace stripped
  std::vector<int64_t> new_tokens;  // generated ids (EOS included when produced)
  int64_t prompt_tokens = 0;
  bool finished = false;  // stopped by EOS / stop string (false: ran out of max_new_tokens or cancelled)
  bool cancelled = false;
};

class VisionLanguageModel {
 public:
  // Loads config.json, model*.safetensors, the tokenizer, chat template, image processor configs and
  // generation_config.json (optional). Unknown families throw Unsupported naming config.json's field.
  // int8_decoder: the language model's linear layers are stored as int8 with per-row scales
  // (LlamaModel::quantize_int8), quantized layer by layer while it is built so the fp32 model never exists
  // whole; decoding streams a quarter of the bytes per token. The vision encoder stays fp32.
  static std::unique_ptr<VisionLanguageModel> load(const std::filesystem::path& dir, c10::Device device = c10::kCPU,
                                                   bool int8_decoder = false);
  ~VisionLanguageModel();

  VlmFamily family() const;
  const std::filesystem::path& dir() const;
  // Decoding defaults of the folder (generation_config.json, EOS ids completed with the end-of-turn token).
  const models::GenerationConfig& default_generation() const;
  const tokenizers::LlmTokenizer& tokenizer() const;

  bool decoder_int8() const;
  int64_t decoder_int8_saved_bytes() const;  // bytes the int8 language model saves against fp32

  // [{"role": "user", "content": [{"type": "image"} x num_images, {"type": "text", "text": text}]}]
  static nlohmann::json user_turn(size_t num_images, const std::string& text);
  // The chat template applied with add_generation_prompt = true.
  std::string render_prompt(const nlohmann::json& messages) const;
  // Images (in the order of the `image` parts of `messages`) + messages -> model inputs.
  VlmInputs prepare(const std::vector<Image>& images, const nlohmann::json& messages) const;

  // Describes/answers about `images` (at least one) with `prompt` as the user's text.
  VlmOutput describe(const std::vector<Image>& images, const std::string& prompt,
                     const models::GenerationConfig& config, const VlmCallbacks& callbacks = {}) const;
  // The same on prepared inputs.
  VlmOutput generate(const VlmInputs& inputs, const models::GenerationConfig& config,
                     const VlmCallbacks& callbacks = {}) const;

 private:
  struct Impl;
  explicit VisionLanguageModel(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Which family a config.json describes: model_type "idefics3" / "llava", else architectures
// Idefics3ForConditionalGeneration / LlavaForConditionalGeneration. Throws Unsupported naming the file.
VlmFamily detect_vlm_family(const std::filesystem::path& config_json);

}  // namespace pictor::pipelines
