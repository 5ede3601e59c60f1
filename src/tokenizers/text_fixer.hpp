#pragma once
// A C++ rendition of the parts of ftfy 6.1.1 `fix_text` (default settings) that change CLIP prompts.
// transformers' CLIPTokenizer runs every prompt through ftfy.fix_text when ftfy is installed, and
// Stable Diffusion's text encoders were trained on ids produced that way, so the tokenizer applies the
// same fixes. What is covered and what is approximated is listed in docs/TOKENIZER.md; in short:
//   - HTML entities (&amp; &lt; &#39; &#x27; ...; HTML 4 names), skipped on a line containing '<'
//   - mojibake: UTF-8 read as Latin-1 / Windows-1252, whole-text and embedded runs
//   - C1 controls read as Windows-1252, Latin ligatures (ﬁ -> fi), fullwidth/halfwidth forms (NFKC),
//     curly quotes -> straight quotes, line breaks -> \n, terminal escapes and control characters
//     removed, NFC normalisation.
#include <string>
#include <string_view>

namespace pictor::tokenizers {

// `text` is UTF-8 (invalid bytes become U+FFFD); returns UTF-8.
std::string fix_text(std::string_view text);
std::u32string fix_text(std::u32string_view text);

}  // namespace pictor::tokenizers
