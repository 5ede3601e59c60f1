#include "pipelines/describe_styles.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <regex>

#include "core/error.hpp"

namespace pictor::pipelines {

namespace {

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

std::string lower_ascii(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

void capitalize_first(std::string& s) {
  if (!s.empty() && std::islower(static_cast<unsigned char>(s[0])))
    s[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(s[0])));
}

// All whitespace runs (line breaks included) become one space.
std::string collapse_to_one_line(std::string_view text) {
  std::string out;
  bool pending_space = false;
  for (char c : text) {
    if (is_space(c)) {
      pending_space = !out.empty();
      continue;
    }
    if (pending_space) out += ' ';
    pending_space = false;
    out += c;
  }
  return out;
}

// A leading "Alt text:" / "Caption:" / "Description:" label some models echo back, and quotes around
// the whole answer.
std::string strip_label_and_quotes(const std::string& text) {
  static const std::regex label(R"(^\s*(alt[- ]?text|alt|caption|description)\s*:\s*)", std::regex::icase);
  std::string s = strip_whitespace(std::regex_replace(text, label, "", std::regex_constants::format_first_only));
  if (s.size() >= 2 && ((s.front() == '"' && s.back() == '"') || (s.front() == '\'' && s.back() == '\'')))
    s = strip_whitespace(std::string_view(s).substr(1, s.size() - 2));
  return s;
}

// Paragraph text: CRLF -> LF, trailing spaces of each line removed, runs of blank lines collapsed to one.
std::string normalize_paragraphs(const std::string& text) {
  std::string lines;
  std::string line;
  auto flush = [&] {
    while (!line.empty() && is_space(line.back())) line.pop_back();
    lines += line;
    line.clear();
  };
  for (char c : text) {
    if (c == '\r') continue;
    if (c == '\n') {
      flush();
      lines += '\n';
    } else {
      line += c;
    }
  }
  flush();
  std::string out;
  int newlines = 0;
  for (char c : lines) {
    newlines = c == '\n' ? newlines + 1 : 0;
    if (newlines <= 2) out += c;
  }
  return strip_whitespace(out);
}

// Product listings: markdown bold removed, "*", "•" and "+" bullets written as "- ".
std::string normalize_product(const std::string& text) {
  std::string s = text;
  for (size_t p; (p = s.find("**")) != std::string::npos;) s.erase(p, 2);
  static const std::regex bullet(R"((^|\n)[ \t]*(\*|\+|\xE2\x80\xA2)[ \t]+)");
  s = std::regex_replace(s, bullet, "$1- ");
  return normalize_paragraphs(s);
}

// Drops whitespace and dangling punctuation ("a red car," -> "a red car") at the end.
void trim_dangling_punctuation(std::string& s) {
  while (!s.empty() && (is_space(s.back()) || std::string_view(",;:-(").find(s.back()) != std::string_view::npos))
    s.pop_back();
}

bool ends_sentence(const std::string& s) {
  if (s.empty()) return true;
  const char c = s.back();
  return c == '.' || c == '!' || c == '?';
}

}  // namespace

DescribeStyle parse_describe_style(std::string_view name) {
  if (name == "alt") return DescribeStyle::Alt;
  if (name == "caption") return DescribeStyle::Caption;
  if (name == "detailed") return DescribeStyle::Detailed;
  if (name == "product") return DescribeStyle::Product;
  throw Error("style '" + std::string(name) + "' is not one of alt, caption, detailed, product");
}

const char* describe_style_name(DescribeStyle style) {
  switch (style) {
    case DescribeStyle::Alt: return "alt";
    case DescribeStyle::Caption: return "caption";
    case DescribeStyle::Detailed: return "detailed";
    case DescribeStyle::Product: return "product";
  }
  return "caption";
}

const std::string& style_prompt(DescribeStyle style) {
  static const std::array<std::string, 4> prompts = {
      // alt
      "Write alt text for this image: one short sentence that says what it shows, for someone who cannot "
      "see it. Do not begin with \"Image of\" or \"A picture of\".",
      // caption
      "Write a one-line caption for this image.",
      // detailed
      "Describe this image in detail, in a few paragraphs: the main subject, the setting and background, "
      "colours and lighting, and any visible text.",
      // product
      "Describe the product in this image for a shop listing. Use exactly this structure:\n"
      "Title: a short product title\n"
      "Features:\n- one visible feature per line\n"
      "Colours and materials: only what can be seen in the image\n"
      "Do not invent brand names, sizes or prices.",
  };
  return prompts[static_cast<size_t>(style)];
}

int style_max_tokens(DescribeStyle style) {
  switch (style) {
    case DescribeStyle::Alt: return 64;
    case DescribeStyle::Caption: return 64;
    case DescribeStyle::Detailed: return 400;
    case DescribeStyle::Product: return 300;
  }
  return 64;
}

std::string strip_whitespace(std::string_view text) {
  size_t b = 0, e = text.size();
  while (b < e && is_space(text[b])) ++b;
  while (e > b && is_space(text[e - 1])) --e;
  return std::string(text.substr(b, e - b));
}

std::size_t utf8_length(std::string_view text) {
  std::size_t n = 0;
  for (char c : text)
    if ((static_cast<unsigned char>(c) & 0xC0) != 0x80) ++n;
  return n;
}

std::string strip_image_preamble(const std::string& text) {
  static const std::string kind =
      R"((close-up |black and white |black-and-white |digital |aerial |stock |color |colour )?)"
      R"((image|picture|photo|photograph|pic|illustration|drawing|painting|screenshot|snapshot|render|rendering))";
  static const std::string kVerbs =
      "(shows|depicts|features|displays|showcases|captures|presents|contains|is of|of|showing|depicting|featuring|"
      "with)";
  static const std::array<std::regex, 3> openers = {
      // "In this image, ..." / "In the picture we see ..."
      std::regex(R"(^in (this|the) )" + kind + R"(\b\s*,?\s*((we|you) (can )?see\s+|there (is|are)\s+)?)",
                 std::regex::icase),
      // "This is a photo of", "It is an image showing"
      std::regex(R"(^(this|it) is (an? |the )?)" + kind + R"(\s+(of|showing|depicting|featuring)\s+)",
                 std::regex::icase),
      // "The image shows", "A picture of", "Photo of", "An illustration depicting", "Image: "
      std::regex(R"(^((this|the|an?) )?)" + kind + R"((\s+(that )?)" + kVerbs + R"(\s+|\s*:\s*))", std::regex::icase),
  };
  std::string s = strip_whitespace(text);
  for (bool changed = true; changed;) {
    changed = false;
    for (const auto& re : openers) {
      std::smatch m;
      if (std::regex_search(s, m, re) && m.length(0) > 0 && size_t(m.length(0)) < s.size()) {
        s = strip_whitespace(std::string_view(s).substr(size_t(m.length(0))));
        changed = true;
      }
    }
  }
  capitalize_first(s);
  return s;
}

std::string first_sentence(const std::string& text) {
  static const std::array<const char*, 12> abbreviations = {"mr",  "mrs", "ms",  "dr", "st", "vs",
                                                            "etc", "e.g", "i.e", "jr", "sr", "approx"};
  const std::string s = strip_whitespace(text);
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (c == '\n' || c == '\r') return strip_whitespace(std::string_view(s).substr(0, i));
    if (c != '.' && c != '!' && c != '?') continue;
    size_t end = i + 1;
    while (end < s.size() && (s[end] == '"' || s[end] == '\'' || s[end] == ')')) ++end;  // closing quotes
    if (end < s.size() && !is_space(s[end])) continue;                                   // "3.5", "e.g.x", "..."
    if (c == '.') {
      size_t w = i;
      while (w > 0 && !is_space(s[w - 1])) --w;
      const std::string word = lower_ascii(s.substr(w, i - w));
      const bool initial = word.size() == 1 && std::isalpha(static_cast<unsigned char>(word[0]));
      if (initial || std::find(abbreviations.begin(), abbreviations.end(), word) != abbreviations.end()) continue;
    }
    return s.substr(0, end);
  }
  return s;
}

