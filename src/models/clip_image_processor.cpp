#include "models/clip_image_processor.hpp"

#include <ATen/ATen.h>

#include <algorithm>
#include <cstring>

#include "core/error.hpp"

namespace pictor::models {

namespace {

// Python's floor division, which transformers' center_crop uses (it matters for negative offsets).
int64_t floor_div(int64_t a, int64_t b) {
  return a >= 0 ? a / b : -((-a + b - 1) / b);
}

int64_t ceil_half(int64_t a) {
  return (a + 1) / 2;
}

// "size"/"crop_size" may be an int (legacy configs) or a dict.
void read_size_dict(const JsonConfig& cfg, const std::string& key, int64_t& shortest, int64_t& h, int64_t& w,
                    bool int_is_shortest_edge) {
  if (!cfg.has(key)) return;
  const json& v = cfg.raw().at(key);
  auto positive = [&](const json& x, const std::string& what) {
    if (!x.is_number_integer() || x.get<int64_t>() <= 0) cfg.fail(key, what + " must be a positive integer");
    return x.get<int64_t>();
  };
  if (v.is_number()) {
    const int64_t n = positive(v, "the size");
    if (int_is_shortest_edge) {
      shortest = n;
    } else {
      shortest = 0;
      h = w = n;
    }
    return;
  }
  if (!v.is_object()) cfg.fail(key, "must be an integer or an object");
  if (v.contains("shortest_edge")) {
    if (v.contains("longest_edge")) throw Unsupported(cfg.source() + ": field '" + key + "': longest_edge");
    shortest = positive(v["shortest_edge"], "shortest_edge");
    return;
  }
  if (v.contains("height") && v.contains("width")) {
    shortest = 0;
    h = positive(v["height"], "height");
    w = positive(v["width"], "width");
    return;
  }
  cfg.fail(key, "needs shortest_edge, or height and width, got " + v.dump());
}

std::array<float, 3> triple(const JsonConfig& cfg, const std::string& key, std::array<float, 3> fallback) {
  if (!cfg.has(key)) return fallback;
  const json& v = cfg.raw().at(key);
  if (v.is_number()) {
    const auto f = v.get<float>();
    return {f, f, f};
  }
  const auto list = cfg.get<std::vector<float>>(key);
  if (list.size() != 3) cfg.fail(key, "must have 3 values (RGB), got " + std::to_string(list.size()));
  return {list[0], list[1], list[2]};
}

Image to_rgb(const Image& image) {
  if (image.channels == 3) return image;
  if (image.channels != 4)
    throw Error("CLIP image processor: unsupported channel count " + std::to_string(image.channels));
  // PIL's convert("RGB") drops alpha without compositing.
  Image rgb(image.width, image.height, 3);
  const size_t n = size_t(image.width) * size_t(image.height);
  for (size_t i = 0; i < n; ++i) std::memcpy(&rgb.pixels[i * 3], &image.pixels[i * 4], 3);
  return rgb;
}

// transformers' center_crop: offsets (size - crop) // 2; an image smaller than the crop is zero-padded
// around its center first.
Image center_crop(const Image& image, int64_t crop_h, int64_t crop_w) {
  const int64_t H = image.height, W = image.width;
  int64_t top = floor_div(H - crop_h, 2), left = floor_div(W - crop_w, 2);
  const int64_t pad_top = H < crop_h ? ceil_half(crop_h - H) : 0;
  const int64_t pad_left = W < crop_w ? ceil_half(crop_w - W) : 0;
  top += pad_top;
  left += pad_left;
  Image out(int(crop_w), int(crop_h), image.channels);  // zero-filled: the padding
  for (int64_t y = 0; y < crop_h; ++y) {
    const int64_t sy = y + top - pad_top;  // row in the unpadded image
    if (sy < 0 || sy >= H) continue;
    for (int64_t x = 0; x < crop_w; ++x) {
      const int64_t sx = x + left - pad_left;
      if (sx < 0 || sx >= W) continue;
      std::memcpy(out.at(int(x), int(y)), image.at(int(sx), int(sy)), size_t(image.channels));
    }
  }
  return out;
}

}  // namespace

std::array<int64_t, 2> shortest_edge_size(int64_t height, int64_t width, int64_t shortest_edge) {
  const bool portrait = width <= height;
  const int64_t shortest = portrait ? width : height, longest = portrait ? height : width;
  // int(size * long / short) in Python: a float division truncated toward zero.
  const auto new_long = int64_t(double(shortest_edge) * double(longest) / double(shortest));
  return portrait ? std::array<int64_t, 2>{new_long, shortest_edge} : std::array<int64_t, 2>{shortest_edge, new_long};
}

ClipImageProcessorConfig ClipImageProcessorConfig::from_json(const JsonConfig& cfg) {
  const std::string& src = cfg.source();
  if (cfg.has("image_processor_type")) {
    const auto type = cfg.get<std::string>("image_processor_type");
    if (type != "CLIPImageProcessor" && type != "CLIPImageProcessorFast")
      throw Unsupported(src + ": field 'image_processor_type': '" + type + "' (expected CLIPImageProcessor)");
  }
  ClipImageProcessorConfig c;
  c.do_convert_rgb = cfg.get<bool>("do_convert_rgb", c.do_convert_rgb);
  c.do_resize = cfg.get<bool>("do_resize", c.do_resize);
  read_size_dict(cfg, "size", c.shortest_edge, c.resize_height, c.resize_width, /*int_is_shortest_edge=*/true);
  const int64_t resample = cfg.get<int64_t>("resample", 3);
  switch (resample) {
    case 1: c.resample = ResizeFilter::Lanczos; break;
    case 2: c.resample = ResizeFilter::Bilinear; break;
    case 3: c.resample = ResizeFilter::Bicubic; break;
    default:
      throw Unsupported(src + ": field 'resample': PIL filter " + std::to_string(resample) +
                        " (only 1 LANCZOS, 2 BILINEAR and 3 BICUBIC are implemented)");
  }
  c.do_center_crop = cfg.get<bool>("do_center_crop", c.do_center_crop);
  int64_t unused_shortest = 0;
  read_size_dict(cfg, "crop_size", unused_shortest, c.crop_height, c.crop_width, /*int_is_shortest_edge=*/false);
  if (unused_shortest > 0) cfg.fail("crop_size", "must give height and width");
  c.do_rescale = cfg.get<bool>("do_rescale", c.do_rescale);
  c.rescale_factor = cfg.get<double>("rescale_factor", c.rescale_factor);
  c.do_normalize = cfg.get<bool>("do_normalize", c.do_normalize);
  c.image_mean = triple(cfg, "image_mean", c.image_mean);
  c.image_std = triple(cfg, "image_std", c.image_std);
  for (float s : c.image_std)
    if (!(s > 0)) cfg.fail("image_std", "must be positive");
  return c;
}

ClipImageProcessor::ClipImageProcessor(ClipImageProcessorConfig cfg) : config_(cfg) {}

ClipImageProcessor ClipImageProcessor::load(const std::filesystem::path& dir) {
  return ClipImageProcessor(ClipImageProcessorConfig::from_json(JsonConfig::load(dir / "preprocessor_config.json")));
}

Image ClipImageProcessor::resize_and_crop(const Image& input) const {
  if (input.width <= 0 || input.height <= 0) throw Error("CLIP image processor: empty image");
  // Without do_convert_rgb an RGBA image would keep 4 channels, which the model cannot take.
  Image image = to_rgb(input);
  if (config_.do_resize) {
    const auto [h, w] = config_.shortest_edge > 0 ? shortest_edge_size(image.height, image.width, config_.shortest_edge)
                                                  : std::array<int64_t, 2>{config_.resize_height, config_.resize_width};
    if (h < 1 || w < 1)
      throw Error("CLIP image processor: a " + std::to_string(image.width) + "x" + std::to_string(image.height) +
                  " image is too elongated to resize (one side would be 0 pixels)");
    image = resize_image(image, int(w), int(h), config_.resample);
  }
  if (config_.do_center_crop) image = center_crop(image, config_.crop_height, config_.crop_width);
  return image;
}

at::Tensor ClipImageProcessor::preprocess(const Image& image) const {
  const Image rgb = resize_and_crop(image);
  at::Tensor u8 = at::from_blob(const_cast<uint8_t*>(rgb.pixels.data()), {rgb.height, rgb.width, 3}, at::kByte)
                      .permute({2, 0, 1})
                      .unsqueeze(0);
  // Same arithmetic as transformers: rescale in float64 then cast to float32, normalise in float32.
  at::Tensor x = config_.do_rescale ? (u8.to(at::kDouble) * config_.rescale_factor).to(at::kFloat) : u8.to(at::kFloat);
  if (config_.do_normalize) {
    const at::Tensor mean = at::tensor(std::vector<float>(config_.image_mean.begin(), config_.image_mean.end()));
    const at::Tensor std = at::tensor(std::vector<float>(config_.image_std.begin(), config_.image_std.end()));
    x = (x - mean.view({1, 3, 1, 1})) / std.view({1, 3, 1, 1});
  }
  return x.contiguous();
}

at::Tensor ClipImageProcessor::preprocess(const std::vector<Image>& images) const {
  if (images.empty()) throw Error("CLIP image processor: no images");
  std::vector<at::Tensor> batch;
  batch.reserve(images.size());
  for (const auto& image : images) {
    batch.push_back(preprocess(image));
    if (batch.back().sizes() != batch.front().sizes())
      throw Error("CLIP image processor: images come out at different sizes (" + c10::str(batch.front().sizes()) +
                  " and " + c10::str(batch.back().sizes()) + "); enable center crop to batch them");
  }
  return at::cat(batch, 0);
}

}  // namespace pictor::models
