#include "tokenizers/text_fixer.hpp"

#include <array>
#include <optional>

#include "tokenizers/unicode_text.hpp"

namespace pictor::tokenizers {

namespace {

using unicode::decode_utf8_strict;

// Windows-1252 bytes 0x80..0x9F; 0 where the byte is undefined (ftfy's "sloppy" codec maps those
// bytes to the C1 control with the same number, as Latin-1 does).
constexpr std::array<char32_t, 32> kCp1252High = {0x20AC, 0,      0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021,
                                                  0x02C6, 0x2030, 0x0160, 0x2039, 0x0152, 0,      0x017D, 0,
                                                  0,      0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014,
                                                  0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0,      0x017E, 0x0178};

bool is_ascii(std::u32string_view text) {
  for (char32_t c : text)
    if (c >= 0x80) return false;
  return true;
}

// The byte a character came from when text was decoded as sloppy Windows-1252 (Latin-1 plus the
// 1252 punctuation in 0x80..0x9F), or nullopt when no byte decodes to it.
std::optional<unsigned char> sloppy_1252_byte(char32_t cp) {
  if (cp < 0x80 || (cp >= 0xA0 && cp <= 0xFF)) return static_cast<unsigned char>(cp);
  for (std::size_t i = 0; i < kCp1252High.size(); ++i) {
    if (kCp1252High[i] == cp) return static_cast<unsigned char>(0x80 + i);
    if (kCp1252High[i] == 0 && cp == 0x80 + i) return static_cast<unsigned char>(cp);
  }
  return std::nullopt;
}

std::optional<std::string> encode_latin1(std::u32string_view text) {
  std::string out;
  for (char32_t c : text) {
    if (c > 0xFF) return std::nullopt;
    out += static_cast<char>(c);
  }
  return out;
}

std::optional<std::string> encode_sloppy_1252(std::u32string_view text) {
  std::string out;
  for (char32_t c : text) {
    const auto b = sloppy_1252_byte(c);
    if (!b) return std::nullopt;
    out += static_cast<char>(*b);
  }
  return out;
}

// ftfy's UTF8_DETECTOR_RE restricted to the Windows-1252 / Latin-1 clues: a character that decodes
// from a UTF-8 lead byte followed by the right number of characters that decode from continuation
// bytes. Returns the length of such a sequence starting at text[i], or 0.
std::size_t utf8_lookalike_at(std::u32string_view text, std::size_t i) {
  const char32_t lead = text[i];
  std::size_t continuations = 0;
  if (lead >= 0xC2 && lead <= 0xDF)
    continuations = 1;
  else if (lead >= 0xE0 && lead <= 0xEF)
    continuations = 2;
  else if (lead >= 0xF0 && lead <= 0xF4)
    continuations = 3;
  else
    return 0;
  if (i + continuations >= text.size()) return 0;
  for (std::size_t k = 1; k <= continuations; ++k) {
    const auto b = sloppy_1252_byte(text[i + k]);
    if (!b || *b < 0x80 || *b > 0xBF) return 0;
  }
  return continuations + 1;
}

// Stand-in for ftfy's badness heuristic (is_bad): text is "bad" when it contains a sequence that looks
// like UTF-8 bytes shown as Latin-1/Windows-1252 characters ("Ã©", "â€™", "ðŸ˜€").
bool looks_like_mojibake(std::u32string_view text) {
  for (std::size_t i = 0; i < text.size(); ++i)
    if (utf8_lookalike_at(text, i)) return true;
  return false;
}

// One step of ftfy's fix_encoding: re-decode the whole text as UTF-8 when it round-trips through a
// single-byte encoding, else fix UTF-8 lookalike runs embedded in otherwise good text.
std::u32string fix_encoding_step(const std::u32string& text) {
  if (is_ascii(text) || !looks_like_mojibake(text)) return text;
  for (const auto& encoded : {encode_latin1(text), encode_sloppy_1252(text)}) {
    if (!encoded) continue;
    if (auto fixed = decode_utf8_strict(*encoded)) return *fixed;
  }
  std::u32string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size();) {
    const std::size_t len = utf8_lookalike_at(text, i);
    if (len && len < text.size()) {
      const auto run = std::u32string_view(text).substr(i, len);
      if (const auto encoded = encode_sloppy_1252(run)) {
        if (const auto fixed = decode_utf8_strict(*encoded)) {
          out += *fixed;
          i += len;
          continue;
        }
      }
    }
    out += text[i++];
  }
  return out;
}

std::u32string fix_encoding(std::u32string text) {
  for (;;) {
    auto fixed = fix_encoding_step(text);
    if (fixed == text) return text;
    text = std::move(fixed);
  }
}

bool is_alnum_ascii(char32_t c) {
  return (c >= U'0' && c <= U'9') || (c >= U'a' && c <= U'z') || (c >= U'A' && c <= U'Z');
}

// html.unescape of a numeric reference body ("39", "x27"); nullopt when it is not one.
std::optional<std::u32string> numeric_reference(std::u32string_view body) {
  bool hex = !body.empty() && (body[0] == U'x' || body[0] == U'X');
  auto digits = hex ? body.substr(1) : body;
  if (digits.empty()) return std::nullopt;
  std::uint64_t value = 0;
  for (char32_t c : digits) {
    int d;
    if (c >= U'0' && c <= U'9')
      d = static_cast<int>(c - U'0');
    else if (hex && (c | 0x20) >= U'a' && (c | 0x20) <= U'f')
      d = static_cast<int>((c | 0x20) - U'a' + 10);
    else
      return std::nullopt;
    value = std::min<std::uint64_t>(value * (hex ? 16 : 10) + static_cast<std::uint64_t>(d), 0x110000);
  }
  // Python's html module: C1 numbers are Windows-1252, NUL/surrogates/out of range are U+FFFD and
  // the remaining invalid code points vanish.
  if (value >= 0x80 && value <= 0x9F && kCp1252High[value - 0x80]) return std::u32string(1, kCp1252High[value - 0x80]);
  if (value == 0 || value > 0x10FFFF || (value >= 0xD800 && value <= 0xDFFF)) return U"\uFFFD";
  if ((value >= 0x1 && value <= 0x8) || value == 0xB || (value >= 0xE && value <= 0x1F) ||
      (value >= 0x7F && value <= 0x9F) || (value >= 0xFDD0 && value <= 0xFDEF) || (value & 0xFFFE) == 0xFFFE)
    return U"";
  return std::u32string(1, static_cast<char32_t>(value));
}

// ftfy's unescape_html: `&#?[0-9A-Za-z]{1,24};` references that name a character.
std::u32string unescape_html(std::u32string_view text) {
  std::u32string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size();) {
    if (text[i] == U'&') {
      const bool numeric = i + 1 < text.size() && text[i + 1] == U'#';
      const std::size_t start = i + 1 + (numeric ? 1 : 0);
      std::size_t end = start;
      while (end < text.size() && end - start < 24 && is_alnum_ascii(text[end])) ++end;
      if (end > start && end < text.size() && text[end] == U';') {
        const auto body = text.substr(start, end - start);
        std::optional<std::u32string> replacement;
        if (numeric) {
          replacement = numeric_reference(body);
        } else if (const auto cp = unicode::html_entity(unicode::encode_utf8(body))) {
          replacement = std::u32string(1, *cp);
        }
        if (replacement) {
          out += *replacement;
          i = end + 1;
          continue;
        }
      }
    }
    out += text[i++];
  }
  return out;
}