std::string cut_at_word_boundary(const std::string& text, std::size_t max_chars) {
  if (utf8_length(text) <= max_chars) return text;
  // Byte offset just after the max_chars-th code point.
  size_t cut = 0, chars = 0;
  while (cut < text.size()) {
    size_t len = 1;
    while (cut + len < text.size() && (static_cast<unsigned char>(text[cut + len]) & 0xC0) == 0x80) ++len;
    if (chars + 1 > max_chars) break;
    cut += len;
    ++chars;
  }
  std::string out = text.substr(0, cut);
  if (cut < text.size() && !is_space(text[cut])) {
    const size_t space = out.find_last_of(" \t\n");
    if (space != std::string::npos && space > 0) out.resize(space);  // else a single long word: cut mid-word
  }
  trim_dangling_punctuation(out);
  return out;
}

std::string postprocess_description(DescribeStyle style, const std::string& raw) {
  switch (style) {
    case DescribeStyle::Alt: {
      std::string s = collapse_to_one_line(strip_image_preamble(first_sentence(strip_label_and_quotes(raw))));
      capitalize_first(s);
      if (s.empty()) return s;
      if (utf8_length(s) > kAltTextMaxChars) return cut_at_word_boundary(s, kAltTextMaxChars - 1) + ".";
      if (!ends_sentence(s)) {
        trim_dangling_punctuation(s);
        if (utf8_length(s) < kAltTextMaxChars) s += '.';
      }
      return s;
    }
    case DescribeStyle::Caption: return collapse_to_one_line(strip_label_and_quotes(raw));
    case DescribeStyle::Detailed: return normalize_paragraphs(raw);
    case DescribeStyle::Product: return normalize_product(raw);
  }
  return strip_whitespace(raw);
}

}  // namespace pictor::pipelines
