#include "core/json_file.hpp"

#include <fstream>
#include <sstream>

namespace pictor {

json read_json_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path.string() + ": cannot open file");
  std::stringstream buf;
  buf << in.rdbuf();
  try {
    return json::parse(buf.str());
  } catch (const json::parse_error& e) {
    throw Error(path.string() + ": malformed JSON (" + e.what() + ")");
  }
}

JsonConfig JsonConfig::load(const std::filesystem::path& path) {
  json j = read_json_file(path);
  if (!j.is_object()) throw Error(path.string() + ": expected a JSON object at top level");
  return JsonConfig(std::move(j), path.string());
}

}  // namespace pictor
