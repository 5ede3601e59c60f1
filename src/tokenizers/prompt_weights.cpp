#include "tokenizers/prompt_weights.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <optional>
#include <string_view>

#include "tokenizers/unicode_text.hpp"

namespace pictor::tokenizers {

namespace {

constexpr double kRoundFactor = 1.1;
constexpr double kSquareFactor = 1 / 1.1;

bool is_ascii_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

// Python's \w for the character that starts (after) or ends (before) at byte `pos`.
bool word_char_after(std::string_view s, std::size_t pos) {
  if (pos >= s.size()) return false;
  const auto c = static_cast<unsigned char>(s[pos]);
  if (c < 0x80) return std::isalnum(c) || c == '_';
  std::size_t len = 1;
  while (pos + len < s.size() && (static_cast<unsigned char>(s[pos + len]) & 0xC0) == 0x80) ++len;
  const auto cps = unicode::decode_utf8(s.substr(pos, len));
  return !cps.empty() && (unicode::is_letter(cps[0]) || unicode::is_number(cps[0]));
}
bool word_char_before(std::string_view s, std::size_t pos) {
  if (pos == 0) return false;
  std::size_t start = pos - 1;
  while (start > 0 && (static_cast<unsigned char>(s[start]) & 0xC0) == 0x80) --start;
  return word_char_after(s.substr(0, pos), start);
}

// `:\s*([+-]?[.\d]+)\s*\)` at s[i]: returns the weight and the length matched.
std::optional<std::pair<double, std::size_t>> weight_suffix(std::string_view s, std::size_t i) {
  if (s[i] != ':') return std::nullopt;
  std::size_t j = i + 1;
  while (j < s.size() && is_ascii_space(s[j])) ++j;
  const std::size_t num_start = j;
  if (j < s.size() && (s[j] == '+' || s[j] == '-')) ++j;
  const std::size_t digits_start = j;
  while (j < s.size() && (s[j] == '.' || (s[j] >= '0' && s[j] <= '9'))) ++j;
  if (j == digits_start) return std::nullopt;
  const std::size_t num_end = j;
  while (j < s.size() && is_ascii_space(s[j])) ++j;
  if (j >= s.size() || s[j] != ')') return std::nullopt;
  // A1111 would crash on "1.2.3"; such text is kept as literal text instead.
  std::string_view number = s.substr(num_start, num_end - num_start);
  if (!number.empty() && number[0] == '+') number.remove_prefix(1);
  double value = 0;
  const auto [end, ec] = std::from_chars(number.data(), number.data() + number.size(), value);
  if (ec != std::errc() || end != number.data() + number.size()) return std::nullopt;
  return std::make_pair(value, j + 1 - i);
}

// Appends plain text, split at BREAK keywords (re.split(r"\s*\bBREAK\b\s*", text)).
void append_text(std::string_view text, std::vector<WeightedText>& out) {
  std::size_t piece_start = 0, search = 0;
  for (;;) {
    const std::size_t at = text.find("BREAK", search);
    if (at == std::string_view::npos) break;
    const std::size_t after = at + 5;
    if (word_char_before(text, at) || word_char_after(text, after)) {
      search = at + 1;
      continue;
    }
    std::size_t left = at, right = after;
    while (left > piece_start && is_ascii_space(text[left - 1])) --left;
    while (right < text.size() && is_ascii_space(text[right])) ++right;
    out.push_back({std::string(text.substr(piece_start, left - piece_start)), 1.0, false});
    out.push_back({"BREAK", 1.0, true});
    piece_start = search = right;
  }
  out.push_back({std::string(text.substr(piece_start)), 1.0, false});
}

}  // namespace

std::vector<WeightedText> parse_prompt_weights(const std::string& prompt) {
  const std::string_view s(prompt);
  std::vector<WeightedText> res;
  std::vector<std::size_t> round, square;  // where each open bracket's range starts in `res`
  const auto multiply_from = [&](std::size_t start, double factor) {
    for (std::size_t p = start; p < res.size(); ++p)
      if (!res[p].is_break) res[p].weight *= factor;
  };

  for (std::size_t i = 0; i < s.size();) {
    const char c = s[i];
    if (c == '\\') {
      // "\(" "\)" "\[" "\]" "\\" give the escaped character; a lone backslash gives nothing.
      const bool escapes = i + 1 < s.size() && (s[i + 1] == '(' || s[i + 1] == ')' || s[i + 1] == '[' ||
                                                s[i + 1] == ']' || s[i + 1] == '\\');
      res.push_back({escapes ? std::string(1, s[i + 1]) : std::string(), 1.0, false});
      i += escapes ? 2 : 1;
    } else if (c == '(') {
      round.push_back(res.size());
      ++i;
    } else if (c == '[') {
      square.push_back(res.size());
      ++i;
    } else if (const auto weight = weight_suffix(s, i); weight && !round.empty()) {
      multiply_from(round.back(), weight->first);
      round.pop_back();
      i += weight->second;
    } else if (c == ')' && !round.empty()) {
      multiply_from(round.back(), kRoundFactor);
      round.pop_back();
      ++i;
    } else if (c == ']' && !square.empty()) {
      multiply_from(square.back(), kSquareFactor);
      square.pop_back();
      ++i;
    } else {
      // Plain text up to the next special character ([^\\()\[\]:]+), or one special character that
      // matched nothing above (an unmatched bracket, a ':' that is not a weight, a weight outside '(').
      std::size_t len = 0;
      if (weight && round.empty()) {
        len = weight->second;
      } else if (c == ':' || c == ')' || c == ']') {
        len = 1;
      } else {
        while (i + len < s.size() && std::string_view("\\()[]:").find(s[i + len]) == std::string_view::npos) ++len;
      }
      append_text(s.substr(i, len), res);
      i += len;
    }
  }
  // Unclosed brackets apply to the rest of the prompt.
  for (const std::size_t start : round) multiply_from(start, kRoundFactor);
  for (const std::size_t start : square) multiply_from(start, kSquareFactor);

  if (res.empty()) res.push_back({"", 1.0, false});
  std::vector<WeightedText> merged;
  for (auto& part : res) {
    if (!merged.empty() && !merged.back().is_break && !part.is_break && merged.back().weight == part.weight)
      merged.back().text += part.text;
    else
      merged.push_back(std::move(part));
  }
  return merged;
}

std::vector<TokenChunk> tokenize_weighted(const ClipTokenizer& tokenizer, const std::string& prompt) {
  const auto comma = tokenizer.token_to_id(",</w>");
  std::vector<TokenChunk> chunks;
  std::vector<std::int64_t> ids;
  std::vector<float> weights;
  std::ptrdiff_t last_comma = -1;

  const auto close_chunk = [&] {
    TokenChunk chunk;
    chunk.ids.reserve(kChunkTokens + 2);
    chunk.ids.push_back(tokenizer.bos_id());
    chunk.ids.insert(chunk.ids.end(), ids.begin(), ids.end());
    chunk.ids.push_back(tokenizer.eos_id());
    chunk.ids.resize(kChunkTokens + 2, tokenizer.pad_id());
    chunk.weights.assign(kChunkTokens + 2, 1.0f);
    std::copy(weights.begin(), weights.end(), chunk.weights.begin() + 1);
    chunks.push_back(std::move(chunk));
    ids.clear();
    weights.clear();
    last_comma = -1;
  };

  for (const auto& part : parse_prompt_weights(prompt)) {
    if (part.is_break) {
      close_chunk();
      continue;
    }
    for (const std::int64_t token : tokenizer.encode(part.text)) {
      if (comma && token == *comma) {
        last_comma = static_cast<std::ptrdiff_t>(ids.size());
      } else if (ids.size() == kChunkTokens && last_comma != -1 && kChunkTokens - last_comma <= kCommaBacktrackTokens) {
        // Move the words after the last comma to the next chunk so a phrase is not cut in two.
        const auto cut = static_cast<std::size_t>(last_comma + 1);
        std::vector<std::int64_t> moved_ids(ids.begin() + static_cast<std::ptrdiff_t>(cut), ids.end());
        std::vector<float> moved_weights(weights.begin() + static_cast<std::ptrdiff_t>(cut), weights.end());
        ids.resize(cut);
        weights.resize(cut);
        close_chunk();
        ids = std::move(moved_ids);
        weights = std::move(moved_weights);
      }
      if (ids.size() == kChunkTokens) close_chunk();
      ids.push_back(token);
      weights.push_back(static_cast<float>(part.weight));
    }
  }
  if (!ids.empty() || chunks.empty()) close_chunk();
  return chunks;
}

}  // namespace pictor::tokenizers
