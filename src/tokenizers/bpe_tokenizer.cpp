#include "tokenizers/bpe_tokenizer.hpp"

#include <algorithm>
#include <array>
#include <climits>
#include <fstream>

#include "core/json_file.hpp"
#include "tokenizers/added_tokens.hpp"
#include "tokenizers/unicode_text.hpp"

namespace pictor::tokenizers {

namespace {

// GPT-2's bytes_to_unicode(): printable bytes map to themselves, the others to U+0100.. in byte order,
// so every byte string becomes a string of visible characters.
struct ByteMap {
  std::array<std::string, 256> to_text;  // byte -> UTF-8 of its character
  std::unordered_map<char32_t, std::uint8_t> to_byte;
  ByteMap() {
    int next = 0;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
      const char32_t cp = printable ? static_cast<char32_t>(b) : static_cast<char32_t>(256 + next++);
      unicode::append_utf8(to_text[b], cp);
      to_byte[cp] = static_cast<std::uint8_t>(b);
    }
  }
};
const ByteMap& byte_map() {
  static const ByteMap map;
  return map;
}

bool is_other(char32_t c) {
  return !unicode::is_regex_space(c) && !unicode::is_letter(c) && !unicode::is_number(c);
}

// GPT-2's pre-tokenizer regex, hand-coded on code points (alternatives tried in order at each position).
std::vector<std::u32string_view> gpt2_split(std::u32string_view t) {
  std::vector<std::u32string_view> words;
  const std::size_t n = t.size();
  std::size_t i = 0;
  const auto run = [&](std::size_t from, bool (*cls)(char32_t)) {
    while (from < n && cls(t[from])) ++from;
    return from;
  };
  while (i < n) {
    std::size_t end = i;
    if (t[i] == U'\'' && i + 1 < n) {  // 's|'t|'re|'ve|'m|'ll|'d
      const char32_t a = t[i + 1], b = i + 2 < n ? t[i + 2] : 0;
      if (a == U's' || a == U't' || a == U'm' || a == U'd')
        end = i + 2;
      else if ((a == U'r' && b == U'e') || (a == U'v' && b == U'e') || (a == U'l' && b == U'l'))
        end = i + 3;
    }
    const std::size_t j = (t[i] == U' ' && i + 1 < n) ? i + 1 : i;  // the optional leading space
    if (end == i && unicode::is_letter(t[j])) end = run(j, unicode::is_letter);
    if (end == i && unicode::is_number(t[j])) end = run(j, unicode::is_number);
    if (end == i && is_other(t[j])) end = run(j, is_other);
    if (end == i) {  // whitespace: \s+(?!\S) keeps the last space for the next word unless at the end
      const std::size_t ws_end = run(i, unicode::is_regex_space);
      end = (ws_end == n || ws_end - i == 1) ? ws_end : ws_end - 1;
    }
    words.push_back(t.substr(i, end - i));
    i = end;
  }
  return words;
}

bool is_ascii_digit(char32_t c) {
  return c >= U'0' && c <= U'9';
}

// tokenizers' Digits(individual_digits=true): every digit (\p{N}... the Rust crate uses char::is_numeric)
// becomes its own piece.
std::vector<std::u32string_view> split_digits(std::u32string_view t) {
  std::vector<std::u32string_view> parts;
  std::size_t start = 0;
  for (std::size_t i = 0; i < t.size(); ++i) {
    if (!unicode::is_number(t[i]) && !is_ascii_digit(t[i])) continue;
    if (i > start) parts.push_back(t.substr(start, i - start));
    parts.push_back(t.substr(i, 1));
    start = i + 1;
  }
  if (start < t.size()) parts.push_back(t.substr(start));
  return parts;
}

// The GPT-2 regex as tokenizer.json spells it in a Split pre-tokenizer.
constexpr const char* kGpt2Pattern =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

}  // namespace

void BpeTokenizer::add_merge(const std::string& first, const std::string& second, const std::string& source,
                             std::size_t index) {
  if (first.empty() || second.empty())
    throw Error(source + ": merge " + std::to_string(index) + " is not two non-empty symbols");
  merge_ranks_.emplace(first + " " + second, static_cast<int>(merge_ranks_.size()));
}

BpeTokenizer BpeTokenizer::load(const std::filesystem::path& dir) {
  if (std::filesystem::exists(dir / "vocab.json") && std::filesystem::exists(dir / "merges.txt"))
    return load_vocab_merges(dir);
  if (std::filesystem::exists(dir / "tokenizer.json")) return load_tokenizer_json(dir / "tokenizer.json");
  throw Error(dir.string() + ": no BPE tokenizer files (vocab.json + merges.txt, or tokenizer.json)");
}

