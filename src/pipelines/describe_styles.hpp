#pragma once
// Description styles of `pictor describe`: each style is a prompt preset (what the model is asked) plus a
// post-processing step that enforces the shape the style promises, because small vision-language models
// do not reliably follow formatting instructions (they open with "The image shows ...", run on past one
// sentence, or end mid-word when the token budget runs out).
//
//   alt      alt text for accessibility: one sentence, no "image of" / "a picture of" / "photo of" opener,
//            at most kAltTextMaxChars characters (cut at a word boundary), ends with a period.
//   caption  a one-line caption: whitespace and line breaks collapsed into one line.
//   detailed several paragraphs: line ends trimmed, runs of blank lines collapsed to one.
//   product  a product listing: "Title:", "Features:" bullets and "Colours and materials:" as seen;
//            bullets normalized to "- ", blank-line runs collapsed.
// Torch-free, so it is unit-tested on its own.
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace pictor::pipelines {

enum class DescribeStyle { Alt, Caption, Detailed, Product };

inline constexpr std::size_t kAltTextMaxChars = 150;

// "alt", "caption", "detailed", "product" -> style; anything else throws pictor::Error listing the choices.
DescribeStyle parse_describe_style(std::string_view name);
const char* describe_style_name(DescribeStyle style);

// The instruction sent to the model for a style (the user turn's text after the image).
const std::string& style_prompt(DescribeStyle style);
// Default new-token budget of a style (alt/caption are short; detailed/product need room).
int style_max_tokens(DescribeStyle style);

// Post-processing of a style applied to the model's raw answer. Always strips surrounding whitespace.
std::string postprocess_description(DescribeStyle style, const std::string& raw);
// Only the whitespace strip (used when the user gives their own prompt and no style).
std::string strip_whitespace(std::string_view text);

// Building blocks, exposed for tests.
// Removes a leading "The image shows", "This is a photo of", "A picture of", "Image of", ... phrase
// (case-insensitive, repeated) and upper-cases the new first letter.
std::string strip_image_preamble(const std::string& text);
// The first sentence of `text` (ends at ., ! or ? followed by whitespace, or at a line break;
// abbreviations such as "Mr." and decimals such as "3.5" do not end a sentence).
std::string first_sentence(const std::string& text);
// At most `max_chars` Unicode characters; when shortened, cut at the last word boundary that fits
// (a single over-long word is cut mid-word) and trailing punctuation such as "," is dropped.
std::string cut_at_word_boundary(const std::string& text, std::size_t max_chars);
// Number of Unicode code points of UTF-8 `text`.
std::size_t utf8_length(std::string_view text);

}  // namespace pictor::pipelines
