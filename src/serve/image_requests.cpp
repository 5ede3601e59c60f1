#include "serve/image_requests.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <ctime>
#include <limits>

#include "formats/generation_params.hpp"
#include "schedulers/scheduler.hpp"
#include "serve/base64.hpp"
#include "storage/ids.hpp"

namespace pictor::serve {

using nlohmann::json;

namespace {

constexpr int kMaxSteps = 150;
constexpr double kMaxGuidance = 30;
constexpr int kMaxClipSkip = 12;
constexpr size_t kMaxPromptChars = 32000;
constexpr double kEditStrength = 0.75;      // img2img edits without a mask
constexpr double kInpaintStrength = 1.0;    // masked edits repaint the area from scratch (diffusers' default)
constexpr double kVariationStrength = 0.6;  // keeps composition and colours, changes the details
constexpr double kA1111DenoisingStrength = 0.75;

// A value as shown in an error message: JSON text, cut short.
std::string shown(const json& v) {
  std::string s = v.dump();
  if (s.size() > 60) {
    s.resize(57);
    s += "...";
  }
  return s;
}

std::string join(const std::vector<std::string>& items, const std::string& sep) {
  std::string out;
  for (const auto& i : items) out += (out.empty() ? "" : sep) + i;
  return out;
}

std::string lower(std::string s) {
  for (auto& c : s) c = char(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// Typed access to request fields. A null value counts as absent (clients often send every field). In a
// multipart form every field is text, so numbers and booleans are parsed from strings there.
class Fields {
 public:
  Fields(const json& body, bool form) : body_(body), form_(form) {
    if (!body.is_object())
      throw ApiError(400, "invalid_request_error", "the request body must be a JSON object", "", "invalid_json");
  }

  const json* get(const std::string& name) const {
    auto it = body_.find(name);
    return it == body_.end() || it->is_null() ? nullptr : &*it;
  }

  std::optional<std::string> text(const std::string& name) const {
    const json* v = get(name);
    if (!v) return std::nullopt;
    if (!v->is_string()) throw invalid_param(name, name + " must be a string, got " + shown(*v), "invalid_type");
    return v->get<std::string>();
  }

  std::optional<int64_t> integer(const std::string& name, int64_t lo, int64_t hi) const {
    const json* v = get(name);
    if (!v) return std::nullopt;
    auto x = as_integer(*v);
    if (!x || *x < lo || *x > hi)
      throw invalid_param(name,
                          name + " must be an integer between " + std::to_string(lo) + " and " + std::to_string(hi) +
                              ", got " + shown(*v),
                          x ? "invalid_value" : "invalid_type");
    return x;
  }

  std::optional<double> number(const std::string& name, double lo, double hi) const {
    const json* v = get(name);
    if (!v) return std::nullopt;
    std::optional<double> x;
    if (v->is_number()) x = v->get<double>();
    if (form_ && v->is_string()) x = parse_double(v->get<std::string>());
    if (!x || !std::isfinite(*x) || *x < lo || *x > hi)
      throw invalid_param(
          name,
          name + " must be a number between " + a1111_number(lo) + " and " + a1111_number(hi) + ", got " + shown(*v),
          x ? "invalid_value" : "invalid_type");
    return x;
  }

  // A seed: an integer in 0..2^64-1.
  std::optional<uint64_t> seed(const std::string& name, const std::string& extra_hint = "") const {
    const json* v = get(name);
    if (!v) return std::nullopt;
    std::optional<uint64_t> x;
    if (v->is_number_unsigned()) x = v->get<uint64_t>();
    if (v->is_number_integer() && !v->is_number_unsigned() && v->get<int64_t>() >= 0) x = uint64_t(v->get<int64_t>());
    if (form_ && v->is_string()) {
      const std::string s = v->get<std::string>();
      uint64_t u = 0;
      auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), u);
      if (ec == std::errc() && end == s.data() + s.size() && !s.empty()) x = u;
    }
    if (!x)
      throw invalid_param(
          name, name + " must be " + extra_hint + "an integer between 0 and 18446744073709551615, got " + shown(*v));
    return x;
  }

  std::optional<bool> boolean(const std::string& name) const {
    const json* v = get(name);
    if (!v) return std::nullopt;
    if (v->is_boolean()) return v->get<bool>();
    if (v->is_number_integer() && (v->get<int64_t>() == 0 || v->get<int64_t>() == 1)) return v->get<int64_t>() == 1;
    if (form_ && v->is_string()) {
      std::string s = lower(v->get<std::string>());
      if (s == "true" || s == "1") return true;
      if (s == "false" || s == "0") return false;
    }
    throw invalid_param(name, name + " must be true or false, got " + shown(*v), "invalid_type");
  }

  // One of `allowed`, or `fallback` when absent.
  std::string choice(const std::string& name, const std::vector<std::string>& allowed,
                     const std::string& fallback) const {
    auto v = text(name);
    if (!v) return fallback;
    if (std::find(allowed.begin(), allowed.end(), *v) == allowed.end())
      throw invalid_param(name, name + " must be one of " + join(allowed, ", ") + ", got " + shown(json(*v)));
    return *v;
  }

 private:
  std::optional<int64_t> as_integer(const json& v) const {
    if (v.is_number_unsigned()) {
      uint64_t u = v.get<uint64_t>();
      return u > uint64_t(std::numeric_limits<int64_t>::max()) ? std::nullopt : std::optional<int64_t>(int64_t(u));
    }
    if (v.is_number_integer()) return v.get<int64_t>();
    if (v.is_number_float()) {  // 2.0 from a JavaScript client is still an integer
      double d = v.get<double>();
      if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9e15) return int64_t(d);
      return std::nullopt;
    }
    if (form_ && v.is_string()) {
      const std::string s = v.get<std::string>();
      int64_t x = 0;
      auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), x);
      if (ec == std::errc() && end == s.data() + s.size() && !s.empty()) return x;
    }
    return std::nullopt;
  }

  static std::optional<double> parse_double(const std::string& s) {
    if (s.empty()) return std::nullopt;
    char* end = nullptr;
    double d = std::strtod(s.c_str(), &end);
    if (end != s.c_str() + s.size()) return std::nullopt;
    return d;
  }

  const json& body_;
  bool form_;
};

