#pragma once
// Chat templates as transformers' apply_chat_template renders them (Idefics3/SmolVLM, LLaVA,
// ChatML/SmolLM2, Llama ...): the Jinja `chat_template` of chat_template.json (processor) or
// tokenizer_config.json, rendered with `messages`, `add_generation_prompt` and the tokenizer's special
// tokens (bos_token, eos_token, unk_token, pad_token, additional_special_tokens) as variables.
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "tokenizers/jinja_template.hpp"
#include "tokenizers/llm_tokenizer.hpp"

namespace pictor::tokenizers {

class ChatTemplate {
 public:
  // chat_template.json "chat_template" when that file exists, else tokenizer_config.json "chat_template"
  // (a string, or a list of {name, template} of which "default" is used). Special tokens come from
  // tokenizer_config.json / special_tokens_map.json. Throws pictor::Error naming the file when there is no
  // template or it does not parse.
  static ChatTemplate load(const std::filesystem::path& dir);
  static ChatTemplate from_string(const std::string& source, const SpecialTokens& special = {},
                                  const std::string& name = "chat_template");

  // `messages`: a list of {"role": ..., "content": "text" | [{"type": "text", "text": ...}, {"type": "image"}]}
  // (OpenAI-like, passed to the template unchanged). `extra` (an object) adds or overrides variables.
  std::string render(const nlohmann::json& messages, bool add_generation_prompt = false,
                     const nlohmann::json& extra = nlohmann::json::object()) const;

  const std::string& source() const { return source_; }

 private:
  JinjaTemplate template_;
  std::string source_;
  SpecialTokens special_;
};

}  // namespace pictor::tokenizers
