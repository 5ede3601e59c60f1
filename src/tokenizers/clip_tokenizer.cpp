#include "tokenizers/clip_tokenizer.hpp"

#include <algorithm>
#include <array>
#include <fstream>
#include <limits>
#include <sstream>

#include "core/error.hpp"
#include "core/json_file.hpp"
#include "tokenizers/text_fixer.hpp"
#include "tokenizers/unicode_text.hpp"

namespace pictor::tokenizers {

namespace {

// CLIP reads at most this many merges (transformers: merges[1 : 49152 - 256 - 2 + 1]); the rest of a
// longer merges.txt is ignored by the reference too.
constexpr std::size_t kMaxMerges = 49152 - 256 - 2;
constexpr std::string_view kEndOfWord = "</w>";

// GPT-2/CLIP bytes_to_unicode: printable bytes map to themselves, the other 68 to U+0100 onwards, so
// every byte is a visible character the BPE vocabulary can hold.
struct ByteMap {
  std::array<std::string, 256> to_text;  // byte -> UTF-8 of its character
  std::unordered_map<char32_t, unsigned char> to_byte;
  ByteMap() {
    int next = 0;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      const char32_t cp = printable ? static_cast<char32_t>(b) : static_cast<char32_t>(256 + next++);
      unicode::append_utf8(to_text[static_cast<std::size_t>(b)], cp);
      to_byte[cp] = static_cast<unsigned char>(b);
    }
  }
};

const ByteMap& byte_map() {
  static const ByteMap map;
  return map;
}

// A special token in the config files is a string or an AddedToken object {"content": ...}.
std::optional<std::string> token_field(const JsonConfig& cfg, const std::string& key) {
  if (!cfg.has(key)) return std::nullopt;
  const auto& v = cfg.raw().at(key);
  if (v.is_string()) return v.get<std::string>();
  if (v.is_object() && v.contains("content") && v.at("content").is_string()) return v.at("content").get<std::string>();
  cfg.fail(key, "expected a string or an object with a string \"content\"");
}

// CLIP's pre-tokenizer regex on cleaned, lowercased text:
//   <\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+
// Alternatives are tried in order at each position; whitespace between matches is skipped.
std::vector<std::u32string_view> pre_tokenize(std::u32string_view text) {
  static constexpr std::array<std::u32string_view, 2> kSpecials = {U"<|startoftext|>", U"<|endoftext|>"};
  static constexpr std::array<std::u32string_view, 7> kContractions = {U"'s", U"'t",  U"'re", U"'ve",
                                                                       U"'m", U"'ll", U"'d"};
  std::vector<std::u32string_view> words;
  std::size_t i = 0;
  const auto starts_with_ci = [&](std::u32string_view lit) {
    if (text.size() - i < lit.size()) return false;
    for (std::size_t k = 0; k < lit.size(); ++k) {
      char32_t c = text[i + k];
      if (c >= U'A' && c <= U'Z') c += 32;
      if (c != lit[k]) return false;
    }
    return true;
  };
  while (i < text.size()) {
    const char32_t c = text[i];
    std::size_t len = 0;
    for (auto lit : kSpecials)
      if (!len && starts_with_ci(lit)) len = lit.size();
    if (!len && c == U'\'')
      for (auto lit : kContractions)
        if (!len && starts_with_ci(lit)) len = lit.size();
    if (!len) {
      if (unicode::is_letter(c)) {
        while (i + len < text.size() && unicode::is_letter(text[i + len])) ++len;
      } else if (unicode::is_number(c)) {
        len = 1;
      } else if (!unicode::is_regex_space(c)) {
        const auto other = [](char32_t x) {
          return !unicode::is_regex_space(x) && !unicode::is_letter(x) && !unicode::is_number(x);
        };
        while (i + len < text.size() && other(text[i + len])) ++len;
      }
    }
    if (len) {
      words.push_back(text.substr(i, len));
      i += len;
    } else {
      ++i;  // whitespace
    }
  }
  return words;
}

// transformers' whitespace_clean followed by .lower(): runs of \s become one space, ends stripped.
std::u32string clean_whitespace_and_lower(std::u32string_view text) {
  std::u32string out;
  out.reserve(text.size());
  bool in_space = false;
  for (char32_t c : text) {
    if (unicode::is_regex_space(c)) {
      in_space = true;
      continue;
    }
    if (in_space && !out.empty()) out += U' ';
    in_space = false;
    out += c;
  }
  while (!out.empty() && unicode::is_python_space(out.front())) out.erase(out.begin());
  while (!out.empty() && unicode::is_python_space(out.back())) out.pop_back();
  return unicode::to_lower(out);
}

}  // namespace