// "WIDTHxHEIGHT" with both sides multiples of 8 in 64..max_side; {0, 0} for "auto".
std::pair<int, int> parse_size(const Fields& f, int max_side) {
  auto s = f.text("size");
  if (!s || *s == "auto") return {0, 0};
  const std::string rule = "size must be \"auto\" or WIDTHxHEIGHT with each side a multiple of 8 between 64 and " +
                           std::to_string(max_side) + " (e.g. \"512x512\"), got " + shown(json(*s));
  size_t x = s->find('x');
  if (x == std::string::npos) throw invalid_param("size", rule);
  int w = 0, h = 0;
  auto parse = [&](size_t from, size_t to, int& out) {
    auto [end, ec] = std::from_chars(s->data() + from, s->data() + to, out);
    return ec == std::errc() && end == s->data() + to && to > from;
  };
  if (!parse(0, x, w) || !parse(x + 1, s->size(), h)) throw invalid_param("size", rule);
  for (int side : {w, h})
    if (side < 64 || side > max_side || side % 8 != 0) throw invalid_param("size", rule);
  return {w, h};
}

int parse_side(const Fields& f, const std::string& name, int max_side) {
  auto v = f.integer(name, 64, max_side);
  if (!v) return 0;
  if (*v % 8 != 0)
    throw invalid_param(name, name + " must be a multiple of 8 between 64 and " + std::to_string(max_side) + ", got " +
                                  std::to_string(*v));
  return int(*v);
}

