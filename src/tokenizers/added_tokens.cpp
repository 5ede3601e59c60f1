#include "tokenizers/added_tokens.hpp"

#include <algorithm>

#include "core/json_file.hpp"
#include "tokenizers/unicode_text.hpp"

namespace pictor::tokenizers {

namespace {

// A token field is either "text" or {"content": "text", ...} (AddedToken serialisation); null = unset.
std::optional<std::string> token_text(const json& v, const std::string& source, const std::string& field) {
  if (v.is_null()) return std::nullopt;
  if (v.is_string()) return v.get<std::string>();
  if (v.is_object() && v.contains("content") && v.at("content").is_string()) return v.at("content").get<std::string>();
  throw Error(source + ": field '" + field + "' is neither a string nor an object with a string 'content'");
}

bool flag(const json& obj, const char* key) {
  return obj.contains(key) && obj.at(key).is_boolean() && obj.at(key).get<bool>();
}

void read_special(const JsonConfig& cfg, SpecialTokens& special) {
  const struct {
    const char* key;
    std::string* out;
  } named[] = {{"bos_token", &special.bos},
               {"eos_token", &special.eos},
               {"unk_token", &special.unk},
               {"pad_token", &special.pad}};
  for (const auto& n : named) {
    if (!cfg.raw().contains(n.key)) continue;
    if (auto t = token_text(cfg.raw().at(n.key), cfg.source(), n.key)) *n.out = *t;
  }
  if (cfg.has("additional_special_tokens")) {
    const json& list = cfg.raw().at("additional_special_tokens");
    if (!list.is_array()) cfg.fail("additional_special_tokens", "is not a list");
    special.additional.clear();
    for (std::size_t i = 0; i < list.size(); ++i)
      if (auto t = token_text(list[i], cfg.source(), "additional_special_tokens[" + std::to_string(i) + "]"))
        special.additional.push_back(*t);
  }
}

std::u32string_view strip_view(std::u32string_view s, bool left, bool right) {
  while (left && !s.empty() && unicode::is_python_space(s.front())) s.remove_prefix(1);
  while (right && !s.empty() && unicode::is_python_space(s.back())) s.remove_suffix(1);
  return s;
}

std::string strip(const std::string& s, bool left, bool right) {
  const std::u32string cps = unicode::decode_utf8(s);
  return unicode::encode_utf8(strip_view(cps, left, right));
}

}  // namespace

TokenizerConfigInfo read_tokenizer_config(const std::filesystem::path& dir) {
  TokenizerConfigInfo info;
  // special_tokens_map.json first: tokenizer_config.json wins where both name a token (as from_pretrained).
  if (std::filesystem::exists(dir / "special_tokens_map.json"))
    read_special(JsonConfig::load(dir / "special_tokens_map.json"), info.special);
  if (!std::filesystem::exists(dir / "tokenizer_config.json")) return info;
  const JsonConfig cfg = JsonConfig::load(dir / "tokenizer_config.json");
  read_special(cfg, info.special);
  if (cfg.has("add_bos_token")) info.add_bos_token = cfg.get<bool>("add_bos_token");
  if (cfg.has("add_eos_token")) info.add_eos_token = cfg.get<bool>("add_eos_token");
  if (cfg.has("add_prefix_space")) info.add_prefix_space = cfg.get<bool>("add_prefix_space");
  if (cfg.has("legacy")) info.legacy = cfg.get<bool>("legacy");
  if (cfg.has("chat_template")) {
    const json& t = cfg.raw().at("chat_template");
    if (t.is_string()) info.chat_template = t.get<std::string>();
  }
  if (cfg.has("added_tokens_decoder")) {
    const json& dec = cfg.raw().at("added_tokens_decoder");
    if (!dec.is_object()) cfg.fail("added_tokens_decoder", "is not an object of id -> token");
    for (const auto& [key, value] : dec.items()) {
      AddedToken tok;
      const std::string field = "added_tokens_decoder." + key;
      try {
        std::size_t used = 0;
        tok.id = std::stoll(key, &used);
        if (used != key.size() || tok.id < 0) throw std::invalid_argument(key);
      } catch (const std::exception&) {
        cfg.fail(field, "key is not a non-negative integer id");
      }
      auto content = token_text(value, cfg.source(), field);
      if (!content || content->empty()) cfg.fail(field, "has no 'content'");
      tok.content = *content;
      tok.special = flag(value, "special");
      tok.lstrip = flag(value, "lstrip");
      tok.rstrip = flag(value, "rstrip");
      info.added.push_back(std::move(tok));
    }
    std::sort(info.added.begin(), info.added.end(), [](const auto& a, const auto& b) { return a.id < b.id; });
  }
  return info;
}

std::vector<TextPiece> split_on_added_tokens(std::string_view text, const std::vector<AddedToken>& added) {
  std::vector<TextPiece> pieces;
  std::size_t plain_start = 0;
  for (std::size_t i = 0; i < text.size();) {
    const AddedToken* best = nullptr;
    for (const auto& tok : added)
      if (text.compare(i, tok.content.size(), tok.content) == 0 && (!best || tok.content.size() > best->content.size()))
        best = &tok;
    if (!best) {
      ++i;
      continue;
    }
    if (i > plain_start) pieces.push_back({std::string(text.substr(plain_start, i - plain_start)), nullptr});
    pieces.push_back({best->content, best});
    i += best->content.size();
    plain_start = i;
  }
  if (plain_start < text.size()) pieces.push_back({std::string(text.substr(plain_start)), nullptr});

  // lstrip/rstrip: an added token eats the whitespace next to it (the neighbouring plain text).
  for (std::size_t k = 0; k < pieces.size(); ++k) {
    const AddedToken* tok = pieces[k].token;
    if (!tok) continue;
    if (tok->rstrip && k + 1 < pieces.size() && !pieces[k + 1].token)
      pieces[k + 1].text = strip(pieces[k + 1].text, true, false);
    if (tok->lstrip && k > 0 && !pieces[k - 1].token) pieces[k - 1].text = strip(pieces[k - 1].text, false, true);
  }
  std::erase_if(pieces, [](const TextPiece& p) { return !p.token && p.text.empty(); });
  return pieces;
}

}  // namespace pictor::tokenizers
