#pragma once
// The Unicode operations CLIP's Python text pipeline relies on (UTF-8 <-> code points, the `regex`
// module's \p{L} / \p{N} / \s classes, str.lower(), unicodedata.normalize("NFC")), backed by tables
// generated from Python's unicodedata (scripts/gen_unicode_tables.py) so the tokenizer agrees with the
// reference implementation character for character.
#include <optional>
#include <string>
#include <string_view>

namespace pictor::tokenizers::unicode {

// Invalid UTF-8 bytes decode to U+FFFD (Python's errors="replace" on the way in).
std::u32string decode_utf8(std::string_view bytes);
// Strict UTF-8 decoding: nullopt on any malformed, overlong or surrogate sequence.
std::optional<std::u32string> decode_utf8_strict(std::string_view bytes);
std::string encode_utf8(std::u32string_view text);
void append_utf8(std::string& out, char32_t cp);

bool is_letter(char32_t cp);        // \p{L}
bool is_number(char32_t cp);        // \p{N}
bool is_regex_space(char32_t cp);   // \s of the `regex` module (the White_Space property)
bool is_python_space(char32_t cp);  // str.isspace(), used by str.strip()
int combining_class(char32_t cp);   // canonical combining class (0 = starter)

// str.lower(): simple lowercase mappings plus Python's two context rules (U+0130 -> "i̇" and the
// final-sigma rule for U+03A3).
std::u32string to_lower(std::u32string_view text);
// unicodedata.normalize("NFC", text): canonical decomposition, canonical ordering, recomposition.
std::u32string nfc(std::u32string_view text);

// NFKC of a fullwidth/halfwidth form (U+FF01..U+FFEF) or U+3000, as ftfy's fix_character_width maps it.
std::optional<std::u32string> width_fold(char32_t cp);
// Character of an HTML named entity (name without '&' and ';'); HTML 4 names + &apos;.
std::optional<char32_t> html_entity(std::string_view name);

}  // namespace pictor::tokenizers::unicode