// The "generate" params every request starts from (job_kinds.hpp: 0 / -1 / "" mean the model default).
json base_params(const ImageRequestEnv& env) {
  return json{{"prompt", ""},
              {"negative_prompt", ""},
              {"width", 0},
              {"height", 0},
              {"steps", 0},
              {"count", 1},
              {"clip_skip", 0},
              {"guidance", -1.0},
              {"sampler", ""},
              {"noise", "cpu"},
              {"output_format", "png"},
              {"previews", env.previews}};
}

std::string required_prompt(const Fields& f) {
  auto p = f.text("prompt");
  if (!p || p->find_first_not_of(" \t\r\n") == std::string::npos)
    throw invalid_param("prompt", "prompt is required: a non-empty string describing the image",
                        p ? "invalid_value" : "missing_required_parameter");
  if (p->size() > kMaxPromptChars)
    throw invalid_param("prompt", "prompt must be at most " + std::to_string(kMaxPromptChars) + " characters, got " +
                                      std::to_string(p->size()));
  return *p;
}

// Fields shared by the three OpenAI endpoints; returns the response format, fills params and tags.
struct OpenAiCommon {
  std::string model;
  std::string response_format;
  std::optional<double> strength;
};

OpenAiCommon read_openai_common(const Fields& f, const ImageRequestEnv& env, json& params, json& tags) {
  OpenAiCommon c;
  std::string model_name = f.text("model").value_or("");
  c.model = env.pick_model(model_name, "model");
  params["count"] = f.integer("n", 1, env.max_images).value_or(1);
  auto [w, h] = parse_size(f, env.max_output_side);
  params["width"] = w;
  params["height"] = h;
  c.response_format = f.choice("response_format", {"b64_json", "url"}, "b64_json");
  params["output_format"] = f.choice("output_format", {"png", "jpeg", "webp"}, "png");
  // Accepted for compatibility; they choose between OpenAI's own models and have no meaning here.
  f.choice("quality", {"auto", "standard", "hd", "low", "medium", "high"}, "auto");
  f.choice("style", {"vivid", "natural"}, "vivid");
  f.choice("moderation", {"auto", "low"}, "auto");
  f.integer("output_compression", 0, 100);
  f.choice("background", {"auto", "opaque"}, "auto");  // "transparent": Stable Diffusion has no alpha output
  if (f.boolean("stream").value_or(false))
    throw invalid_param("stream",
                        "stream is not supported by this endpoint; submit the request as a job (POST /v1/jobs) "
                        "and follow GET /v1/jobs/{id}/events for progress");
  if (auto user = f.text("user")) tags["user"] = *user;
  tags["response_format"] = c.response_format;

  // Pictor extensions.
  if (auto v = f.text("negative_prompt")) params["negative_prompt"] = *v;
  if (auto v = f.seed("seed")) params["seed"] = *v;
  if (auto v = f.integer("steps", 1, kMaxSteps)) params["steps"] = *v;
  if (auto v = f.number("guidance_scale", 0, kMaxGuidance)) params["guidance"] = *v;
  if (auto v = f.text("sampler")) params["sampler"] = sampler_from_request(*v, "", "sampler");
  if (auto v = f.integer("clip_skip", 1, kMaxClipSkip)) params["clip_skip"] = *v;
  params["noise"] = f.choice("noise", {"cpu", "a1111"}, "cpu");
  c.strength = f.number("strength", 0, 1);
  return c;
}

jobs::JobSpec make_spec(const std::string& type, const std::string& model, json params, json tags,
                        const std::string& caller) {
  jobs::JobSpec spec;
  spec.kind = "generate";
  spec.model = model;
  spec.params = std::move(params);
  spec.owner = caller;
  tags["type"] = type;
  spec.tags = std::move(tags);
  return spec;
}