ClipTokenizer ClipTokenizer::load(const std::filesystem::path& tokenizer_dir, const ClipTokenizerOptions& options) {
  ClipTokenizer tok;
  tok.source_ = tokenizer_dir.string();
  if (!std::filesystem::is_directory(tokenizer_dir))
    throw Error("CLIP tokenizer: '" + tok.source_ + "' is not a directory");

  // vocab.json: {"token": id, ...}
  const auto vocab_path = tokenizer_dir / "vocab.json";
  const json vocab = read_json_file(vocab_path);
  if (!vocab.is_object() || vocab.empty())
    throw Error(vocab_path.string() + ": expected a non-empty JSON object mapping tokens to ids");
  for (const auto& [token, id] : vocab.items()) {
    if (!id.is_number_integer() || id.get<std::int64_t>() < 0)
      throw Error(vocab_path.string() + ": token '" + token + "' has no non-negative integer id");
    const auto value = id.get<std::int64_t>();
    if (!tok.decoder_.emplace(value, token).second)
      throw Error(vocab_path.string() + ": id " + std::to_string(value) + " is used by two tokens ('" +
                  tok.decoder_.at(value) + "' and '" + token + "')");
    tok.encoder_.emplace(token, value);
  }

  // merges.txt: optional "#version" header, then one "first second" pair per line, best rank first.
  const auto merges_path = tokenizer_dir / "merges.txt";
  std::ifstream merges(merges_path, std::ios::binary);
  if (!merges) throw Error(merges_path.string() + ": cannot open (missing file?)");
  std::string line;
  int line_no = 0;
  while (std::getline(merges, line) && tok.merge_ranks_.size() < kMaxMerges) {
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty() || (line_no == 1 && line.rfind("#version", 0) == 0)) continue;
    const auto space = line.find(' ');
    if (space == std::string::npos || space == 0 || space + 1 == line.size() ||
        line.find(' ', space + 1) != std::string::npos)
      throw Error(merges_path.string() + ":" + std::to_string(line_no) +
                  ": expected two tokens separated by one space, got '" + line + "'");
    const std::string merged = line.substr(0, space) + line.substr(space + 1);
    if (!tok.encoder_.count(merged))
      throw Error(merges_path.string() + ":" + std::to_string(line_no) + ": merge result '" + merged +
                  "' is not in vocab.json (vocab.json and merges.txt do not belong together)");
    tok.merge_ranks_.emplace(line, static_cast<int>(tok.merge_ranks_.size()));
  }
  if (tok.merge_ranks_.empty()) throw Error(merges_path.string() + ": no merges found");

  // Special tokens: defaults <- tokenizer_config.json <- special_tokens_map.json <- options, the
  // precedence transformers' from_pretrained applies.
  for (const char* name : {"tokenizer_config.json", "special_tokens_map.json"}) {
    const auto path = tokenizer_dir / name;
    if (!std::filesystem::exists(path)) continue;
    const auto cfg = JsonConfig::load(path);
    if (auto t = token_field(cfg, "bos_token")) tok.bos_token_ = *t;
    if (auto t = token_field(cfg, "eos_token")) tok.eos_token_ = *t;
    if (auto t = token_field(cfg, "unk_token")) tok.unk_token_ = *t;
    if (auto t = token_field(cfg, "pad_token")) tok.pad_token_ = *t;
    if (cfg.has("model_max_length")) {
      const auto len = cfg.get<double>("model_max_length");
      if (len < 2) cfg.fail("model_max_length", "must be at least 2");
      tok.model_max_length_ =
          len > std::numeric_limits<int>::max() ? std::numeric_limits<int>::max() : static_cast<int>(len);
    }
    if (cfg.has("added_tokens_decoder")) {
      const auto& added = cfg.raw().at("added_tokens_decoder");
      if (!added.is_object()) cfg.fail("added_tokens_decoder", "expected an object {id: {\"content\": ...}}");
      for (const auto& [id_text, entry] : added.items()) {
        std::int64_t id = 0;
        try {
          id = std::stoll(id_text);
        } catch (const std::exception&) {
          cfg.fail("added_tokens_decoder", "key '" + id_text + "' is not an integer id");
        }
        if (!entry.is_object() || !entry.contains("content") || !entry.at("content").is_string())
          cfg.fail("added_tokens_decoder", "entry " + id_text + " has no string \"content\"");
        const auto content = entry.at("content").get<std::string>();
        if (content.empty()) cfg.fail("added_tokens_decoder", "entry " + id_text + " has empty content");
        tok.added_tokens_[content] = id;
        tok.decoder_.emplace(id, content);
      }
    }
  }
  if (options.pad_token) tok.pad_token_ = *options.pad_token;

  tok.bos_id_ = tok.special_id(tok.bos_token_, "bos_token");
  tok.eos_id_ = tok.special_id(tok.eos_token_, "eos_token");
  tok.unk_id_ = tok.special_id(tok.unk_token_, "unk_token");
  tok.pad_id_ = tok.special_id(tok.pad_token_, "pad_token");
  tok.rebuild_split_tokens();
  return tok;
}

