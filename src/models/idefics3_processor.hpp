#pragma once
// Idefics3 / SmolVLM input processing as transformers' Idefics3ImageProcessor and Idefics3Processor
// (v4.46): images are resized on 8-bit pixels with PIL's filters (longest edge to `size.longest_edge`,
// then up to multiples of `max_image_size`), cut into max_image_size tiles row-major plus a global
// max_image_size view of the whole image (last), rescaled/normalized and padded into a batch tensor
// with a pixel mask; each `<image>` in the prompt becomes the matching run of special tokens
// (`<fake_token_around_image>`, `<row_r_col_c>`, `<global-img>` and image_seq_len `<image>` per frame).
#include <ATen/core/Tensor.h>

#include <array>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "core/json_file.hpp"
#include "formats/image.hpp"

namespace pictor::models {

struct Idefics3ProcessorConfig {
  // Defaults are transformers' Idefics3ImageProcessor / Idefics3Processor defaults.
  bool do_convert_rgb = true;
  bool do_resize = true;
  int64_t longest_edge = 4 * 364;  // size.longest_edge
  ResizeFilter resample = ResizeFilter::Lanczos;
  bool do_image_splitting = true;
  int64_t max_image_size = 364;  // max_image_size.longest_edge: tile and global-view side
  bool do_rescale = true;
  double rescale_factor = 1.0 / 255.0;
  bool do_normalize = true;
  std::array<float, 3> image_mean{0.5f, 0.5f, 0.5f};
  std::array<float, 3> image_std{0.5f, 0.5f, 0.5f};
  bool do_pad = true;
  int64_t image_seq_len = 169;  // `<image>` tokens per frame (processor_config.json)

  // preprocessor_config.json and, when present, processor_config.json (image_seq_len) of a model folder.
  // Unsupported values (a resample filter without a port, do_pad false) throw naming file and field.
  static Idefics3ProcessorConfig load(const std::filesystem::path& dir);
  static Idefics3ProcessorConfig from_json(const JsonConfig& preprocessor, const JsonConfig* processor = nullptr);
};

// How one image was cut: rows x cols tiles (0 x 0 when not split) followed by the global view.
struct Idefics3ImageGrid {
  int64_t rows = 0;
  int64_t cols = 0;
  int64_t num_frames() const { return rows * cols + 1; }
};

// The 8-bit frames of one image, in model order, and its grid.
struct Idefics3ImageFrames {
  std::vector<Image> frames;
  Idefics3ImageGrid grid;
};

struct Idefics3Batch {
  at::Tensor pixel_values;                            // [B, max_frames, 3, H, W] float32; padding frames are all 0.0
  at::Tensor pixel_attention_mask;                    // [B, max_frames, H, W] int64, 1 = real pixel
  std::vector<std::vector<Idefics3ImageGrid>> grids;  // per sample, per image
};

class Idefics3Processor {
 public:
  explicit Idefics3Processor(Idefics3ProcessorConfig config);
  static Idefics3Processor load(const std::filesystem::path& dir) {
    return Idefics3Processor(Idefics3ProcessorConfig::load(dir));
  }

  // Output size (width, height) of the first resize: longest edge to `longest_edge`, aspect kept, the
  // other side truncated and rounded up to even (transformers' _resize_output_size_rescale_to_max_len,
  // then capped at 4096).
  std::pair<int, int> resized_size(int width, int height) const;
  // Output size (width, height) before splitting: each side rounded up to a multiple of max_image_size
  // (the second side derived from the aspect ratio first, as resize_for_vision_encoder).
  std::pair<int, int> vision_encoder_size(int width, int height) const;

  // One image (RGB, RGBA, ...) to its 8-bit frames. `do_image_splitting` overrides the config's.
  Idefics3ImageFrames split_image(const Image& image, std::optional<bool> do_image_splitting = std::nullopt) const;
  // images[sample][image] -> pixel tensors (frames padded to the largest, samples to the most frames).
  Idefics3Batch preprocess(const std::vector<std::vector<Image>>& images,
                           std::optional<bool> do_image_splitting = std::nullopt) const;
  // [3, H, W] float32 of one 8-bit frame: rescale then normalize in float32 as transformers does.
  at::Tensor frame_to_tensor(const Image& frame) const;

  // Replaces the i-th `<image>` of `prompt` by the token string for grids[i]. Throws Error when the
  // number of `<image>` markers differs from the number of images.
  std::string expand_prompt(const std::string& prompt, const std::vector<Idefics3ImageGrid>& grids) const;
  // The token string of one image (transformers' _prompt_split_image / _prompt_single_image).
  std::string image_prompt(const Idefics3ImageGrid& grid) const;

  const Idefics3ProcessorConfig& config() const { return config_; }

  static constexpr const char* kImageToken = "<image>";
  static constexpr const char* kFakeImageToken = "<fake_token_around_image>";
  static constexpr const char* kGlobalImageToken = "<global-img>";

 private:
  Idefics3ProcessorConfig config_;
};

// transformers' convert_to_rgb: RGB as is, RGBA alpha-composited over white with PIL's fixed-point
// arithmetic.
Image convert_to_rgb(const Image& image);

}  // namespace pictor::models