Image decode_input(const ImageInput& in, const ImageRequestEnv& env) {
  if (!in.stored_id.empty()) {
    std::optional<Image> img = env.load_image ? env.load_image(in.stored_id) : std::nullopt;
    if (!img)
      throw invalid_param(in.field, in.field + ": there is no stored image \"" + in.stored_id + "\"", "not_found");
    return *img;
  }
  if (in.bytes.empty()) throw invalid_param(in.field, in.field + " is empty: send an encoded PNG, JPEG or WebP image");
  if (in.bytes.size() > env.image_limits.max_bytes)
    throw invalid_param(in.field,
                        in.field + " is " + std::to_string(in.bytes.size()) + " bytes; the limit is " +
                            std::to_string(env.image_limits.max_bytes),
                        "image_too_large");
  try {
    // decode_image checks the header's dimensions against max_pixels before allocating any pixels.
    return decode_image(in.bytes.data(), in.bytes.size(), in.field, env.image_limits);
  } catch (const Error& e) {
    throw invalid_param(in.field,
                        std::string("could not read ") + in.field + " as a PNG, JPEG or WebP image: " + e.what(),
                        "invalid_image");
  }
}

std::string store_input(const ImageInput& in, const Image& decoded, const ImageRequestEnv& env) {
  return in.stored_id.empty() ? env.store_image(in.bytes, decoded) : in.stored_id;
}

std::string size_text(int w, int h) {
  return std::to_string(w) + "x" + std::to_string(h);
}

std::vector<uint64_t> result_seeds(const json& result) {
  std::vector<uint64_t> seeds;
  for (const auto& img : result.value("images", json::array())) seeds.push_back(img.value("seed", uint64_t(0)));
  return seeds;
}

// A stored image of a finished job, or a 500: the job says it made it, so it must be there.
storage::StoredImage job_image(const json& image, const ImageResponseEnv& env) {
  std::string id = image.value("id", "");
  auto stored = env.get_image(id);
  if (!stored) throw ApiError(500, "server_error", "the generated image " + id + " is missing from the image store");
  return *stored;
}

struct SamplerName {
  const char* pictor;
  std::vector<const char*> aliases;  // besides the A1111 display name (k-diffusion names of old A1111 APIs)
};
const std::vector<SamplerName>& sampler_aliases() {
  static const std::vector<SamplerName> table = {
      {"euler", {"k_euler"}},
      {"euler_a", {"k_euler_a", "k_euler_ancestral", "euler_ancestral"}},
      {"euler_karras", {"k_euler_karras"}},
      {"dpmpp_2m", {"k_dpmpp_2m"}},
      {"dpmpp_2m_karras", {"k_dpmpp_2m_ka", "k_dpmpp_2m_karras"}},
  };
  return table;
}

std::vector<std::string> sampler_aliases_of(const std::string& pictor) {
  std::vector<std::string> out{pictor};
  for (const auto& s : sampler_aliases())
    if (pictor == s.pictor)
      for (const char* a : s.aliases) out.push_back(a);
  return out;
}

std::string timestamp_text(double unix_seconds) {
  std::time_t t = std::time_t(unix_seconds);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y%m%d%H%M%S", &tm);
  return buf;
}

}  // namespace

std::string sampler_from_request(const std::string& name, const std::string& schedule, const std::string& param) {
  if (name.empty()) return "";
  const auto names = scheduler_names();
  std::string found;
  for (const auto& n : names) {
    std::vector<std::string> spellings = sampler_aliases_of(n);
    spellings.push_back(a1111_sampler_display(n));
    for (const auto& s : spellings)
      if (lower(s) == lower(name)) found = n;
  }
  if (found.empty()) {
    std::vector<std::string> shown_names;
    for (const auto& n : names) {
      // Appended piecewise: GCC 12 warns (falsely) about `"literal" + std::string&&` here.
      std::string entry;
      entry += '"';
      entry += a1111_sampler_display(n);
      entry += "\" (";
      entry += n;
      entry += ')';
      shown_names.push_back(std::move(entry));
    }
    throw invalid_param(param, "unknown sampler \"" + name + "\"; available: " + join(shown_names, ", "));
  }
  const std::string s = lower(schedule);
  if (s.empty() || s == "automatic") return found;
  if (s != "karras")
    throw invalid_param("scheduler", "scheduler must be \"Automatic\" or \"Karras\", got \"" + schedule + "\"");
  if (found.size() > 7 && found.compare(found.size() - 7, 7, "_karras") == 0) return found;
  if (std::find(names.begin(), names.end(), found + "_karras") == names.end())
    throw invalid_param("scheduler", "the Karras schedule is not available with sampler \"" + name + "\"");
  return found + "_karras";
}