std::int64_t ClipTokenizer::special_id(const std::string& token, const std::string& role) const {
  if (token.empty()) throw Error(source_ + ": " + role + " is empty");
  if (const auto it = added_tokens_.find(token); it != added_tokens_.end()) return it->second;
  if (const auto it = encoder_.find(token); it != encoder_.end()) return it->second;
  throw Error(source_ + ": " + role + " '" + token + "' is neither in vocab.json nor an added token");
}

void ClipTokenizer::set_pad_token(const std::string& token) {
  pad_id_ = special_id(token, "pad_token");
  pad_token_ = token;
  rebuild_split_tokens();
}

// transformers puts every added and special token into a trie and splits the text on them before any
// cleaning, so such a token always maps to its own id (this is why SD2's pad token "!" turns every "!"
// in a prompt into id 0).
void ClipTokenizer::rebuild_split_tokens() {
  std::unordered_map<std::string, std::int64_t> all = added_tokens_;
  all.emplace(bos_token_, bos_id_);
  all.emplace(eos_token_, eos_id_);
  all.emplace(unk_token_, unk_id_);
  all.emplace(pad_token_, pad_id_);
  split_tokens_.assign(all.begin(), all.end());
  // Longest first, so the first match at a position is the longest one.
  std::sort(split_tokens_.begin(), split_tokens_.end(), [](const auto& a, const auto& b) {
    return a.first.size() != b.first.size() ? a.first.size() > b.first.size() : a.first < b.first;
  });
}

std::optional<std::int64_t> ClipTokenizer::token_to_id(const std::string& token) const {
  if (const auto it = added_tokens_.find(token); it != added_tokens_.end()) return it->second;
  if (const auto it = encoder_.find(token); it != encoder_.end()) return it->second;
  return std::nullopt;
}

const std::string& ClipTokenizer::id_to_token(std::int64_t id) const {
  const auto it = decoder_.find(id);
  if (it == decoder_.end())
    throw Error("CLIP tokenizer (" + source_ + "): id " + std::to_string(id) + " is not in the vocabulary");
  return it->second;
}

std::vector<std::int64_t> ClipTokenizer::encode(const std::string& text) const {
  std::vector<std::int64_t> ids;
  const std::string_view view(text);
  std::size_t piece_start = 0;
  for (std::size_t i = 0; i < view.size();) {
    const auto match = std::find_if(split_tokens_.begin(), split_tokens_.end(),
                                    [&](const auto& t) { return view.compare(i, t.first.size(), t.first) == 0; });
    if (match == split_tokens_.end()) {
      ++i;
      continue;
    }
    encode_plain(view.substr(piece_start, i - piece_start), ids);
    ids.push_back(match->second);
    i += match->first.size();
    piece_start = i;
  }
  encode_plain(view.substr(piece_start), ids);
  return ids;
}

void ClipTokenizer::encode_plain(std::string_view text, std::vector<std::int64_t>& ids) const {
  if (text.empty()) return;
  const std::u32string cleaned = clean_whitespace_and_lower(fix_text(unicode::decode_utf8(text)));
  const auto& bytes = byte_map();
  for (const auto word : pre_tokenize(cleaned)) {
    std::string mapped;
    for (const unsigned char b : unicode::encode_utf8(word)) mapped += bytes.to_text[b];
    bpe(mapped, ids);
  }
}

