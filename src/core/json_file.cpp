#include "core/json_file.hpp"

#include <cmath>
#include <fstream>
#include <limits>
#include <sstream>

namespace pictor {

namespace {

// Python's json module writes the non-standard tokens NaN, Infinity and -Infinity (diffusers configs
// hold e.g. "lambda_min_clipped": -Infinity). Outside string literals they become null and +-DBL_MAX (the
// parser refuses out-of-range numbers), which restore_infinities() turns into +-infinity after parsing.
std::string replace_python_literals(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (in_string) {
      out += c;
      if (c == '\\' && i + 1 < text.size())
        out += text[++i];
      else if (c == '"')
        in_string = false;
      continue;
    }
    if (c == '"') in_string = true;
    if (text.compare(i, 8, "Infinity") == 0) {
      out += "1.7976931348623157e308";
      i += 7;
    } else if (text.compare(i, 3, "NaN") == 0) {
      out += "null";
      i += 2;
    } else {
      out += c;
    }
  }
  return out;
}

void restore_infinities(json& j) {
  if (j.is_number_float() && std::fabs(j.get<double>()) == std::numeric_limits<double>::max())
    j = std::copysign(std::numeric_limits<double>::infinity(), j.get<double>());
  else if (j.is_structured())
    for (auto& v : j) restore_infinities(v);
}

}  // namespace

json read_json_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path.string() + ": cannot open file");
  std::stringstream buf;
  buf << in.rdbuf();
  try {
    return json::parse(buf.str());
  } catch (const json::parse_error& e) {
    try {
      json j = json::parse(replace_python_literals(buf.str()));
      restore_infinities(j);
      return j;
    } catch (const json::parse_error&) {
    }
    throw Error(path.string() + ": malformed JSON (" + e.what() + ")");
  }
}

void write_json_file(const std::filesystem::path& path, const json& j) {
  if (path.has_parent_path()) std::filesystem::create_directories(path.parent_path());
  std::ofstream out(path, std::ios::trunc);
  if (!out) throw Error(path.string() + ": cannot write file");
  out << j.dump(2) << "\n";
  if (!out) throw Error(path.string() + ": write failed");
}

JsonConfig JsonConfig::load(const std::filesystem::path& path) {
  json j = read_json_file(path);
  if (!j.is_object()) throw Error(path.string() + ": expected a JSON object at top level");
  return JsonConfig(std::move(j), path.string());
}

}  // namespace pictor
