#pragma once
// Word-level difference between two prompts, for showing what a refinement step changed ("a red car" →
// "a blue car": keep "a", remove "red", add "blue", keep "car"). Words are whitespace-separated; the diff
// is a longest common subsequence over them, with neighbouring words of the same kind merged into one
// segment so the result reads like text.
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace pictor::storage {

struct DiffSegment {
  enum class Op { Keep, Add, Remove };
  Op op;
  std::string text;  // one or more words joined by single spaces
};

std::vector<std::string> split_words(const std::string& text);
std::vector<DiffSegment> prompt_diff(const std::string& before, const std::string& after);
// [{"op":"keep"|"add"|"remove","text"}]
nlohmann::json prompt_diff_json(const std::vector<DiffSegment>& diff);

}  // namespace pictor::storage