bool is_openai_image_model_name(const std::string& name) {
  return name.rfind("dall-e", 0) == 0 || name.rfind("gpt-image", 0) == 0;
}

// ---- OpenAI ----------------------------------------------------------------------------------------

jobs::JobSpec parse_generation_request(const json& body, const ImageRequestEnv& env, const std::string& caller) {
  Fields f(body, false);
  json params = base_params(env);
  json tags = json::object();
  params["prompt"] = required_prompt(f);
  OpenAiCommon c = read_openai_common(f, env, params, tags);
  // Text-to-image has no init image: strength is validated (so a typo is caught) but has no effect.
  return make_spec("images.generations", c.model, std::move(params), std::move(tags), caller);
}

jobs::JobSpec parse_edit_request(const json& fields, bool form, const std::vector<ImageInput>& images,
                                 const std::optional<ImageInput>& mask, const ImageRequestEnv& env,
                                 const std::string& caller) {
  Fields f(fields, form);
  json params = base_params(env);
  json tags = json::object();
  params["prompt"] = required_prompt(f);
  OpenAiCommon c = read_openai_common(f, env, params, tags);
  if (images.empty())
    throw invalid_param("image", "image is required: upload the image to edit as a PNG, JPEG or WebP file",
                        "missing_required_parameter");

  // Decode everything before storing anything, so a refused request leaves no orphan uploads.
  Image init = decode_input(images[0], env);
  std::optional<Image> mask_image;
  if (mask) {
    mask_image = decode_input(*mask, env);
    if (mask_image->width != init.width || mask_image->height != init.height)
      throw invalid_param("mask", "mask must have the same size as the image (" + size_text(init.width, init.height) +
                                      "), got " + size_text(mask_image->width, mask_image->height));
    if (mask_image->channels != 4)
      throw invalid_param("mask",
                          "mask must be a PNG with an alpha channel: its fully transparent pixels mark the area "
                          "to repaint");
  }
  params["init_image"] = store_input(images[0], init, env);
  if (mask) {
    params["mask"] = store_input(*mask, *mask_image, env);
    params["mask_convention"] = "transparent";
  }
  params["strength"] = c.strength.value_or(mask ? kInpaintStrength : kEditStrength);
  if (images.size() > 1) tags["ignored_images"] = images.size() - 1;
  return make_spec("images.edits", c.model, std::move(params), std::move(tags), caller);
}

jobs::JobSpec parse_variation_request(const json& fields, bool form, const std::vector<ImageInput>& images,
                                      const ImageRequestEnv& env, const std::string& caller) {
  Fields f(fields, form);
  json params = base_params(env);
  json tags = json::object();
  // An empty prompt: the image alone steers the result (the extension field `prompt` may steer it too).
  params["prompt"] = f.text("prompt").value_or("");
  OpenAiCommon c = read_openai_common(f, env, params, tags);
  if (images.empty())
    throw invalid_param("image", "image is required: upload the image to vary as a PNG, JPEG or WebP file",
                        "missing_required_parameter");
  Image init = decode_input(images[0], env);
  params["init_image"] = store_input(images[0], init, env);
  params["strength"] = c.strength.value_or(kVariationStrength);
  if (images.size() > 1) tags["ignored_images"] = images.size() - 1;
  return make_spec("images.variations", c.model, std::move(params), std::move(tags), caller);
}

