#pragma once
// Configuration of a diffusers UNet2DConditionModel (`unet/config.json`) as used by Stable Diffusion
// 1.x / 2.x, SD-Turbo, the reduced-block "small/tiny SD" distillations and 9-channel inpainting UNets.
// Per-block values that diffusers accepts either as one number or as a list are expanded here to one
// entry per down block, so the model code never has to care which form the file used.
#include <cstdint>
#include <string>
#include <vector>

#include "core/json_file.hpp"

namespace pictor::models {

struct UNetConfig {
  std::string source;  // the config file, for error messages

  int64_t in_channels = 4;  // 4, or 9 for inpainting (latent + mask + masked-image latent)
  int64_t out_channels = 4;
  int64_t sample_size = 64;  // latent side the model was trained at (informational)
  bool center_input_sample = false;

  std::vector<int64_t> block_out_channels;
  std::vector<std::string> down_block_types;  // "CrossAttnDownBlock2D" | "DownBlock2D"
  std::vector<std::string> up_block_types;    // "CrossAttnUpBlock2D" | "UpBlock2D"
  std::string mid_block_type;                 // "UNetMidBlock2DCrossAttn", or "" when null (no mid block)

  // One entry per down block (the up blocks use them reversed, the mid block uses the last one).
  std::vector<int64_t> layers_per_block;
  std::vector<int64_t> cross_attention_dim;
  // Attention heads per block. diffusers' naming quirk: for SD configs `attention_head_dim` holds the
  // number of heads (head size = channels / heads) and `num_attention_heads` is null; when
  // `num_attention_heads` is given it wins. The raw `attention_head_dim` is kept for reference.
  std::vector<int64_t> num_attention_heads;
  std::vector<int64_t> attention_head_dim;
  std::vector<int64_t> transformer_layers_per_block;
  // Transformer depth per up block; by default the reverse of transformer_layers_per_block.
  std::vector<int64_t> reverse_transformer_layers_per_block;
  std::vector<bool> only_cross_attention;  // attn1 attends to the text instead of the image

  bool use_linear_projection = false;  // proj_in/proj_out Linear (SD2) instead of 1x1 Conv2d (SD1)
  bool upcast_attention = false;       // compute is float32 already, so this changes nothing here
  int64_t norm_num_groups = 32;
  double norm_eps = 1e-5;
  std::string act_fn = "silu";
  bool flip_sin_to_cos = true;
  double freq_shift = 0;
  int64_t time_embedding_dim = 0;  // resolved: block_out_channels[0] * 4 unless given
  std::string time_embedding_type = "positional";
  std::string resnet_time_scale_shift = "default";
  double resnet_out_scale_factor = 1.0;
  double mid_block_scale_factor = 1.0;
  int64_t downsample_padding = 1;
  int64_t conv_in_kernel = 3;
  int64_t conv_out_kernel = 3;

  // Parses and validates; a value that would change the math but is not implemented (class or
  // addition embeddings, dual cross attention, scale-shift resnets, ...) throws pictor::Unsupported
  // naming the file and the field, and inconsistent values throw pictor::Error.
  static UNetConfig from_json(const JsonConfig& j);

  // Number of transformer layers in up block `i` and the heads / cross dim it uses.
  int64_t up_transformer_layers(size_t i) const;
};

}  // namespace pictor::models
