#include "tokenizers/chat_template.hpp"

#include "core/json_file.hpp"
#include "tokenizers/added_tokens.hpp"

namespace pictor::tokenizers {

namespace {

// tokenizer_config.json "chat_template": a string, or [{"name": ..., "template": ...}] (named templates).
std::string template_text(const json& value, const std::string& file) {
  if (value.is_string()) return value.get<std::string>();
  if (value.is_array()) {
    for (const auto& entry : value)
      if (entry.is_object() && entry.value("name", std::string()) == "default" && entry.contains("template") &&
          entry.at("template").is_string())
        return entry.at("template").get<std::string>();
    throw Error(file + ": field 'chat_template' is a list without a 'default' template");
  }
  throw Error(file + ": field 'chat_template' is neither a string nor a list of named templates");
}

}  // namespace

ChatTemplate ChatTemplate::from_string(const std::string& source, const SpecialTokens& special,
                                       const std::string& name) {
  ChatTemplate t;
  t.template_ = JinjaTemplate::parse(source, name);
  t.source_ = source;
  t.special_ = special;
  return t;
}

ChatTemplate ChatTemplate::load(const std::filesystem::path& dir) {
  const TokenizerConfigInfo info = read_tokenizer_config(dir);
  const std::filesystem::path processor_file = dir / "chat_template.json";
  if (std::filesystem::exists(processor_file)) {
    const json j = read_json_file(processor_file);
    if (!j.is_object() || !j.contains("chat_template"))
      throw Error(processor_file.string() + ": missing field 'chat_template'");
    return from_string(template_text(j.at("chat_template"), processor_file.string()), info.special,
                       processor_file.string());
  }
  const std::filesystem::path config_file = dir / "tokenizer_config.json";
  if (!std::filesystem::exists(config_file))
    throw Error(dir.string() + ": no chat template (neither chat_template.json nor tokenizer_config.json)");
  const json cfg = read_json_file(config_file);
  if (!cfg.is_object() || !cfg.contains("chat_template") || cfg.at("chat_template").is_null())
    throw Error(config_file.string() + ": no 'chat_template' (and no chat_template.json next to it)");
  return from_string(template_text(cfg.at("chat_template"), config_file.string()), info.special, config_file.string());
}

std::string ChatTemplate::render(const json& messages, bool add_generation_prompt, const json& extra) const {
  if (!messages.is_array()) throw Error("chat template: messages must be a list");
  json vars = json::object();
  const struct {
    const char* key;
    const std::string& value;
  } named[] = {{"bos_token", special_.bos},
               {"eos_token", special_.eos},
               {"unk_token", special_.unk},
               {"pad_token", special_.pad}};
  for (const auto& n : named)
    if (!n.value.empty()) vars[n.key] = n.value;
  if (!special_.additional.empty()) vars["additional_special_tokens"] = special_.additional;
  vars["messages"] = messages;
  vars["add_generation_prompt"] = add_generation_prompt;
  if (!extra.is_object()) throw Error("chat template: extra variables must be a JSON object");
  for (const auto& [k, v] : extra.items()) vars[k] = v;
  return template_.render(vars);
}

}  // namespace pictor::tokenizers
