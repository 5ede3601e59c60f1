#pragma once
// transformers' CLIPImageProcessor (also LLaVA's), from a preprocessor_config.json: convert to RGB,
// resize so the shortest edge has `size.shortest_edge` pixels (PIL resampling on the 8-bit image, with
// PIL's rounding), center-crop to `crop_size`, rescale by 1/255 and normalise with the mean/std.
#include <ATen/core/Tensor.h>

#include <array>
#include <cstdint>
#include <filesystem>
#include <vector>

#include "core/json_file.hpp"
#include "formats/image.hpp"

namespace pictor::models {

struct ClipImageProcessorConfig {
  // Defaults are CLIPImageProcessor's.
  bool do_convert_rgb = true;
  bool do_resize = true;
  // Either the shortest edge (aspect ratio kept) or, when shortest_edge is 0, an exact height x width.
  int64_t shortest_edge = 224;
  int64_t resize_height = 0, resize_width = 0;
  ResizeFilter resample = ResizeFilter::Bicubic;
  bool do_center_crop = true;
  int64_t crop_height = 224, crop_width = 224;
  bool do_rescale = true;
  double rescale_factor = 1.0 / 255.0;
  bool do_normalize = true;
  std::array<float, 3> image_mean{0.48145466f, 0.4578275f, 0.40821073f};
  std::array<float, 3> image_std{0.26862954f, 0.26130258f, 0.27577711f};

  // Reads a preprocessor_config.json. PIL filters other than LANCZOS (1), BILINEAR (2) and BICUBIC (3),
  // and processors other than CLIPImageProcessor, throw Unsupported naming the file and field.
  static ClipImageProcessorConfig from_json(const JsonConfig& cfg);
};

class ClipImageProcessor {
 public:
  explicit ClipImageProcessor(ClipImageProcessorConfig cfg = {});
  // Reads DIR/preprocessor_config.json.
  static ClipImageProcessor load(const std::filesystem::path& dir);

  // The 8-bit stages (RGB conversion, resize, center crop), for inspection and tests.
  Image resize_and_crop(const Image& image) const;
  // pixel_values [1, 3, H, W] float32.
  at::Tensor preprocess(const Image& image) const;
  // pixel_values [N, 3, H, W]; every image must come out at the same size (always true with center crop).
  at::Tensor preprocess(const std::vector<Image>& images) const;
  const ClipImageProcessorConfig& config() const { return config_; }

 private:
  ClipImageProcessorConfig config_;
};

// The (height, width) transformers resizes an image of `height` x `width` to for a shortest edge of
// `shortest_edge` (get_resize_output_image_size with default_to_square=False: the long side is
// truncated, not rounded).
std::array<int64_t, 2> shortest_edge_size(int64_t height, int64_t width, int64_t shortest_edge);

}  // namespace pictor::models
