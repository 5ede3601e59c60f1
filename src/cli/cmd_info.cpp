// `pictor info IMAGE`: format, size and the generation parameters / text metadata stored in an image.
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "cli/commands.hpp"
#include "formats/generation_params.hpp"
#include "formats/image.hpp"

namespace pictor::cli {
namespace {

nlohmann::json params_json(const GenerationParams& p) {
  nlohmann::json j = {{"prompt", p.prompt},       {"negative_prompt", p.negative_prompt},
                      {"steps", p.steps},         {"sampler", p.sampler},
                      {"cfg_scale", p.cfg_scale}, {"seed", p.seed},
                      {"width", p.width},         {"height", p.height},
                      {"model", p.model},         {"model_hash", p.model_hash}};
  if (p.denoising_strength) j["denoising_strength"] = *p.denoising_strength;
  j["extra"] = p.extra;
  return j;
}

void run_info(const std::string& path, bool json) {
  const auto bytes = read_file_bytes(path);
  // Decoding fully (not just the header) makes `info` a real validity check of the file.
  const Image image = decode_image(bytes.data(), bytes.size(), path);
  const ImageFormat format = detect_image_format(bytes.data(), bytes.size());
  const TextChunks text = read_image_text(bytes.data(), bytes.size(), path);
  const char* mode = image.channels == 4 ? "RGBA" : "RGB";

  if (json) {
    nlohmann::json j = {{"file", path},         {"format", image_format_name(format)},
                        {"width", image.width}, {"height", image.height},
                        {"mode", mode},         {"bytes", bytes.size()}};
    nlohmann::json chunks = nlohmann::json::array();
    for (const auto& [k, v] : text) {
      chunks.push_back({{"key", k}, {"value", v}});
      if (k == "parameters") j["parameters"] = params_json(parse_a1111(v));
    }
    j["text"] = chunks;
    std::printf("%s\n", j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
    return;
  }
  std::printf("file: %s\nformat: %s\nsize: %dx%d\nmode: %s\n", path.c_str(), image_format_name(format), image.width,
              image.height, mode);
  for (const auto& [k, v] : text) {
    if (v.find('\n') == std::string::npos) {
      std::printf("%s: %s\n", k.c_str(), v.c_str());
    } else {
      std::printf("%s:\n%s\n", k.c_str(), v.c_str());
    }
  }
  if (text.empty()) std::printf("(no text metadata)\n");
}

}  // namespace

void add_info_command(CLI::App& app) {
  auto* info = app.add_subcommand("info", "Show an image's format, size and stored generation parameters");
  auto path = std::make_shared<std::string>();
  auto json = std::make_shared<bool>(false);
  info->add_option("IMAGE", *path, "PNG, JPEG or WebP file ('-' for stdin)")->required();
  info->add_flag("--json", *json, "Print JSON, with the A1111 parameters parsed into fields");
  info->callback([path, json] { run_info(*path, *json); });
}

}  // namespace pictor::cli
