#include "tokenizers/unicode_text.hpp"

#include <algorithm>
#include <cstdint>
#include <unordered_map>

#include "tokenizers/unicode_tables.hpp"

namespace pictor::tokenizers::unicode {

namespace data = unicode_data;

namespace {

constexpr char32_t kReplacement = 0xFFFD;

// Hangul syllables decompose algorithmically (Unicode 3.12), not through the table.
constexpr char32_t kHangulBase = 0xAC00, kLeadBase = 0x1100, kVowelBase = 0x1161, kTrailBase = 0x11A7;
constexpr int kLeadCount = 19, kVowelCount = 21, kTrailCount = 28;
constexpr int kSyllableCount = kLeadCount * kVowelCount * kTrailCount;

bool in_ranges(const data::CodeRange* table, std::size_t size, char32_t cp) {
  const auto* end = table + size;
  const auto* it = std::upper_bound(table, end, cp, [](char32_t c, const data::CodeRange& r) { return c < r.first; });
  return it != table && cp <= (it - 1)->last;
}

// Decodes one UTF-8 sequence at bytes[i]; returns the code point and advances i, or nullopt (i is
// then advanced past the first byte only, as Python's decoder does for one invalid start byte).
std::optional<char32_t> next_code_point(std::string_view bytes, std::size_t& i) {
  const auto b0 = static_cast<unsigned char>(bytes[i]);
  if (b0 < 0x80) {
    ++i;
    return b0;
  }
  int len = 0;
  char32_t cp = 0, min = 0;
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    len = 2, cp = b0 & 0x1F, min = 0x80;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    len = 3, cp = b0 & 0x0F, min = 0x800;
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    len = 4, cp = b0 & 0x07, min = 0x10000;
  } else {
    ++i;
    return std::nullopt;
  }
  std::size_t j = i + 1;
  for (int k = 1; k < len; ++k, ++j) {
    if (j >= bytes.size()) break;
    const auto b = static_cast<unsigned char>(bytes[j]);
    if ((b & 0xC0) != 0x80) break;
    cp = (cp << 6) | (b & 0x3F);
    if (k == len - 1) {
      if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) break;
      i = j + 1;
      return cp;
    }
  }
  ++i;
  return std::nullopt;
}

const data::Decomposition* find_decomposition(char32_t cp) {
  const auto* begin = data::kDecompositions;
  const auto* end = begin + data::kDecompositions_size;
  const auto* it = std::lower_bound(begin, end, cp, [](const data::Decomposition& d, char32_t c) { return d.cp < c; });
  return it != end && it->cp == cp ? it : nullptr;
}

void decompose_into(char32_t cp, std::u32string& out) {
  if (cp >= kHangulBase && cp < kHangulBase + kSyllableCount) {
    const int index = static_cast<int>(cp - kHangulBase);
    out += kLeadBase + index / (kVowelCount * kTrailCount);
    out += kVowelBase + (index % (kVowelCount * kTrailCount)) / kTrailCount;
    if (index % kTrailCount) out += kTrailBase + index % kTrailCount;
    return;
  }
  const auto* d = find_decomposition(cp);
  if (!d) {
    out += cp;
    return;
  }
  decompose_into(d->first, out);
  if (d->second) decompose_into(d->second, out);
}

const std::unordered_map<std::uint64_t, char32_t>& composition_map() {
  static const auto map = [] {
    std::unordered_map<std::uint64_t, char32_t> m;
    for (std::size_t i = 0; i < data::kDecompositions_size; ++i) {
      const auto& d = data::kDecompositions[i];
      if (d.composable) m.emplace((std::uint64_t{d.first} << 32) | d.second, d.cp);
    }
    return m;
  }();
  return map;
}

std::optional<char32_t> compose(char32_t a, char32_t b) {
  // Hangul LV and LVT syllables.
  if (a >= kLeadBase && a < kLeadBase + kLeadCount && b >= kVowelBase && b < kVowelBase + kVowelCount)
    return kHangulBase + ((a - kLeadBase) * kVowelCount + (b - kVowelBase)) * kTrailCount;
  if (a >= kHangulBase && a < kHangulBase + kSyllableCount && (a - kHangulBase) % kTrailCount == 0 && b > kTrailBase &&
      b < kTrailBase + kTrailCount)
    return a + (b - kTrailBase);
  const auto& map = composition_map();
  const auto it = map.find((std::uint64_t{a} << 32) | b);
  if (it == map.end()) return std::nullopt;
  return it->second;
}

char32_t simple_lower(char32_t cp) {
  const auto* begin = data::kLowercaseRuns;
  const auto* end = begin + data::kLowercaseRuns_size;
  const auto* it = std::upper_bound(begin, end, cp, [](char32_t c, const data::CaseRun& r) { return c < r.first; });
  if (it == begin) return cp;
  const auto& run = *(it - 1);
  if (cp > run.last || (cp - run.first) % run.stride != 0) return cp;
  return static_cast<char32_t>(static_cast<std::int64_t>(cp) + run.delta);
}

// Approximations of Unicode's Cased / Case_Ignorable properties, used only by the final-sigma rule:
// letters count as cased; apostrophes, periods, colons, soft hyphens and combining marks are ignorable.
bool is_cased(char32_t cp) {
  return is_letter(cp);
}
bool is_case_ignorable(char32_t cp) {
  return cp == U'\'' || cp == U'.' || cp == U':' || cp == U'^' || cp == U'`' || cp == 0xAD || cp == 0x2019 ||
         combining_class(cp) != 0;
}

