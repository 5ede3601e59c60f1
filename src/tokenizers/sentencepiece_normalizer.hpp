#pragma once
// SentencePiece's normalizer (normalizer.cc): the precompiled charsmap (a Darts-clone double-array trie
// whose values index a blob of NUL-terminated replacement strings; at each position the longest key that
// prefixes the remaining UTF-8 input is replaced), then whitespace handling: leading/trailing/repeated
// spaces removed (remove_extra_whitespaces), a dummy space in front (add_dummy_prefix) and spaces
// escaped as U+2581 (escape_whitespaces).
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tokenizers/sentencepiece_model.hpp"

namespace pictor::tokenizers::spm {

inline constexpr std::string_view kSpaceSymbol = "\xE2\x96\x81";      // U+2581 LOWER ONE EIGHTH BLOCK
inline constexpr std::string_view kReplacementChar = "\xEF\xBF\xBD";  // U+FFFD

// Length of the UTF-8 sequence that starts with lead byte `c`, from its high nibble (as SentencePiece's
// OneCharLen; malformed lead bytes count as 1).
int one_char_len(char c);
// SentencePiece's IsValidDecodeUTF8: true when `s` starts with a well-formed UTF-8 character (no
// overlongs, surrogates or code points past U+10FFFF); `len` gets its byte length (1 when invalid).
bool valid_utf8_prefix(std::string_view s, std::size_t& len);

class Normalizer {
 public:
  // `user_defined` pieces are never split by the charsmap (they pass through verbatim). Throws
  // pictor::Error naming `source` when the charsmap is malformed.
  Normalizer(const NormalizerSpec& spec, bool treat_whitespace_as_suffix, const std::vector<std::string>& user_defined,
             const std::string& source);

  std::string normalize(std::string_view input) const;

 private:
  // The replacement of the longest rule at the front of `input` and how many bytes it consumes.
  std::pair<std::string_view, std::size_t> normalize_prefix(std::string_view input) const;
  // Darts commonPrefixSearch: longest key (among the first 32 matches, as SentencePiece) prefixing
  // `input`; returns its length (0 = none) and sets `value`.
  std::size_t longest_match(std::string_view input, std::uint32_t& value) const;
  std::string_view replacement(std::uint32_t value) const;
  std::size_t user_defined_match(std::string_view input) const;

  NormalizerSpec spec_;
  bool treat_whitespace_as_suffix_ = false;
  std::vector<std::uint32_t> trie_;  // double-array units
  std::string normalized_;           // replacement strings blob
  std::vector<std::string> user_defined_;
  std::string source_;
};

}  // namespace pictor::tokenizers::spm