std::vector<ImageInput> image_inputs_from_json(const json& value, const std::string& field, uint64_t max_bytes) {
  std::vector<json> items;
  if (value.is_array())
    items.assign(value.begin(), value.end());
  else
    items.push_back(value);
  const std::string rule = field + " must be a data: URI, base64 image data or a stored image id (img_...)";
  std::vector<ImageInput> out;
  for (const json& item : items) {
    if (!item.is_string()) throw invalid_param(field, rule + ", got " + shown(item), "invalid_type");
    const std::string s = item.get<std::string>();
    ImageInput in;
    in.field = field;
    if (storage::is_valid_id(s, "img")) {
      in.stored_id = s;
      out.push_back(std::move(in));
      continue;
    }
    std::string payload = s;
    if (s.rfind("data:", 0) == 0) {
      auto uri = parse_data_uri(s);
      if (!uri) throw invalid_param(field, rule + " (a data: URI must be base64: data:image/png;base64,...)");
      payload = uri->payload;
    }
    // Refuse oversized payloads before decoding them (3 bytes per 4 characters).
    if (payload.size() / 4 * 3 > max_bytes + 3)
      throw invalid_param(field, field + " is larger than the limit of " + std::to_string(max_bytes) + " bytes",
                          "image_too_large");
    auto bytes = base64_decode(payload, max_bytes);
    if (!bytes) throw invalid_param(field, rule);
    in.bytes = std::move(*bytes);
    out.push_back(std::move(in));
  }
  return out;
}

json images_response(const storage::JobRecord& job, const ImageResponseEnv& env) {
  const std::string format = job.tags.value("response_format", "b64_json");
  json data = json::array();
  int width = 0, height = 0;
  for (const auto& image : job.result.value("images", json::array())) {
    storage::StoredImage stored = job_image(image, env);
    json item;
    if (format == "url")
      item["url"] = env.base_url + env.image_path(stored);
    else
      item["b64_json"] = base64_encode(env.read_image(stored));
    item["seed"] = image.value("seed", uint64_t(0));
    if (width == 0) width = stored.width, height = stored.height;
    data.push_back(std::move(item));
  }
  json out;
  out["created"] = int64_t(job.result.value("created", job.finished));
  out["data"] = std::move(data);
  out["output_format"] = job.params.value("output_format", "png");
  if (width > 0) out["size"] = size_text(width, height);
  return out;
}

// ---- AUTOMATIC1111 ---------------------------------------------------------------------------------

