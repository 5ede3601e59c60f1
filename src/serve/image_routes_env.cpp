#include "serve/image_routes_env.hpp"

#include <httplib.h>

#include "storage/ids.hpp"

namespace pictor::serve {

ImageRequestEnv image_request_env(ServerContext& ctx) {
  ImageRequestEnv env;
  env.max_images = ctx.options.max_images_per_request;
  env.max_output_side = ctx.options.max_output_side;
  env.image_limits = ImageLimits{ctx.options.max_image_bytes, ctx.options.max_image_pixels};
  env.previews = true;  // the generate job shows previews only when the server has a TAESD decoder
  env.pick_model = [&ctx](const std::string& name, const std::string& param) {
    // OpenAI clients often hard-code their own model names: those mean "the default model" here unless a
    // local model happens to carry the name.
    if (is_openai_image_model_name(name) && !ctx.models.find(name))
      return ctx.pick_model("", jobs::ModelKind::TextToImage, param).id;
    return ctx.pick_model(name, jobs::ModelKind::TextToImage, param).id;
  };
  env.store_image = [&ctx](const std::vector<uint8_t>& encoded, const Image& decoded) {
    return ctx.images.put(encoded, decoded.width, decoded.height, {{"source", "upload"}}).id;
  };
  env.load_image = [&ctx](const std::string& id) -> std::optional<Image> {
    if (!storage::is_valid_id(id, "img")) return std::nullopt;
    auto stored = ctx.images.get(id);
    if (!stored) return std::nullopt;
    return ctx.images.decode(*stored);
  };
  return env;
}

ImageResponseEnv image_response_env(ServerContext& ctx, const std::string& base_url) {
  ImageResponseEnv env;
  env.base_url = base_url;
  env.get_image = [&ctx](const std::string& id) { return ctx.images.get(id); };
  env.read_image = [&ctx](const storage::StoredImage& image) { return ctx.images.read(image); };
  env.image_path = [](const storage::StoredImage& image) { return ServerContext::image_path(image); };
  return env;
}

std::string request_base_url(const httplib::Request& req) {
  const std::string host = req.get_header_value("Host");
  // Only host[:port] characters: the header is echoed into URLs.
  if (host.empty() || host.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-:[]") !=
                          std::string::npos)
    return "";
  const std::string scheme = req.get_header_value("X-Forwarded-Proto") == "https" ? "https" : "http";
  return scheme + "://" + host;
}

}  // namespace pictor::serve