void fix_c1_controls(std::u32string& text) {
  for (char32_t& c : text)
    if (c >= 0x80 && c <= 0x9F && kCp1252High[c - 0x80]) c = kCp1252High[c - 0x80];
}

std::optional<std::u32string_view> ligature(char32_t c) {
  switch (c) {
    case 0x132: return U"IJ";
    case 0x133: return U"ij";
    case 0x149: return U"\u02BCn";
    case 0x1C4: return U"D\u017D";
    case 0x1C5: return U"D\u017E";
    case 0x1C6: return U"d\u017E";
    case 0x1C7: return U"LJ";
    case 0x1C8: return U"Lj";
    case 0x1C9: return U"lj";
    case 0x1CA: return U"NJ";
    case 0x1CB: return U"Nj";
    case 0x1CC: return U"nj";
    case 0x1F1: return U"DZ";
    case 0x1F2: return U"Dz";
    case 0x1F3: return U"dz";
    case 0xFB00: return U"ff";
    case 0xFB01: return U"fi";
    case 0xFB02: return U"fl";
    case 0xFB03: return U"ffi";
    case 0xFB04: return U"ffl";
    case 0xFB05: return U"\u017Ft";
    case 0xFB06: return U"st";
    default: return std::nullopt;
  }
}

// ftfy's remove_control_chars table (C1 controls, whitespace controls and joiners are kept).
bool is_removed_control(char32_t c) {
  return c <= 0x08 || c == 0x0B || (c >= 0x0E && c <= 0x1F) || c == 0x7F || (c >= 0x206A && c <= 0x206F) ||
         c == 0xFEFF || (c >= 0xFFF9 && c <= 0xFFFC);
}