jobs::JobSpec parse_a1111_request(const json& body, bool img2img, const ImageRequestEnv& env, const std::string& caller,
                                  const std::string& default_checkpoint) {
  Fields f(body, false);
  json params = base_params(env);
  params["prompt"] = f.text("prompt").value_or("");
  params["negative_prompt"] = f.text("negative_prompt").value_or("");
  // A1111 draws a random seed for -1.
  const json* seed = f.get("seed");
  if (!(seed && seed->is_number_integer() && seed->get<int64_t>() == -1))
    if (auto s = f.seed("seed", "-1 (random) or ")) params["seed"] = *s;
  if (auto v = f.integer("steps", 1, kMaxSteps)) params["steps"] = *v;
  if (auto v = f.number("cfg_scale", 0, kMaxGuidance)) params["guidance"] = *v;
  params["width"] = parse_side(f, "width", env.max_output_side);
  params["height"] = parse_side(f, "height", env.max_output_side);

  // sampler_index is the name field of A1111's first API versions; sampler_name wins when both are sent.
  std::string sampler_field = f.get("sampler_name") ? "sampler_name" : "sampler_index";
  std::string sampler = f.text(sampler_field).value_or("");
  params["sampler"] = sampler_from_request(sampler, f.text("scheduler").value_or(""), sampler_field);

  int64_t batch = f.integer("batch_size", 1, env.max_images).value_or(1);
  int64_t iterations = f.integer("n_iter", 1, env.max_images).value_or(1);
  if (batch * iterations > env.max_images)
    throw invalid_param("batch_size", "batch_size * n_iter must be at most " + std::to_string(env.max_images) +
                                          ", got " + std::to_string(batch * iterations));
  params["count"] = batch * iterations;
  params["noise"] = f.choice("noise", {"cpu", "a1111"}, "a1111");  // A1111's GPU noise: same seed, same image
  if (auto v = f.integer("clip_skip", 1, kMaxClipSkip)) params["clip_skip"] = *v;

  std::string checkpoint = default_checkpoint;
  if (const json* o = f.get("override_settings")) {
    if (!o->is_object())
      throw invalid_param("override_settings", "override_settings must be an object, got " + shown(*o), "invalid_type");
    Fields overrides(*o, false);
    if (auto m = overrides.text("sd_model_checkpoint")) checkpoint = *m;
    if (auto v = overrides.integer("CLIP_stop_at_last_layers", 1, kMaxClipSkip)) params["clip_skip"] = *v;
  }
  std::string model = env.pick_model(checkpoint, "override_settings.sd_model_checkpoint");

  json echo = body;
  if (img2img) {
    const json* init = f.get("init_images");
    if (!init || !init->is_array() || init->empty())
      throw invalid_param("init_images", "init_images is required: an array with one base64-encoded image",
                          "missing_required_parameter");
    auto inputs = image_inputs_from_json(*init, "init_images", env.image_limits.max_bytes);
    std::optional<ImageInput> mask_input;
    if (const json* m = f.get("mask")) {
      if (!m->is_string()) throw invalid_param("mask", "mask must be a base64-encoded image", "invalid_type");
      mask_input = image_inputs_from_json(*m, "mask", env.image_limits.max_bytes).front();
    }
    const bool invert = f.boolean("inpainting_mask_invert").value_or(false);
    params["strength"] = f.number("denoising_strength", 0, 1).value_or(kA1111DenoisingStrength);

    Image init_image = decode_input(inputs[0], env);
    std::optional<Image> mask_image;
    if (mask_input) mask_image = decode_input(*mask_input, env);
    params["init_image"] = store_input(inputs[0], init_image, env);
    if (mask_image) {
      if (invert) {
        // Store the inverted mask so the job itself stays "white = repaint".
        Image inverted(mask_image->width, mask_image->height, 3);
        for (int y = 0; y < inverted.height; ++y)
          for (int x = 0; x < inverted.width; ++x) {
            const uint8_t* p = mask_image->at(x, y);
            int lum = mask_image->channels >= 3 ? (p[0] * 299 + p[1] * 587 + p[2] * 114) / 1000 : p[0];
            uint8_t* q = inverted.at(x, y);
            q[0] = q[1] = q[2] = uint8_t(255 - lum);
          }
        params["mask"] = env.store_image(encode_png(inverted), inverted);
      } else {
        params["mask"] = store_input(*mask_input, *mask_image, env);
      }
      params["mask_convention"] = "white";  // A1111: white = repaint
    }
    echo["init_images"] = nullptr;
    if (echo.contains("mask")) echo["mask"] = nullptr;
  }
  json tags{{"a1111_request", std::move(echo)}, {"batch_size", batch}, {"n_iter", iterations}};
  return make_spec(img2img ? "sdapi.img2img" : "sdapi.txt2img", model, std::move(params), std::move(tags), caller);
}

