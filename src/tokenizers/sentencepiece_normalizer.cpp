#include "tokenizers/sentencepiece_normalizer.hpp"

#include "core/error.hpp"

namespace pictor::tokenizers::spm {

int one_char_len(char c) {
  static constexpr int kLen[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
  return kLen[static_cast<std::uint8_t>(c) >> 4];
}

bool valid_utf8_prefix(std::string_view s, std::size_t& len) {
  len = 1;
  if (s.empty()) return false;
  const auto b = [&](std::size_t i) { return static_cast<std::uint8_t>(s[i]); };
  const auto trail = [&](std::size_t i) { return (b(i) & 0xC0) == 0x80; };
  const auto scalar = [](char32_t cp) { return cp < 0xD800 || (cp >= 0xE000 && cp <= 0x10FFFF); };
  const std::uint8_t c = b(0);
  if (c < 0x80) return true;
  if ((c & 0xE0) == 0xC0 && s.size() >= 2 && trail(1)) {
    const char32_t cp = ((c & 0x1Fu) << 6) | (b(1) & 0x3Fu);
    if (cp >= 0x80) return len = 2, true;
  } else if ((c & 0xF0) == 0xE0 && s.size() >= 3 && trail(1) && trail(2)) {
    const char32_t cp = ((c & 0x0Fu) << 12) | ((b(1) & 0x3Fu) << 6) | (b(2) & 0x3Fu);
    if (cp >= 0x800 && scalar(cp)) return len = 3, true;
  } else if ((c & 0xF8) == 0xF0 && s.size() >= 4 && trail(1) && trail(2) && trail(3)) {
    const char32_t cp = ((c & 0x07u) << 18) | ((b(1) & 0x3Fu) << 12) | ((b(2) & 0x3Fu) << 6) | (b(3) & 0x3Fu);
    if (cp >= 0x10000 && scalar(cp)) return len = 4, true;
  }
  return false;
}

namespace {

// Darts-clone double-array unit accessors.
bool unit_has_leaf(std::uint32_t u) {
  return ((u >> 8) & 1) == 1;
}
std::uint32_t unit_value(std::uint32_t u) {
  return u & ((1u << 31) - 1);
}
std::uint32_t unit_label(std::uint32_t u) {
  return u & ((1u << 31) | 0xFF);
}
std::uint32_t unit_offset(std::uint32_t u) {
  return (u >> 10) << ((u & (1u << 9)) >> 6);
}

constexpr int kMaxTrieResults = 32;  // SentencePiece looks at no more matches than this

}  // namespace

Normalizer::Normalizer(const NormalizerSpec& spec, bool treat_whitespace_as_suffix,
                       const std::vector<std::string>& user_defined, const std::string& source)
    : spec_(spec),
      treat_whitespace_as_suffix_(treat_whitespace_as_suffix),
      user_defined_(user_defined),
      source_(source) {
  const std::string& blob = spec.precompiled_charsmap;
  if (blob.empty()) return;  // identity normalization
  const auto bad = [&](const std::string& what) {
    throw Error(source_ + ": malformed normalizer_spec.precompiled_charsmap: " + what);
  };
  if (blob.size() <= 4) bad("shorter than its 4-byte header");
  std::uint32_t trie_size = 0;
  for (int i = 3; i >= 0; --i) trie_size = (trie_size << 8) | static_cast<std::uint8_t>(blob[i]);
  if (trie_size > blob.size() - 4)
    bad("trie size " + std::to_string(trie_size) + " exceeds the blob (" + std::to_string(blob.size() - 4) + " bytes)");
  if (trie_size % 4 != 0 || trie_size == 0)
    bad("trie size " + std::to_string(trie_size) + " is not a positive multiple of 4");
  trie_.resize(trie_size / 4);
  for (std::size_t i = 0; i < trie_.size(); ++i) {
    std::uint32_t u = 0;
    for (int k = 3; k >= 0; --k) u = (u << 8) | static_cast<std::uint8_t>(blob[4 + 4 * i + k]);
    trie_[i] = u;
  }
  normalized_ = blob.substr(4 + trie_size);
}

std::size_t Normalizer::longest_match(std::string_view input, std::uint32_t& value) const {
  std::size_t longest = 0;
  int found = 0;
  std::size_t node = 0;
  if (trie_.empty()) return 0;
  node ^= unit_offset(trie_[0]);
  for (std::size_t i = 0; i < input.size(); ++i) {
    const auto byte = static_cast<std::uint8_t>(input[i]);
    node ^= byte;
    if (node >= trie_.size()) return longest;  // off the array: a corrupt trie cannot match further
    const std::uint32_t unit = trie_[node];
    if (unit_label(unit) != byte) return longest;
    node ^= unit_offset(unit);
    if (node >= trie_.size()) return longest;
    if (unit_has_leaf(unit)) {
      if (found < kMaxTrieResults) {
        longest = i + 1;  // matches come in increasing length
        value = unit_value(trie_[node]);
      }
      ++found;
    }
  }
  return longest;
}

std::string_view Normalizer::replacement(std::uint32_t value) const {
  if (value >= normalized_.size())
    throw Error(source_ + ": malformed normalizer_spec.precompiled_charsmap: replacement offset " +
                std::to_string(value) + " is past the string blob (" + std::to_string(normalized_.size()) + " bytes)");
  const std::size_t end = normalized_.find('\0', value);
  if (end == std::string::npos)
    throw Error(source_ + ": malformed normalizer_spec.precompiled_charsmap: replacement at " + std::to_string(value) +
                " is not NUL-terminated");
  return std::string_view(normalized_).substr(value, end - value);
}

std::size_t Normalizer::user_defined_match(std::string_view input) const {
  std::size_t best = 0;
  for (const auto& piece : user_defined_)
    if (piece.size() > best && input.substr(0, piece.size()) == piece) best = piece.size();
  return best;
}

std::pair<std::string_view, std::size_t> Normalizer::normalize_prefix(std::string_view input) const {
  if (input.empty()) return {input, 0};
  if (const std::size_t n = user_defined_match(input); n > 0) return {input.substr(0, n), n};
  std::uint32_t value = 0;
  if (const std::size_t n = longest_match(input, value); n > 0) return {replacement(value), n};
  std::size_t len = 1;
  // A malformed byte becomes U+FFFD and only that one byte is consumed.
  if (!valid_utf8_prefix(input, len)) return {kReplacementChar, 1};
  return {input.substr(0, len), len};
}

std::string Normalizer::normalize(std::string_view input) const {
  std::string out;
  if (spec_.remove_extra_whitespaces) {
    while (!input.empty()) {
      const auto [text, consumed] = normalize_prefix(input);
      if (text != " ") break;
      input.remove_prefix(consumed);
    }
  }
  if (input.empty()) return out;

  const std::string_view space = spec_.escape_whitespaces ? kSpaceSymbol : std::string_view(" ");
  if (!treat_whitespace_as_suffix_ && spec_.add_dummy_prefix) out += space;
  bool prev_space = spec_.remove_extra_whitespaces;
  while (!input.empty()) {
    auto [text, consumed] = normalize_prefix(input);
    // A run of spaces collapses: spaces right after one are dropped.
    while (prev_space && !text.empty() && text.front() == ' ') text.remove_prefix(1);
    if (!text.empty()) {
      for (const char c : text) {
        if (spec_.escape_whitespaces && c == ' ')
          out += kSpaceSymbol;
        else
          out += c;
      }
      prev_space = text.back() == ' ';
    }
    input.remove_prefix(consumed);
    if (!spec_.remove_extra_whitespaces) prev_space = false;
  }
  if (spec_.remove_extra_whitespaces) {
    while (out.size() >= space.size() && std::string_view(out).substr(out.size() - space.size()) == space)
      out.resize(out.size() - space.size());
  }
  if (treat_whitespace_as_suffix_ && spec_.add_dummy_prefix) out += space;
  return out;
}

}  // namespace pictor::tokenizers::spm
