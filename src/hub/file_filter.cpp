#include "hub/file_filter.hpp"

#include <fnmatch.h>

#include <regex>
#include <set>

namespace pictor::hub {

namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string folder_of(const std::string& path) {
  auto slash = path.rfind('/');
  return slash == std::string::npos ? std::string() : path.substr(0, slash + 1);
}

bool has_pictor_extension(const std::string& path) {
  for (const char* ext : {".json", ".txt", ".model", ".jinja", ".safetensors"})
    if (ends_with(path, ext)) return true;
  return false;
}

// For "dir/name.VARIANT.safetensors", its shards and its index: the plain files whose presence makes the
// variant redundant ("dir/name.safetensors", "dir/name.safetensors.index.json"). Empty if not a variant.
std::vector<std::string> plain_counterparts(const std::string& path) {
  static const std::regex weights(R"(^([^/]+)\.([A-Za-z0-9_]+)(-\d+-of-\d+)?\.safetensors$)");
  static const std::regex index(R"(^([^/]+)\.([A-Za-z0-9_]+)\.safetensors\.index\.json$)");
  std::string folder = folder_of(path);
  std::string name = path.substr(folder.size());
  std::smatch m;
  if (!std::regex_match(name, m, weights) && !std::regex_match(name, m, index)) return {};
  std::string stem = folder + m[1].str();
  return {stem + ".safetensors", stem + ".safetensors.index.json"};
}

bool default_rule(const std::string& path, const std::set<std::string>& all, bool diffusers_repo) {
  if (!has_pictor_extension(path)) return false;
  if (diffusers_repo && ends_with(path, ".safetensors") && path.find('/') == std::string::npos) return false;
  for (const auto& plain : plain_counterparts(path))
    if (all.count(plain)) return false;
  return true;
}

}  // namespace

bool glob_match(const std::string& pattern, const std::string& path) {
  return ::fnmatch(pattern.c_str(), path.c_str(), 0) == 0;
}

std::vector<std::string> select_files(const std::vector<std::string>& repo_files, const FileFilter& filter) {
  std::set<std::string> all(repo_files.begin(), repo_files.end());
  bool diffusers_repo = all.count("model_index.json") > 0;
  std::vector<std::string> out;
  for (const auto& path : repo_files) {
    bool keep = false;
    if (filter.include.empty()) {
      keep = default_rule(path, all, diffusers_repo);
    } else {
      for (const auto& g : filter.include) keep = keep || glob_match(g, path);
    }
    for (const auto& g : filter.exclude) keep = keep && !glob_match(g, path);
    if (keep) out.push_back(path);
  }
  return out;
}

}  // namespace pictor::hub