// Character-by-character fixers, in ftfy's order: ligatures, width, quotes, line breaks, terminal
// escapes, control characters.
std::u32string fix_characters(std::u32string_view text) {
  std::u32string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char32_t c = text[i];
    if (const auto lig = ligature(c)) {
      out += *lig;
    } else if (const auto wide = unicode::width_fold(c)) {
      out += *wide;
    } else if (c == 0x2BC || (c >= 0x2018 && c <= 0x201B)) {
      out += U'\'';
    } else if (c >= 0x201C && c <= 0x201F) {
      out += U'"';
    } else if (c == U'\r') {
      out += U'\n';
      if (i + 1 < text.size() && text[i + 1] == U'\n') ++i;
    } else if (c == 0x2028 || c == 0x2029 || c == 0x85) {
      out += U'\n';
    } else {
      out += c;
    }
  }
  // ANSI terminal escapes: ESC '[' (digits | ';')* letter.
  std::u32string cleaned;
  cleaned.reserve(out.size());
  for (std::size_t i = 0; i < out.size(); ++i) {
    if (out[i] == 0x1B && i + 1 < out.size() && out[i + 1] == U'[') {
      std::size_t j = i + 2;
      while (j < out.size() && ((out[j] >= U'0' && out[j] <= U'9') || out[j] == U';')) ++j;
      if (j < out.size() && (out[j] | 0x20) >= U'a' && (out[j] | 0x20) <= U'z') {
        i = j;
        continue;
      }
    }
    if (!is_removed_control(out[i])) cleaned += out[i];
  }
  return cleaned;
}

// ftfy's fix_and_explain on one line: apply every fixer until nothing changes.
std::u32string fix_segment(std::u32string text, bool unescape) {
  for (;;) {
    const std::u32string original = text;
    if (unescape) text = unescape_html(text);
    text = fix_encoding(std::move(text));
    fix_c1_controls(text);
    text = fix_characters(text);
    text = unicode::nfc(text);
    if (text == original) return text;
  }
}

}  // namespace

std::u32string fix_text(std::u32string_view text) {
  std::u32string out;
  out.reserve(text.size());
  // ftfy fixes line by line; once a line contains '<' the text is taken for HTML and entities are left
  // alone from that line on.
  bool unescape = true;
  for (std::size_t pos = 0; pos < text.size();) {
    std::size_t end = text.find(U'\n', pos);
    end = end == std::u32string_view::npos ? text.size() : end + 1;
    const auto segment = text.substr(pos, end - pos);
    if (segment.find(U'<') != std::u32string_view::npos) unescape = false;
    out += fix_segment(std::u32string(segment), unescape);
    pos = end;
  }
  return out;
}

std::string fix_text(std::string_view text) {
  return unicode::encode_utf8(fix_text(unicode::decode_utf8(text)));
}

}  // namespace pictor::tokenizers
