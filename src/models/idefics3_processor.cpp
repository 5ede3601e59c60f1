#include "models/idefics3_processor.hpp"

#include <ATen/ATen.h>

#include <algorithm>
#include <cstring>

#include "core/error.hpp"

namespace fs = std::filesystem;

namespace pictor::models {
namespace {

// transformers' MAX_IMAGE_SIZE: no side grows beyond this in the first resize.
constexpr int64_t kMaxImageSide = 4096;

int64_t longest_edge_field(const JsonConfig& cfg, const std::string& key, int64_t fallback) {
  if (!cfg.has(key)) return fallback;
  const json& v = cfg.raw().at(key);
  if (!v.is_object() || !v.contains("longest_edge") || !v.at("longest_edge").is_number_integer())
    cfg.fail(key, "expected an object with an integer 'longest_edge'");
  const int64_t n = v.at("longest_edge").get<int64_t>();
  if (n <= 0) cfg.fail(key, "longest_edge must be positive, got " + std::to_string(n));
  return n;
}

std::array<float, 3> three_floats(const JsonConfig& cfg, const std::string& key, std::array<float, 3> fallback) {
  if (!cfg.has(key)) return fallback;
  const json& v = cfg.raw().at(key);
  if (v.is_number()) return {v.get<float>(), v.get<float>(), v.get<float>()};
  if (!v.is_array() || v.size() != 3 || !std::all_of(v.begin(), v.end(), [](const json& e) { return e.is_number(); }))
    cfg.fail(key, "expected 3 numbers");
  return {v[0].get<float>(), v[1].get<float>(), v[2].get<float>()};
}

int64_t ceil_div(int64_t a, int64_t b) {
  return (a + b - 1) / b;
}

// Copies the rectangle [x0, x0 + w) x [y0, y0 + h) of `image`.
Image crop(const Image& image, int x0, int y0, int w, int h) {
  Image out(w, h, image.channels);
  for (int y = 0; y < h; ++y) std::memcpy(out.at(0, y), image.at(x0, y0 + y), out.row_bytes());
  return out;
}

// PIL's SHIFTFORDIV255: a / 255 for a < 65536 * 255, rounded as PIL does after adding 0x80.
uint32_t shift_for_div255(uint32_t a) {
  return ((a >> 8) + a) >> 8;
}

}  // namespace

Idefics3ProcessorConfig Idefics3ProcessorConfig::from_json(const JsonConfig& pre, const JsonConfig* processor) {
  Idefics3ProcessorConfig c;
  if (pre.has("image_processor_type") && pre.get<std::string>("image_processor_type") != "Idefics3ImageProcessor")
    throw Unsupported(pre.source() + ": field 'image_processor_type': '" +
                      pre.get<std::string>("image_processor_type") + "' (expected 'Idefics3ImageProcessor')");
  c.do_convert_rgb = pre.get<bool>("do_convert_rgb", c.do_convert_rgb);
  c.do_resize = pre.get<bool>("do_resize", c.do_resize);
  c.longest_edge = longest_edge_field(pre, "size", c.longest_edge);
  c.max_image_size = longest_edge_field(pre, "max_image_size", c.max_image_size);
  if (pre.has("resample")) {
    // PIL's Resampling codes; the ones with an exact port here.
    switch (pre.get<int64_t>("resample")) {
      case 1: c.resample = ResizeFilter::Lanczos; break;
      case 2: c.resample = ResizeFilter::Bilinear; break;
      case 3: c.resample = ResizeFilter::Bicubic; break;
      default:
        throw Unsupported(pre.source() + ": field 'resample': " + std::to_string(pre.get<int64_t>("resample")) +
                          " (implemented: 1 LANCZOS, 2 BILINEAR, 3 BICUBIC)");
    }
  }
  c.do_image_splitting = pre.get<bool>("do_image_splitting", c.do_image_splitting);
  c.do_rescale = pre.get<bool>("do_rescale", c.do_rescale);
  c.rescale_factor = pre.get<double>("rescale_factor", c.rescale_factor);
  c.do_normalize = pre.get<bool>("do_normalize", c.do_normalize);
  c.image_mean = three_floats(pre, "image_mean", c.image_mean);
  c.image_std = three_floats(pre, "image_std", c.image_std);
  for (float s : c.image_std)
    if (s == 0.0f) pre.fail("image_std", "must not contain 0");
  c.do_pad = pre.get<bool>("do_pad", c.do_pad);
  if (!c.do_pad) throw Unsupported(pre.source() + ": field 'do_pad': false (frames are always padded into a batch)");
  // image_seq_len lives in processor_config.json (older folders keep it in preprocessor_config.json).
  c.image_seq_len = pre.get<int64_t>("image_seq_len", c.image_seq_len);
  if (processor) c.image_seq_len = processor->get<int64_t>("image_seq_len", c.image_seq_len);
  if (c.image_seq_len <= 0)
    throw Error((processor ? processor->source() : pre.source()) + ": field 'image_seq_len': must be positive");
  return c;
}

Idefics3ProcessorConfig Idefics3ProcessorConfig::load(const fs::path& dir) {
  const JsonConfig pre = JsonConfig::load(dir / "preprocessor_config.json");
  if (fs::exists(dir / "processor_config.json")) {
    const JsonConfig proc = JsonConfig::load(dir / "processor_config.json");
    return from_json(pre, &proc);
  }
  return from_json(pre, nullptr);
}

Idefics3Processor::Idefics3Processor(Idefics3ProcessorConfig config) : config_(std::move(config)) {}

std::pair<int, int> Idefics3Processor::resized_size(int width, int height) const {
  if (width <= 0 || height <= 0) throw Error("Idefics3 processor: empty image");
  // Python float arithmetic and int() truncation, as transformers.
  const int64_t max_len = config_.longest_edge;
  int64_t w = width, h = height;
  double aspect = double(w) / double(h);
  if (w >= h) {
    w = max_len;
    h = int64_t(double(w) / aspect);
    if (h % 2 != 0) ++h;
  } else {
    h = max_len;
    w = int64_t(double(h) * aspect);
    if (w % 2 != 0) ++w;
  }
  h = std::max<int64_t>(h, 1);
  w = std::max<int64_t>(w, 1);
  aspect = double(w) / double(h);
  if (w >= h && w > kMaxImageSide) {
    w = kMaxImageSide;
    h = int64_t(double(w) / aspect);
  } else if (h > w && h > kMaxImageSide) {
    h = kMaxImageSide;
    w = int64_t(double(h) * aspect);
  }
  return {int(std::max<int64_t>(w, 1)), int(std::max<int64_t>(h, 1))};
}

std::pair<int, int> Idefics3Processor::vision_encoder_size(int width, int height) const {
  const int64_t m = config_.max_image_size;
  int64_t w = width, h = height;
  const double aspect = double(w) / double(h);
  if (w >= h) {
    w = ceil_div(w, m) * m;
    h = ceil_div(std::max<int64_t>(int64_t(double(w) / aspect), 1), m) * m;
  } else {
    h = ceil_div(h, m) * m;
    w = ceil_div(std::max<int64_t>(int64_t(double(h) * aspect), 1), m) * m;
  }
  if (w > (1 << 16) || h > (1 << 16))
    throw Error("Idefics3 processor: image of " + std::to_string(width) + "x" + std::to_string(height) +
                " would be split at " + std::to_string(w) + "x" + std::to_string(h) + " (limit 65536 per side)");
  return {int(w), int(h)};
}

Image convert_to_rgb(const Image& image) {
  if (image.channels == 3) return image;
  if (image.channels != 4)
    throw Error("Idefics3 processor: images must be RGB or RGBA, got " + std::to_string(image.channels) + " channels");
  // PIL: Image.alpha_composite(white RGBA background, image).convert("RGB"), in its fixed point
  // (AlphaComposite.c, PRECISION_BITS 7) specialised to an opaque white destination.
  constexpr uint32_t kPrecisionBits = 7;
  Image out(image.width, image.height, 3);
  for (int y = 0; y < image.height; ++y) {
    for (int x = 0; x < image.width; ++x) {
      const uint8_t* s = image.at(x, y);
      uint8_t* d = out.at(x, y);
      const uint32_t a = s[3];
      if (a == 0) {
        d[0] = d[1] = d[2] = 255;
        continue;
      }
      const uint32_t blend = 255 * (255 - a);
      const uint32_t outa255 = a * 255 + blend;
      const uint32_t coef1 = a * 255 * 255 * (1u << kPrecisionBits) / outa255;
      const uint32_t coef2 = 255 * (1u << kPrecisionBits) - coef1;
      for (int c = 0; c < 3; ++c) {
        const uint32_t tmp = s[c] * coef1 + 255 * coef2;
        d[c] = uint8_t(shift_for_div255(tmp + (0x80u << kPrecisionBits)) >> kPrecisionBits);
      }
    }
  }
  return out;
}

Idefics3ImageFrames Idefics3Processor::split_image(const Image& input, std::optional<bool> do_image_splitting) const {
  if (input.width <= 0 || input.height <= 0) throw Error("Idefics3 processor: empty image");
  const ResizeFilter filter = config_.resample;
  auto resize_to = [&](const Image& im, int w, int h) {
    return im.width == w && im.height == h ? im : resize_image(im, w, h, filter);
  };
  Image image = config_.do_convert_rgb ? convert_to_rgb(input) : input;
  if (config_.do_resize) {
    const auto [w, h] = resized_size(image.width, image.height);
    image = resize_to(image, w, h);
  }
  const int m = int(config_.max_image_size);
  Idefics3ImageFrames out;
  if (!do_image_splitting.value_or(config_.do_image_splitting)) {
    out.frames.push_back(resize_to(image, m, m));
    return out;
  }
  const auto [w, h] = vision_encoder_size(image.width, image.height);
  image = resize_to(image, w, h);
  if (h > m || w > m) {
    // Tiles row-major, then the global view (transformers' split_image).
    out.grid.rows = ceil_div(h, m);
    out.grid.cols = ceil_div(w, m);
    const int tile_h = int(ceil_div(h, out.grid.rows)), tile_w = int(ceil_div(w, out.grid.cols));
    for (int r = 0; r < out.grid.rows; ++r) {
      for (int c = 0; c < out.grid.cols; ++c) {
        const int x0 = c * tile_w, y0 = r * tile_h;
        out.frames.push_back(crop(image, x0, y0, std::min(tile_w, w - x0), std::min(tile_h, h - y0)));
      }
    }
    out.frames.push_back(resize_to(image, m, m));
  } else {
    out.frames.push_back(image);
  }
  return out;
}

at::Tensor Idefics3Processor::frame_to_tensor(const Image& frame) const {
  const int64_t H = frame.height, W = frame.width;
  at::Tensor t = at::empty({3, H, W}, at::kFloat);
  float* p = t.data_ptr<float>();
  for (int c = 0; c < 3; ++c) {
    for (int64_t y = 0; y < H; ++y) {
      for (int64_t x = 0; x < W; ++x) {
        const uint8_t u = frame.at(int(x), int(y))[c];
        // numpy: rescale multiplies in float64 and casts to float32; normalize works in float32.
        float v = config_.do_rescale ? float(double(u) * config_.rescale_factor) : float(u);
        if (config_.do_normalize) v = (v - config_.image_mean[size_t(c)]) / config_.image_std[size_t(c)];
        p[(c * H + y) * W + x] = v;
      }
    }
  }
  return t;
}

Idefics3Batch Idefics3Processor::preprocess(const std::vector<std::vector<Image>>& images,
                                            std::optional<bool> do_image_splitting) const {
  Idefics3Batch batch;
  std::vector<std::vector<Image>> frames(images.size());
  int64_t max_frames = 0, max_h = 0, max_w = 0;
  for (size_t b = 0; b < images.size(); ++b) {
    batch.grids.emplace_back();
    for (const Image& image : images[b]) {
      Idefics3ImageFrames f = split_image(image, do_image_splitting);
      batch.grids.back().push_back(f.grid);
      for (Image& frame : f.frames) {
        max_h = std::max<int64_t>(max_h, frame.height);
        max_w = std::max<int64_t>(max_w, frame.width);
        frames[b].push_back(std::move(frame));
      }
    }
    max_frames = std::max<int64_t>(max_frames, int64_t(frames[b].size()));
  }
  if (max_frames == 0) return batch;
  // Frames are padded bottom/right with 0.0 to the largest frame; missing frames are all 0.0 with an
  // all-zero mask (the model drops them).
  const int64_t B = int64_t(images.size());
  batch.pixel_values = at::zeros({B, max_frames, 3, max_h, max_w}, at::kFloat);
  batch.pixel_attention_mask = at::zeros({B, max_frames, max_h, max_w}, at::kLong);
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t f = 0; f < int64_t(frames[size_t(b)].size()); ++f) {
      const Image& frame = frames[size_t(b)][size_t(f)];
      const int64_t h = frame.height, w = frame.width;
      batch.pixel_values[b][f].narrow(1, 0, h).narrow(2, 0, w).copy_(frame_to_tensor(frame));
      batch.pixel_attention_mask[b][f].narrow(0, 0, h).narrow(1, 0, w).fill_(1);
    }
  }
  return batch;
}

