#pragma once
// Pictor's public C++ API for image-to-text (captions, alt text, descriptions) with a vision-language
// model: SmolVLM / Idefics3 or LLaVA-1.5 in the transformers folder layout. No libtorch types appear here.
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "formats/image.hpp"

namespace pictor {

struct DescribeOptions {
  std::vector<Image> images;  // one or more; all go into one request (the prompt refers to them together)
  // The instruction. Empty: the style's preset prompt (see docs/DESCRIBE.md).
  std::string prompt;
  // "alt", "caption", "detailed" or "product": prompt preset + post-processing. Empty: "caption", or no
  // post-processing (only whitespace stripped) when `prompt` is given.
  std::string style;
  // New-token budget; 0: the style's default (64 alt/caption, 400 detailed, 300 product, 256 without a style).
  int max_tokens = 0;
  std::optional<uint64_t> seed;   // sampling seed; unset: random when sampling (reported back), 0 when greedy
  double temperature = 0;         // 0: greedy decoding (deterministic); > 0: sampling
  double top_p = 1.0;             // nucleus sampling (1: off)
  int top_k = 0;                  // top-k sampling (0: off)
  double repetition_penalty = 0;  // 0: the model's generation_config.json value (1 = off)
};

struct Description {
  std::string text;      // after the style's post-processing
  std::string raw_text;  // the model's answer, whitespace stripped
  std::string style;     // the style applied ("" when none)
  std::string prompt;    // the instruction sent
  uint64_t seed = 0;
  int prompt_tokens = 0, new_tokens = 0;
  bool truncated = false;  // ran out of max_tokens before the model ended its answer
  bool cancelled = false;  // the stream callback returned false
  // Why generation ended, in OpenAI's words: "stop" (the model ended its answer or a stop string was
  // reached), "length" (max_tokens ran out) or "cancelled".
  std::string finish_reason;
  double seconds = 0;
};

// One piece of a chat message: text, or an image given by its index into ChatOptions::images.
struct ChatPart {
  enum class Kind { Text, Image };
  Kind kind = Kind::Text;
  std::string text;
  size_t image = 0;
  static ChatPart text_part(std::string text) { return {Kind::Text, std::move(text), 0}; }
  static ChatPart image_part(size_t index) { return {Kind::Image, "", index}; }
};

struct ChatMessage {
  std::string role;  // "system", "user" or "assistant"
  std::vector<ChatPart> parts;
};

// A conversation, rendered with the model's chat template; the model writes the next assistant turn.
struct ChatOptions {
  std::vector<ChatMessage> messages;
  std::vector<Image> images;      // referenced by the messages' image parts (at least one image overall)
  int max_tokens = 256;           // new-token budget, 1..4096
  std::optional<uint64_t> seed;   // unset: random when sampling (reported back), 0 when greedy
  double temperature = 0;         // 0: greedy decoding; > 0: sampling
  double top_p = 1.0;             // nucleus sampling (1: off)
  int top_k = 0;                  // top-k sampling (0: off)
  double repetition_penalty = 0;  // 0: the model's generation_config.json value
  // Generation ends at the first of these in the answer; the stop string itself is not part of the text
  // (nor of the streamed pieces) and finish_reason is "stop".
  std::vector<std::string> stop;
};

// Receives the answer's text piece by piece while it is generated (before post-processing). Return false
// to stop early.
using TextStreamCallback = std::function<bool(const std::string& piece)>;

class ImageToText {
 public:
  // Loads a transformers-layout Idefics3/SmolVLM or LLaVA folder. threads 0: all cores. int8_decoder:
  // store the language model's linear layers as int8 with per-row scales -- a quarter of their memory and
  // 2-2.6x the decoding speed (measured, SmolVLM-256M and -2B), at a small cost in accuracy
  // (docs/PERFORMANCE.md). The layers are quantized as they are built: the fp32 model never exists whole.
  static std::unique_ptr<ImageToText> load(const std::string& model_dir, int threads = 0, bool int8_decoder = false);
  ~ImageToText();
  Description describe(const DescribeOptions& opts, const TextStreamCallback& on_text = {});
  // Answers the conversation's next assistant turn. The streamed pieces concatenate to the answer's
  // text (stop strings and surrounding whitespace excluded). Description::style and prompt stay empty.
  Description chat(const ChatOptions& opts, const TextStreamCallback& on_text = {});
  // The chat template's output for these messages (with the assistant's generation prompt).
  std::string render_chat(const std::vector<ChatMessage>& messages) const;
  // The options actually used after defaults are applied (style, prompt, max_tokens, seed).
  DescribeOptions resolve(const DescribeOptions& opts) const;
  const std::string& model_name() const;  // the folder name
  std::string family() const;             // "idefics3" or "llava"
  bool int8_decoder() const;              // loaded with int8_decoder
  int64_t int8_saved_bytes() const;       // bytes the int8 weights save against fp32 (0 without int8_decoder)

 private:
  struct Impl;
  explicit ImageToText(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// The default image-to-text model, pulled from the Hugging Face hub on first use.
inline constexpr const char* kDefaultVlmRepo = "HuggingFaceTB/SmolVLM-256M-Instruct";

// resolve_model_dir (text_to_image.hpp) for vision-language models: a folder, a hub repo id, or empty for
// kDefaultVlmRepo.
std::string resolve_vlm_model_dir(const std::string& model, bool allow_pull = true);

}  // namespace pictor