json a1111_response(const storage::JobRecord& job, const ImageResponseEnv& env) {
  json images = json::array();
  for (const auto& image : job.result.value("images", json::array()))
    images.push_back(base64_encode(env.read_image(job_image(image, env))));

  const json infotexts = job.result.value("parameters", json::array());
  GenerationParams used = parse_a1111(infotexts.empty() ? "" : infotexts[0].get<std::string>());
  const std::vector<uint64_t> seeds = result_seeds(job.result);
  const size_t n = seeds.size();
  const std::string prompt = job.params.value("prompt", "");
  const std::string negative = job.params.value("negative_prompt", "");
  const json first = job.result.value("images", json::array()).empty() ? json::object() : job.result["images"][0];

  json info;
  info["prompt"] = prompt;
  info["all_prompts"] = std::vector<std::string>(n, prompt);
  info["negative_prompt"] = negative;
  info["all_negative_prompts"] = std::vector<std::string>(n, negative);
  info["seed"] = n ? seeds[0] : 0;
  info["all_seeds"] = seeds;
  info["width"] = first.value("width", 0);
  info["height"] = first.value("height", 0);
  info["sampler_name"] = used.sampler;
  info["cfg_scale"] = used.cfg_scale;
  info["steps"] = used.steps;
  info["batch_size"] = job.tags.value("batch_size", int64_t(n));
  info["n_iter"] = job.tags.value("n_iter", 1);
  info["sd_model_name"] = job.result.value("model", job.model);
  info["denoising_strength"] = used.denoising_strength ? json(*used.denoising_strength) : json(nullptr);
  auto clip = used.extra.find("Clip skip");
  info["clip_skip"] = clip == used.extra.end() ? 1 : std::stoi(clip->second);
  info["restore_faces"] = false;
  info["styles"] = json::array();
  info["extra_generation_params"] = json::object();
  info["index_of_first_image"] = 0;
  info["infotexts"] = infotexts;
  info["job_timestamp"] = timestamp_text(job.result.value("created", job.finished));
  info["is_using_inpainting_conditioning"] = job.params.contains("mask");
  info["version"] = "pictor";

  json out;
  out["images"] = std::move(images);
  out["parameters"] = job.tags.value("a1111_request", json::object());
  out["info"] = info.dump();
  return out;
}

json a1111_progress(const std::optional<jobs::JobStatus>& status, const std::string& preview_b64) {
  const std::string state = status ? status->record.state : "";
  const bool active = state == "queued" || state == "running";
  const int total = active ? status->total : 0;
  const int step = active ? std::min(status->step, total) : 0;
  json s;
  s["skipped"] = false;
  s["interrupted"] = state == "cancelled";
  s["stopping_generation"] = false;
  s["job"] = active ? status->record.id : "";
  s["job_count"] = active ? 1 : 0;
  s["job_timestamp"] = status ? timestamp_text(status->record.created) : "0";
  s["job_no"] = 0;
  s["sampling_step"] = step;
  s["sampling_steps"] = total;
  json out;
  out["progress"] = total > 0 ? double(step) / total : 0.0;
  out["eta_relative"] = active ? status->eta_s : 0.0;
  out["state"] = std::move(s);
  out["current_image"] = active && !preview_b64.empty() ? json(preview_b64) : json(nullptr);
  out["textinfo"] = state == "queued" ? json("Waiting...") : json(nullptr);
  out["current_task"] = active ? json(status->record.id) : json(nullptr);
  return out;
}

json a1111_samplers() {
  json out = json::array();
  for (const auto& name : scheduler_names())
    out.push_back(
        {{"name", a1111_sampler_display(name)}, {"aliases", sampler_aliases_of(name)}, {"options", json::object()}});
  return out;
}

json a1111_schedulers() {
  return json::array({
      {{"name", "automatic"},
       {"label", "Automatic"},
       {"aliases", nullptr},
       {"default_rho", -1},
       {"need_inner_model", false}},
      {{"name", "karras"},
       {"label", "Karras"},
       {"aliases", nullptr},
       {"default_rho", 7.0},
       {"need_inner_model", false}},
  });
}

json a1111_sd_models(const std::vector<jobs::ModelInfo>& models) {
  json out = json::array();
  for (const auto& m : models) {
    if (m.kind != jobs::ModelKind::TextToImage) continue;
    out.push_back({{"title", m.id},
                   {"model_name", m.id},
                   {"hash", nullptr},
                   {"sha256", nullptr},
                   {"filename", m.dir.string()},
                   {"config", nullptr}});
  }
  return out;
}

}  // namespace pictor::serve