std::string Idefics3Processor::image_prompt(const Idefics3ImageGrid& grid) const {
  std::string image_tokens;
  for (int64_t i = 0; i < config_.image_seq_len; ++i) image_tokens += kImageToken;
  const std::string fake = kFakeImageToken;
  const std::string global = fake + kGlobalImageToken + image_tokens + fake;
  if (grid.rows == 0 && grid.cols == 0) return global;
  std::string s;
  for (int64_t r = 0; r < grid.rows; ++r) {
    for (int64_t c = 0; c < grid.cols; ++c)
      s += fake + "<row_" + std::to_string(r + 1) + "_col_" + std::to_string(c + 1) + ">" + image_tokens;
    s += "\n";
  }
  return s + "\n" + global;
}

std::string Idefics3Processor::expand_prompt(const std::string& prompt,
                                             const std::vector<Idefics3ImageGrid>& grids) const {
  const std::string marker = kImageToken;
  std::string out;
  size_t pos = 0, n = 0;
  for (size_t hit; (hit = prompt.find(marker, pos)) != std::string::npos; pos = hit + marker.size(), ++n) {
    if (n >= grids.size())
      throw Error("Idefics3 processor: the prompt has more " + marker + " markers than the " +
                  std::to_string(grids.size()) + " image(s) given");
    out += prompt.substr(pos, hit - pos) + image_prompt(grids[n]);
  }
  if (n != grids.size())
    throw Error("Idefics3 processor: the prompt has " + std::to_string(n) + " " + marker + " marker(s) but " +
                std::to_string(grids.size()) + " image(s) were given");
  return out + prompt.substr(pos);
}

}  // namespace pictor::models