BpeTokenizer BpeTokenizer::load_vocab_merges(const std::filesystem::path& dir) {
  BpeTokenizer tok;
  tok.source_ = dir.string();
  const std::filesystem::path vocab_path = dir / "vocab.json";
  const json vocab = read_json_file(vocab_path);
  if (!vocab.is_object()) throw Error(vocab_path.string() + ": expected an object of token -> id");
  for (const auto& [token, id] : vocab.items()) {
    if (!id.is_number_integer() || id.get<std::int64_t>() < 0)
      throw Error(vocab_path.string() + ": id of token '" + token + "' is not a non-negative integer");
    tok.encoder_[token] = id.get<std::int64_t>();
  }
  const std::filesystem::path merges_path = dir / "merges.txt";
  std::ifstream merges(merges_path);
  if (!merges) throw Error(merges_path.string() + ": cannot open");
  std::string line;
  for (std::size_t line_no = 1; std::getline(merges, line); ++line_no) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty() || line.rfind("#version", 0) == 0) continue;
    const auto space = line.find(' ');
    if (space == std::string::npos || line.find(' ', space + 1) != std::string::npos)
      throw Error(merges_path.string() + ":" + std::to_string(line_no) +
                  ": expected two symbols separated by one space");
    tok.add_merge(line.substr(0, space), line.substr(space + 1), merges_path.string(), line_no);
  }
  tok.finish_loading(dir);
  return tok;
}

BpeTokenizer BpeTokenizer::load_tokenizer_json(const std::filesystem::path& file) {
  BpeTokenizer tok;
  tok.source_ = file.string();
  const std::string src = file.string();
  const json root = read_json_file(file);
  if (!root.is_object() || !root.contains("model") || !root.at("model").is_object())
    throw Error(src + ": missing object 'model'");
  const json& model = root.at("model");
  if (model.value("type", std::string("BPE")) != "BPE")
    throw Unsupported(src + ": model.type '" + model.value("type", std::string()) + "' (only BPE)");
  if (!model.contains("vocab") || !model.at("vocab").is_object()) throw Error(src + ": model.vocab is not an object");
  for (const auto& [token, id] : model.at("vocab").items()) {
    if (!id.is_number_integer() || id.get<std::int64_t>() < 0)
      throw Error(src + ": model.vocab['" + token + "'] is not a non-negative integer");
    tok.encoder_[token] = id.get<std::int64_t>();
  }
  if (!model.contains("merges") || !model.at("merges").is_array()) throw Error(src + ": model.merges is not a list");
  const json& merges = model.at("merges");
  for (std::size_t i = 0; i < merges.size(); ++i) {
    const json& m = merges[i];
    if (m.is_string()) {
      const std::string s = m.get<std::string>();
      const auto space = s.find(' ');
      if (space == std::string::npos) throw Error(src + ": model.merges[" + std::to_string(i) + "] has no space");
      tok.add_merge(s.substr(0, space), s.substr(space + 1), src, i);
    } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
      tok.add_merge(m[0].get<std::string>(), m[1].get<std::string>(), src, i);
    } else {
      throw Error(src + ": model.merges[" + std::to_string(i) + "] is neither \"a b\" nor [a, b]");
    }
  }
  if (model.value("byte_fallback", false)) throw Unsupported(src + ": model.byte_fallback for byte-level BPE");
  if (!model.value("continuing_subword_prefix", json("")).is_null() &&
      !model.value("continuing_subword_prefix", std::string()).empty())
    throw Unsupported(src + ": model.continuing_subword_prefix");

  // Pre-tokenizer: ByteLevel(use_regex) alone, or a Sequence of Digits / Split(GPT-2 regex) / ByteLevel.
  const json pre = root.value("pre_tokenizer", json());
  std::vector<json> steps;
  if (pre.is_object() && pre.value("type", std::string()) == "Sequence" && pre.contains("pretokenizers"))
    steps.assign(pre.at("pretokenizers").begin(), pre.at("pretokenizers").end());
  else if (!pre.is_null())
    steps.push_back(pre);
  bool has_regex = false;
  for (const json& step : steps) {
    const std::string type = step.value("type", std::string());
    if (type == "ByteLevel") {
      has_regex = has_regex || step.value("use_regex", true);
      tok.add_prefix_space_ = step.value("add_prefix_space", false);
    } else if (type == "Digits") {
      tok.split_digits_ = step.value("individual_digits", false);
      if (!tok.split_digits_) throw Unsupported(src + ": pre_tokenizer Digits with individual_digits=false");
    } else if (type == "Split") {
      const json pattern = step.value("pattern", json::object());
      const std::string regex = pattern.is_object() ? pattern.value("Regex", std::string()) : std::string();
      if (regex != kGpt2Pattern) throw Unsupported(src + ": pre_tokenizer Split with a pattern other than GPT-2's");
      has_regex = true;
    } else {
      throw Unsupported(src + ": pre_tokenizer type '" + type + "'");
    }
  }
  if (!has_regex) throw Unsupported(src + ": byte-level BPE without the GPT-2 pre-tokenizer regex");

  if (root.contains("added_tokens") && !root.at("added_tokens").is_null()) {
    const json& list = root.at("added_tokens");
    if (!list.is_array()) throw Error(src + ": added_tokens is not a list");
    for (std::size_t i = 0; i < list.size(); ++i) {
      const json& a = list[i];
      if (!a.is_object() || !a.contains("id") || !a.at("id").is_number_integer() || !a.contains("content") ||
          !a.at("content").is_string() || a.at("content").get<std::string>().empty())
        throw Error(src + ": added_tokens[" + std::to_string(i) + "] needs an integer 'id' and a string 'content'");
      AddedToken t;
      t.id = a.at("id").get<std::int64_t>();
      t.content = a.at("content").get<std::string>();
      t.special = a.value("special", false);
      t.lstrip = a.value("lstrip", false);
      t.rstrip = a.value("rstrip", false);
      tok.added_.push_back(std::move(t));
    }
  }
  // BOS/EOS rules of a TemplateProcessing post-processor; tokenizer_config.json may override them.
  const json post = root.value("post_processor", json());
  if (post.is_object() && post.value("type", std::string()) == "TemplateProcessing" && post.contains("single")) {
    const json& single = post.at("single");
    bool seen_sequence = false;
    for (const json& piece : single) {
      if (piece.contains("Sequence"))
        seen_sequence = true;
      else if (piece.contains("SpecialToken"))
        (seen_sequence ? tok.add_eos_ : tok.add_bos_) = true;
    }
  }
  tok.finish_loading(file.parent_path());
  return tok;
}

