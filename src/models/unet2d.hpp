#pragma once
// diffusers UNet2DConditionModel: the Stable Diffusion noise predictor (SD 1.x / 2.x / SD-Turbo,
// reduced-block distillations, 9-channel inpainting), built from `unet/config.json` and the checkpoint's
// own tensor names (conv_in, time_embedding.linear_1, down_blocks.i.resnets.j..., mid_block,
// up_blocks.i..., conv_norm_out, conv_out).
#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include <filesystem>
#include <map>
#include <memory>
#include <string>

#include "models/unet_config.hpp"
#include "nn/param_source.hpp"

namespace pictor::models {

class UNet2DConditionModel {
 public:
  UNet2DConditionModel(const UNetConfig& config, nn::ParamSource& params);
  ~UNet2DConditionModel();
  UNet2DConditionModel(UNet2DConditionModel&&) noexcept;
  UNet2DConditionModel& operator=(UNet2DConditionModel&&) noexcept;

  // Loads a diffusers `unet` folder (config.json + diffusion_pytorch_model[.fp16].safetensors or a
  // sharded index). Every checkpoint tensor must be used: a leftover one means the config describes a
  // different model, which is reported instead of silently ignored.
  static std::unique_ptr<UNet2DConditionModel> load(const std::filesystem::path& dir, c10::Device device = c10::kCPU);

  // sample [B, in_channels, H, W]; timestep 0-dim, [1] or [B], integer or floating (fractional values are
  // fine); encoder_hidden_states [B, S, cross_attention_dim]. Returns the prediction [B, out_channels, H, W].
  // With `debug`, also stores intermediate states under the diffusers module names: "time_embedding",
  // "conv_in", "down_blocks.i" (the block's hidden state, not its skips), "mid_block", "up_blocks.i".
  at::Tensor forward(const at::Tensor& sample, const at::Tensor& timestep, const at::Tensor& encoder_hidden_states,
                     std::map<std::string, at::Tensor>* debug = nullptr) const;

  const UNetConfig& config() const { return config_; }

 private:
  struct Impl;
  UNetConfig config_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace pictor::models
