#include "storage/prompt_diff.hpp"

#include <algorithm>
#include <cctype>
#include <cstdint>

#include <nlohmann/json.hpp>

#include "core/error.hpp"

namespace pictor::storage {

namespace {

// Prompts are short, but the LCS table is quadratic: refuse to build one that would be huge instead of
// exhausting memory on a pathological request (callers cap prompt length well below this).
constexpr size_t kMaxTableCells = size_t(16) << 20;

void append(std::vector<DiffSegment>& out, DiffSegment::Op op, const std::string& word) {
  if (!out.empty() && out.back().op == op) {
    out.back().text += ' ';
    out.back().text += word;
  } else {
    out.push_back({op, word});
  }
}

}  // namespace

std::vector<std::string> split_words(const std::string& text) {
  std::vector<std::string> words;
  std::string word;
  for (char c : text) {
    if (std::isspace(static_cast<unsigned char>(c))) {
      if (!word.empty()) words.push_back(std::move(word));
      word.clear();
    } else {
      word += c;
    }
  }
  if (!word.empty()) words.push_back(std::move(word));
  return words;
}

std::vector<DiffSegment> prompt_diff(const std::string& before, const std::string& after) {
  const auto a = split_words(before);
  const auto b = split_words(after);
  const size_t n = a.size(), m = b.size();
  if ((n + 1) * (m + 1) > kMaxTableCells)
    throw Error("prompt_diff: prompts of " + std::to_string(n) + " and " + std::to_string(m) +
                " words are too long to compare");
  // lcs[i][j]: length of the longest common subsequence of a[i..] and b[j..]; filled from the end so the
  // walk below can go forwards and emit segments in reading order.
  std::vector<uint32_t> lcs((n + 1) * (m + 1), 0);
  auto at = [&](size_t i, size_t j) -> uint32_t& { return lcs[i * (m + 1) + j]; };
  for (size_t i = n; i-- > 0;)
    for (size_t j = m; j-- > 0;) at(i, j) = a[i] == b[j] ? at(i + 1, j + 1) + 1 : std::max(at(i + 1, j), at(i, j + 1));

  std::vector<DiffSegment> out;
  size_t i = 0, j = 0;
  while (i < n && j < m) {
    if (a[i] == b[j]) {
      append(out, DiffSegment::Op::Keep, a[i]);
      ++i, ++j;
    } else if (at(i + 1, j) >= at(i, j + 1)) {
      // Removals before additions at the same place, so a replacement reads "remove old, add new".
      append(out, DiffSegment::Op::Remove, a[i++]);
    } else {
      append(out, DiffSegment::Op::Add, b[j++]);
    }
  }
  while (i < n) append(out, DiffSegment::Op::Remove, a[i++]);
  while (j < m) append(out, DiffSegment::Op::Add, b[j++]);
  return out;
}

nlohmann::json prompt_diff_json(const std::vector<DiffSegment>& diff) {
  auto out = nlohmann::json::array();
  for (const auto& s : diff) {
    const char* op = s.op == DiffSegment::Op::Keep ? "keep" : s.op == DiffSegment::Op::Add ? "add" : "remove";
    out.push_back({{"op", op}, {"text", s.text}});
  }
  return out;
}

}  // namespace pictor::storage