void BpeTokenizer::finish_loading(const std::filesystem::path& config_dir) {
  const TokenizerConfigInfo info = read_tokenizer_config(config_dir);
  special_ = info.special;
  if (info.add_bos_token) add_bos_ = *info.add_bos_token;
  if (info.add_eos_token) add_eos_ = *info.add_eos_token;
  if (info.add_prefix_space) add_prefix_space_ = *info.add_prefix_space;
  // Added tokens: tokenizer.json's list, completed by tokenizer_config.json's added_tokens_decoder.
  for (const auto& t : info.added) {
    const auto same = std::find_if(added_.begin(), added_.end(), [&](const AddedToken& a) { return a.id == t.id; });
    if (same == added_.end()) added_.push_back(t);
  }
  // Named special tokens are split out like added tokens even when a config forgot to list them.
  std::vector<std::string> named = {special_.bos, special_.eos, special_.unk, special_.pad};
  named.insert(named.end(), special_.additional.begin(), special_.additional.end());
  for (const auto& content : named) {
    if (content.empty()) continue;
    if (std::any_of(added_.begin(), added_.end(), [&](const AddedToken& a) { return a.content == content; })) continue;
    const auto it = encoder_.find(content);
    if (it == encoder_.end())
      throw Error(source_ + ": special token '" + content + "' is neither in the vocabulary nor an added token");
    added_.push_back({content, it->second, true, false, false});
  }
  std::sort(added_.begin(), added_.end(), [](const auto& a, const auto& b) { return a.id < b.id; });
  for (const auto& t : special_.additional)
    for (auto& a : added_)
      if (a.content == t) a.special = true;
  for (auto& a : added_)
    if (a.content == special_.bos || a.content == special_.eos || a.content == special_.unk ||
        a.content == special_.pad)
      a.special = true;
  for (std::size_t i = 0; i < added_.size(); ++i) {
    added_index_[added_[i].id] = i;
    encoder_.try_emplace(added_[i].content, added_[i].id);
  }
  for (const auto& [token, id] : encoder_) {
    decoder_.try_emplace(id, token);
    vocab_size_ = std::max<std::size_t>(vocab_size_, static_cast<std::size_t>(id) + 1);
  }
  if (add_bos_ && !bos_id()) throw Error(source_ + ": add_bos_token is set but the BOS token is unknown");
  if (add_eos_ && !eos_id()) throw Error(source_ + ": add_eos_token is set but the EOS token is unknown");
}