bool is_final_sigma(std::u32string_view text, std::size_t i) {
  std::size_t j = i;
  while (j > 0 && is_case_ignorable(text[j - 1])) --j;
  if (j == 0 || !is_cased(text[j - 1])) return false;
  std::size_t k = i + 1;
  while (k < text.size() && is_case_ignorable(text[k])) ++k;
  return k == text.size() || !is_cased(text[k]);
}

}  // namespace

std::u32string decode_utf8(std::string_view bytes) {
  std::u32string out;
  out.reserve(bytes.size());
  for (std::size_t i = 0; i < bytes.size();) out += next_code_point(bytes, i).value_or(kReplacement);
  return out;
}

std::optional<std::u32string> decode_utf8_strict(std::string_view bytes) {
  std::u32string out;
  out.reserve(bytes.size());
  for (std::size_t i = 0; i < bytes.size();) {
    const auto cp = next_code_point(bytes, i);
    if (!cp) return std::nullopt;
    out += *cp;
  }
  return out;
}

void append_utf8(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

std::string encode_utf8(std::u32string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char32_t cp : text) append_utf8(out, cp);
  return out;
}

bool is_letter(char32_t cp) {
  if (cp < 0x80) return (cp | 0x20) >= U'a' && (cp | 0x20) <= U'z';
  return in_ranges(data::kLetterRanges, data::kLetterRanges_size, cp);
}

bool is_number(char32_t cp) {
  if (cp < 0x80) return cp >= U'0' && cp <= U'9';
  return in_ranges(data::kNumberRanges, data::kNumberRanges_size, cp);
}

bool is_regex_space(char32_t cp) {
  return (cp >= 0x09 && cp <= 0x0D) || cp == 0x20 || cp == 0x85 || cp == 0xA0 || cp == 0x1680 ||
         (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

bool is_python_space(char32_t cp) {
  return is_regex_space(cp) || (cp >= 0x1C && cp <= 0x1F);
}

int combining_class(char32_t cp) {
  if (cp < 0x300) return 0;
  const auto* begin = data::kCombiningClasses;
  const auto* end = begin + data::kCombiningClasses_size;
  const auto* it =
      std::upper_bound(begin, end, cp, [](char32_t c, const data::CombiningRun& r) { return c < r.first; });
  if (it == begin || cp > (it - 1)->last) return 0;
  return static_cast<int>((it - 1)->ccc);
}

std::u32string to_lower(std::u32string_view text) {
  std::u32string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char32_t cp = text[i];
    if (cp < 0x80) {
      out += (cp >= U'A' && cp <= U'Z') ? cp + 32 : cp;
    } else if (cp == 0x130) {  // LATIN CAPITAL LETTER I WITH DOT ABOVE: the one multi-character lowercase
      out += U'i';
      out += 0x307;
    } else if (cp == 0x3A3) {
      out += is_final_sigma(text, i) ? 0x3C2 : 0x3C3;
    } else {
      out += simple_lower(cp);
    }
  }
  return out;
}

std::u32string nfc(std::u32string_view text) {
  // Fast path: ASCII is always in NFC.
  if (std::all_of(text.begin(), text.end(), [](char32_t c) { return c < 0x80; })) return std::u32string(text);

  std::u32string decomposed;
  decomposed.reserve(text.size());
  for (char32_t cp : text) decompose_into(cp, decomposed);

  // Canonical ordering: stable-sort each run of non-starters by combining class.
  for (std::size_t i = 0; i < decomposed.size();) {
    if (combining_class(decomposed[i]) == 0) {
      ++i;
      continue;
    }
    std::size_t j = i;
    while (j < decomposed.size() && combining_class(decomposed[j]) != 0) ++j;
    std::stable_sort(decomposed.begin() + static_cast<std::ptrdiff_t>(i),
                     decomposed.begin() + static_cast<std::ptrdiff_t>(j),
                     [](char32_t a, char32_t b) { return combining_class(a) < combining_class(b); });
    i = j;
  }

  // Canonical composition: a character joins the last starter unless something between them blocks it.
  std::u32string out;
  out.reserve(decomposed.size());
  std::ptrdiff_t starter = -1;
  int last_class = -1;  // class of the last character appended after the starter (-1: none yet)
  for (char32_t cp : decomposed) {
    const int cls = combining_class(cp);
    if (starter >= 0) {
      const bool blocked = last_class != -1 && (last_class == 0 || last_class >= cls);
      if (!blocked) {
        if (const auto composite = compose(out[static_cast<std::size_t>(starter)], cp)) {
          out[static_cast<std::size_t>(starter)] = *composite;
          continue;
        }
      }
    }
    out += cp;
    if (cls == 0) {
      starter = static_cast<std::ptrdiff_t>(out.size()) - 1;
      last_class = -1;
    } else {
      last_class = cls;
    }
  }
  return out;
}

std::optional<std::u32string> width_fold(char32_t cp) {
  const auto* begin = data::kWidthMap;
  const auto* end = begin + data::kWidthMap_size;
  const auto* it = std::lower_bound(begin, end, cp, [](const data::CodeMap& m, char32_t c) { return m.cp < c; });
  if (it == end || it->cp != cp) return std::nullopt;
  std::u32string out(1, it->first);
  if (it->second) out += it->second;
  return out;
}

std::optional<char32_t> html_entity(std::string_view name) {
  const auto* begin = data::kHtmlEntities;
  const auto* end = begin + data::kHtmlEntities_size;
  const auto* it =
      std::lower_bound(begin, end, name, [](const data::HtmlEntity& e, std::string_view n) { return e.name < n; });
  if (it == end || it->name != name) return std::nullopt;
  return it->cp;
}

}  // namespace pictor::tokenizers::unicode
