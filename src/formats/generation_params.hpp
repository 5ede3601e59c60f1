#pragma once
// AUTOMATIC1111's "infotext": the generation parameters stored in a PNG "parameters" text chunk (and
// in JPEG/WebP EXIF UserComment) that most Stable Diffusion tools read and write:
//
//   a photo of a cat
//   Negative prompt: blurry
//   Steps: 20, Sampler: Euler a, CFG scale: 7, Seed: 123, Size: 512x768, Model hash: abc, Model: sd15
//
// Layout as in A1111's processing.create_infotext: the prompt (may span lines), an optional
// "Negative prompt:" block (omitted when empty), then one line of "Key: value" pairs joined by ", "
// where a value containing ',', ':' or a newline is JSON-quoted (infotext_utils.quote). Parsing
// follows infotext_utils.parse_generation_parameters: the last line holds the parameters only when it
// has at least 3 "Key: value" pairs; otherwise it belongs to the prompt.
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace pictor {

struct GenerationParams {
  std::string prompt;
  std::string negative_prompt;
  int steps = 0;
  std::string sampler;  // A1111 display name: "Euler", "Euler a", "DPM++ 2M", "DPM++ 2M Karras", "DDIM", "LCM"
  double cfg_scale = 0;
  uint64_t seed = 0;
  int width = 0;
  int height = 0;
  std::string model;                         // checkpoint name ("Model")
  std::string model_hash;                    // "Model hash" (A1111 uses the first 10 hex digits of the file's sha256)
  std::optional<double> denoising_strength;  // img2img / inpainting only
  // Every other pair, e.g. "Clip skip", "Schedule type", "VAE", "Version", with unquoted values. A known
  // key whose value does not parse (e.g. "Seed: -1") is kept here verbatim.
  std::map<std::string, std::string> extra;
};

// Infotext for `p`. Emitted in A1111's order: Steps (when > 0), Sampler (when set), CFG scale, Seed,
// Size (when set), Model hash, Model (when set), Denoising strength (when set), then `extra` in key
// order. Numbers print like Python's repr (7 -> "7", 7.5 -> "7.5", 0.75 -> "0.75").
std::string format_a1111(const GenerationParams& p);

// Parses an infotext. Never throws: missing fields keep their defaults (0 / empty / nullopt).
GenerationParams parse_a1111(const std::string& text);

// The "Key: value" pairs of one parameter line, with the semantics of A1111's
// re_param = r'\s*(\w[\w \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)' used with findall; values are
// returned raw (still quoted).
std::vector<std::pair<std::string, std::string>> a1111_find_params(const std::string& line);
// infotext_utils.quote / unquote: JSON string quoting for values containing ',', ':' or '\n'.
std::string a1111_quote(const std::string& value);
std::string a1111_unquote(const std::string& value);
// Python-repr-like shortest round-trip formatting of a number (7 -> "7", 0.1 -> "0.1").
std::string a1111_number(double v);

// A1111's sampler display name for a diffusers scheduler class (e.g. "EulerAncestralDiscreteScheduler"
// -> "Euler a", "DPMSolverMultistepScheduler" with Karras sigmas -> "DPM++ 2M Karras"); the class name
// itself when there is no A1111 equivalent.
std::string a1111_sampler_name(const std::string& scheduler_class, bool karras_sigmas = false);

// Pictor sampler names (euler, euler_a, dpmpp_2m, dpmpp_2m_karras, ddim, lcm, euler_karras) <-> the
// display names AUTOMATIC1111 writes in "Sampler:" ("Euler", "Euler a", "DPM++ 2M Karras", ...).
// Unknown names pass through unchanged.
std::string a1111_sampler_display(const std::string& pictor_sampler);
std::string pictor_sampler_from_a1111(const std::string& display);

}  // namespace pictor