void BpeTokenizer::bpe_word(const std::string& word, std::vector<std::string>& out) const {
  // Split into characters (UTF-8 sequences), then merge the best-ranked adjacent pair until none applies.
  std::vector<std::string> parts;
  for (std::size_t i = 0; i < word.size();) {
    std::size_t len = 1;
    const unsigned char c = static_cast<unsigned char>(word[i]);
    if (c >= 0xF0)
      len = 4;
    else if (c >= 0xE0)
      len = 3;
    else if (c >= 0xC0)
      len = 2;
    parts.push_back(word.substr(i, len));
    i += len;
  }
  while (parts.size() > 1) {
    int best_rank = INT_MAX;
    std::size_t best = 0;
    for (std::size_t k = 0; k + 1 < parts.size(); ++k) {
      const auto it = merge_ranks_.find(parts[k] + " " + parts[k + 1]);
      if (it != merge_ranks_.end() && it->second < best_rank) best_rank = it->second, best = k;
    }
    if (best_rank == INT_MAX) break;
    const std::string first = parts[best], second = parts[best + 1];
    std::vector<std::string> merged;
    merged.reserve(parts.size());
    for (std::size_t k = 0; k < parts.size();) {
      if (k + 1 < parts.size() && parts[k] == first && parts[k + 1] == second) {
        merged.push_back(first + second);
        k += 2;
      } else {
        merged.push_back(parts[k++]);
      }
    }
    parts = std::move(merged);
  }
  out.insert(out.end(), parts.begin(), parts.end());
}

void BpeTokenizer::tokenize_plain(const std::string& text, std::vector<std::string>& out) const {
  const std::u32string cps = unicode::decode_utf8(text);
  std::vector<std::u32string_view> chunks = {cps};
  if (split_digits_) chunks = split_digits(cps);
  const ByteMap& map = byte_map();
  for (const auto chunk : chunks) {
    for (const auto word : gpt2_split(chunk)) {
      std::string mapped;
      for (const unsigned char b : unicode::encode_utf8(word)) mapped += map.to_text[b];
      bpe_word(mapped, out);
    }
  }
}

std::vector<std::string> BpeTokenizer::tokenize(const std::string& text) const {
  std::vector<std::string> tokens;
  // Slow GPT2Tokenizer.prepare_for_tokenization: add_prefix_space puts one space before the whole text.
  const std::string prepared = add_prefix_space_ ? " " + text : text;
  for (const auto& piece : split_on_added_tokens(prepared, added_)) {
    if (piece.token)
      tokens.push_back(piece.token->content);
    else
      tokenize_plain(piece.text, tokens);
  }
  return tokens;
}

std::vector<std::int64_t> BpeTokenizer::encode(const std::string& text, bool add_special_tokens) const {
  std::vector<std::int64_t> ids;
  if (add_special_tokens && add_bos_) ids.push_back(*bos_id());
  const auto unk = unk_id();
  for (const auto& token : tokenize(text)) {
    const auto it = encoder_.find(token);
    if (it != encoder_.end())
      ids.push_back(it->second);
    else if (unk)
      ids.push_back(*unk);
    else
      throw Error(source_ + ": token '" + token + "' is not in the vocabulary and there is no unk_token");
  }
  if (add_special_tokens && add_eos_) ids.push_back(*eos_id());
  return ids;
}

std::string BpeTokenizer::decode(const std::vector<std::int64_t>& ids, bool skip_special_tokens) const {
  const ByteMap& map = byte_map();
  std::string bytes;
  for (const auto id : ids) {
    if (skip_special_tokens && is_special_id(id)) continue;
    const auto it = decoder_.find(id);
    if (it == decoder_.end()) throw Error(source_ + ": cannot decode unknown token id " + std::to_string(id));
    // Added tokens outside the byte-level alphabet are copied as text; vocabulary tokens map back to bytes.
    for (const char32_t c : unicode::decode_utf8(it->second)) {
      const auto b = map.to_byte.find(c);
      if (b != map.to_byte.end())
        bytes += static_cast<char>(b->second);
      else
        unicode::append_utf8(bytes, c);
    }
  }
  // bytearray.decode("utf-8", errors="replace")
  return unicode::encode_utf8(unicode::decode_utf8(bytes));
}

std::optional<std::int64_t> BpeTokenizer::token_to_id(const std::string& token) const {
  const auto it = encoder_.find(token);
  if (it == encoder_.end()) return std::nullopt;
  return it->second;
}

std::string BpeTokenizer::id_to_token(std::int64_t id) const {
  const auto it = decoder_.find(id);
  if (it == decoder_.end()) throw Error(source_ + ": unknown token id " + std::to_string(id));
  return it->second;
}

}  // namespace pictor::tokenizers