void ClipTokenizer::bpe(const std::string& word, std::vector<std::int64_t>& ids) const {
  const auto lookup = [&](const std::string& token) {
    const auto it = encoder_.find(token);
    return it == encoder_.end() ? unk_id_ : it->second;
  };
  // CLIP's regex emits the two special-token literals as words; its BPE cache maps them to themselves.
  if (word == "<|startoftext|>" || word == "<|endoftext|>") {
    ids.push_back(lookup(word));
    return;
  }
  // Split into characters (UTF-8 sequences); the last one carries the end-of-word marker.
  std::vector<std::string> parts;
  for (std::size_t i = 0; i < word.size();) {
    std::size_t len = 1;
    while (i + len < word.size() && (static_cast<unsigned char>(word[i + len]) & 0xC0) == 0x80) ++len;
    parts.push_back(word.substr(i, len));
    i += len;
  }
  if (parts.empty()) return;
  parts.back() += kEndOfWord;

  // Repeatedly merge every occurrence of the best-ranked adjacent pair.
  std::string key;
  while (parts.size() > 1) {
    int best_rank = std::numeric_limits<int>::max();
    std::size_t best = 0;
    for (std::size_t i = 0; i + 1 < parts.size(); ++i) {
      key.assign(parts[i]).append(" ").append(parts[i + 1]);
      const auto it = merge_ranks_.find(key);
      if (it != merge_ranks_.end() && it->second < best_rank) best_rank = it->second, best = i;
    }
    if (best_rank == std::numeric_limits<int>::max()) break;
    const std::string first = parts[best], second = parts[best + 1];
    std::vector<std::string> merged;
    merged.reserve(parts.size());
    for (std::size_t i = 0; i < parts.size(); ++i) {
      if (i + 1 < parts.size() && parts[i] == first && parts[i + 1] == second) {
        merged.push_back(first + second);
        ++i;
      } else {
        merged.push_back(std::move(parts[i]));
      }
    }
    parts = std::move(merged);
  }
  for (const auto& p : parts) ids.push_back(lookup(p));
}

std::vector<std::int64_t> ClipTokenizer::encode_padded(const std::string& text, int max_len) const {
  if (max_len < 2)
    throw Error("CLIP tokenizer: max_len " + std::to_string(max_len) + " leaves no room for BOS and EOS");
  std::vector<std::int64_t> ids = encode(text);
  if (ids.size() > static_cast<std::size_t>(max_len - 2)) ids.resize(static_cast<std::size_t>(max_len - 2));
  std::vector<std::int64_t> out;
  out.reserve(static_cast<std::size_t>(max_len));
  out.push_back(bos_id_);
  out.insert(out.end(), ids.begin(), ids.end());
  out.push_back(eos_id_);
  out.resize(static_cast<std::size_t>(max_len), pad_id_);
  return out;
}

std::string ClipTokenizer::decode(const std::vector<std::int64_t>& ids) const {
  // Padding: the run of pad ids after the last EOS.
  std::size_t end = ids.size();
  const auto last_eos = std::find(ids.rbegin(), ids.rend(), eos_id_);
  if (last_eos != ids.rend()) {
    const std::size_t after = ids.size() - static_cast<std::size_t>(last_eos - ids.rbegin());
    if (std::all_of(ids.begin() + static_cast<std::ptrdiff_t>(after), ids.end(),
                    [&](auto id) { return id == pad_id_; }))
      end = after;
  }
  const auto& bytes = byte_map();
  std::string raw;
  for (std::size_t i = 0; i < end; ++i) {
    if (ids[i] == bos_id_ || ids[i] == eos_id_) continue;
    for (const char32_t cp : unicode::decode_utf8(id_to_token(ids[i]))) {
      const auto it = bytes.to_byte.find(cp);
      if (it == bytes.to_byte.end()) {
        unicode::append_utf8(raw, cp);  // an added token outside the byte alphabet
      } else {
        raw += static_cast<char>(it->second);
      }
    }
  }
  std::u32string text = unicode::decode_utf8(raw);
  std::u32string out;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text.compare(i, 4, U"</w>") == 0) {
      out += U' ';
      i += 3;
    } else {
      out += text[i];
    }
  }
  while (!out.empty() && unicode::is_python_space(out.back())) out.pop_back();
  std::size_t start = 0;
  while (start < out.size() && unicode::is_python_space(out[start])) ++start;
  return unicode::encode_utf8(std::u32string_view(out).substr(start));
}

}  // namespace pictor::tokenizers
