#include "models/siglip_vision.hpp"

#include <ATen/ATen.h>

#include <limits>

#include "core/error.hpp"
#include "formats/tensor_store.hpp"
#include "nn/attention.hpp"

namespace fs = std::filesystem;

namespace pictor::models {
ClipEncoderConfig SiglipVisionConfig::encoder_config() const {
  ClipEncoderConfig e;
  e.hidden_size = hidden_size;
  e.intermediate_size = intermediate_size;
  e.num_layers = num_hidden_layers;
  e.num_heads = num_attention_heads;
  e.activation = activation;
  e.layer_norm_eps = layer_norm_eps;
  return e;
}

SiglipVisionConfig SiglipVisionConfig::idefics3_defaults() {
  SiglipVisionConfig c;
  c.hidden_size = 1152;
  c.intermediate_size = 3072;
  c.num_hidden_layers = 12;
  c.num_attention_heads = 16;
  c.image_size = 224;
  c.patch_size = 32;
  c.use_head = false;
  return c;
}

SiglipVisionConfig SiglipVisionConfig::from_json(const JsonConfig& cfg) {
  // A full SiglipModel config nests the vision tower; a SiglipVisionModel config is flat.
  if (cfg.has("vision_config")) {
    if (!cfg.raw().at("vision_config").is_object()) cfg.fail("vision_config", "must be an object");
    return from_flat_json(JsonConfig(cfg.raw().at("vision_config"), cfg.source() + " (vision_config)"), {});
  }
  return from_flat_json(cfg, {});
}

SiglipVisionConfig SiglipVisionConfig::from_flat_json(const JsonConfig& cfg, const SiglipVisionConfig& defaults) {
  SiglipVisionConfig c = defaults;
  c.hidden_size = cfg.positive("hidden_size", c.hidden_size);
  c.intermediate_size = cfg.positive("intermediate_size", c.intermediate_size);
  c.num_hidden_layers = cfg.positive("num_hidden_layers", c.num_hidden_layers);
  c.num_attention_heads = cfg.positive("num_attention_heads", c.num_attention_heads);
  c.num_channels = cfg.positive("num_channels", c.num_channels);
  c.image_size = cfg.positive("image_size", c.image_size);
  c.patch_size = cfg.positive("patch_size", c.patch_size);
  c.layer_norm_eps = cfg.get<double>("layer_norm_eps", c.layer_norm_eps);
  if (!(c.layer_norm_eps > 0)) cfg.fail("layer_norm_eps", "must be positive");
  c.hidden_act = cfg.get<std::string>("hidden_act", c.hidden_act);
  c.activation = nn::parse_activation(c.hidden_act, cfg.source() + ": field 'hidden_act'");
  c.use_head = cfg.get<bool>("vision_use_head", c.use_head);
  cfg.require_divides("num_attention_heads", c.num_attention_heads, "hidden_size", c.hidden_size);
  // patch_size need not divide image_size: the strided patch convolution floors the grid and the last
  // pixels are never seen, exactly as in transformers (SmolVLM-Instruct: 384 / 14 -> 27 x 27 patches).
  if (c.patch_size > c.image_size)
    cfg.fail("patch_size", std::to_string(c.patch_size) + " is larger than image_size " + std::to_string(c.image_size));
  return c;
}

SiglipVisionModel::SiglipVisionModel(const SiglipVisionConfig& cfg, nn::ParamSource& params, const std::string& prefix)
    : config_(cfg),
      patch_embedding_(params, nn::join(prefix, "embeddings.patch_embedding"), cfg.num_channels, cfg.hidden_size,
                       cfg.patch_size, cfg.patch_size),
      position_embedding_(params, nn::join(prefix, "embeddings.position_embedding"), cfg.num_patches(),
                          cfg.hidden_size),
      encoder_(cfg.encoder_config(), params, nn::join(prefix, "encoder")),
      post_layernorm_(params, nn::join(prefix, "post_layernorm"), cfg.hidden_size, cfg.layer_norm_eps),
      has_head_(cfg.use_head) {
  if (has_head_) {
    const std::string h = nn::join(prefix, "head");
    const int64_t C = cfg.hidden_size;
    head_.probe = params.get(nn::join(h, "probe"), {1, 1, C}, nn::Init::Embedding);
    head_.in_proj_weight = params.get(nn::join(h, "attention.in_proj_weight"), {3 * C, C}, nn::Init::FanIn);
    head_.in_proj_bias = params.get(nn::join(h, "attention.in_proj_bias"), {3 * C}, nn::Init::Bias);
    head_.out_proj = nn::Linear(params, nn::join(h, "attention.out_proj"), C, C);
    head_.layernorm = nn::LayerNorm(params, nn::join(h, "layernorm"), C, cfg.layer_norm_eps);
    head_.mlp = ClipMlp(params, nn::join(h, "mlp"), C, cfg.intermediate_size, cfg.activation);
  }
}

std::unique_ptr<SiglipVisionModel> SiglipVisionModel::load(const fs::path& dir, c10::Device device) {
  const SiglipVisionConfig cfg = SiglipVisionConfig::from_json(JsonConfig::load(dir / "config.json"));
  const TensorStore store = TensorStore::open_dir(dir);
  nn::CheckpointParams params(store);
  params.set_device(device);
  auto model = std::make_unique<SiglipVisionModel>(cfg, params, "vision_model");
  // Text-tower tensors of a full SiglipModel are expected.
  params.refuse_unused("a SigLIP vision model",
                       [](const std::string& name) { return name.rfind("vision_model.", 0) != 0; });
  return model;
}

at::Tensor SiglipVisionModel::position_ids(const at::Tensor& patch_attention_mask, int64_t rows, int64_t cols) const {
  const int64_t B = patch_attention_mask.size(0), N = config_.patches_per_side();
  // As Idefics3VisionEmbeddings: the valid patch grid (nh x nw, top-left) is mapped onto the N x N
  // position table by bucketizing its fractional coordinates; ATen's own arange/bucketize are used so
  // float rounding at the bucket edges is the same as in transformers.
  const at::Tensor boundaries = at::arange(1.0 / double(N), 1.0, 1.0 / double(N), at::kFloat);
  const at::Tensor mask = patch_attention_mask.to(at::kCPU).to(at::kBool).reshape({B, rows, cols});
  at::Tensor ids = at::zeros({B, rows * cols}, at::kLong);
  auto buckets = [&](int64_t n) {
    const float step = 1.0f / float(n);  // torch: 1 / int64 tensor -> float32
    return at::bucketize(at::arange(0.0, 1.0 - 1e-6, double(step), at::kFloat), boundaries, false, true);
  };
  for (int64_t b = 0; b < B; ++b) {
    const at::Tensor m = mask[b];
    const int64_t nh = m.select(1, 0).sum().item<int64_t>(), nw = m.select(0, 0).sum().item<int64_t>();
    if (nh == 0 || nw == 0 || nh * nw != m.sum().item<int64_t>())
      throw Error("SigLIP vision: patch_attention_mask of image " + std::to_string(b) +
                  " is not a non-empty top-left rectangle");
    const at::Tensor pos = (buckets(nh).unsqueeze(1) * N + buckets(nw)).flatten();
    ids[b].masked_scatter_(m.flatten(), pos);
  }
  return ids.to(position_embedding_.weight.device());
}

at::Tensor SiglipVisionModel::embed(const at::Tensor& pixel_values, const at::Tensor& patch_attention_mask) const {
  if (pixel_values.dim() != 4 || pixel_values.size(1) != config_.num_channels)
    throw Error("SigLIP vision: pixel_values must be [B, " + std::to_string(config_.num_channels) + ", H, W]");
  const int64_t P = config_.patch_size, H = pixel_values.size(2), W = pixel_values.size(3);
  if (H < P || W < P)
    throw Error("SigLIP vision: image size " + std::to_string(H) + "x" + std::to_string(W) +
                " is smaller than patch_size " + std::to_string(P));
  const at::Tensor x = pixel_values.to(position_embedding_.weight.device(), at::kFloat);
  // [B, rows*cols, C], made contiguous: a sum with the transposed conv output would keep its strides, and
  // every residual add and LayerNorm of the encoder would then run on (and copy) a transposed layout.
  const at::Tensor patches = patch_embedding_(x).flatten(2).transpose(1, 2).contiguous();
  if (!patch_attention_mask.defined()) {
    if (H != config_.image_size || W != config_.image_size)
      throw Error("SigLIP vision: image is " + std::to_string(H) + "x" + std::to_string(W) + ", the model expects " +
                  std::to_string(config_.image_size) + "x" + std::to_string(config_.image_size));
    return patches + position_embedding_.weight.unsqueeze(0);
  }
  if (patch_attention_mask.dim() != 3 || patch_attention_mask.size(0) != x.size(0) ||
      patch_attention_mask.size(1) != H / P || patch_attention_mask.size(2) != W / P)
    throw Error("SigLIP vision: patch_attention_mask must be [B, H/patch, W/patch]");
  return patches + position_embedding_(position_ids(patch_attention_mask, H / P, W / P));
}

at::Tensor SiglipVisionModel::pool(const at::Tensor& h) const {
  // nn.MultiheadAttention(batch_first) with the probe as the single query.
  const int64_t B = h.size(0), T = h.size(1), C = config_.hidden_size, NH = config_.num_attention_heads, D = C / NH;
  const auto w = head_.in_proj_weight.chunk(3, 0);
  const auto b = head_.in_proj_bias.chunk(3, 0);
  const at::Tensor probe = head_.probe.expand({B, 1, C});
  const at::Tensor q = nn::linear(probe, w[0], b[0]).view({B, 1, NH, D}).transpose(1, 2);
  const at::Tensor k = nn::linear(h, w[1], b[1]).view({B, T, NH, D}).transpose(1, 2);
  const at::Tensor v = nn::linear(h, w[2], b[2]).view({B, T, NH, D}).transpose(1, 2);
  const at::Tensor o = head_.out_proj(nn::attention(q, k, v).transpose(1, 2).reshape({B, 1, C}));
  return (o + head_.mlp(head_.layernorm(o))).select(1, 0);
}

SiglipVisionOutput SiglipVisionModel::forward(const at::Tensor& pixel_values, const at::Tensor& patch_attention_mask,
                                              bool output_hidden_states) const {
  SiglipVisionOutput out;
  const at::Tensor x = embed(pixel_values, patch_attention_mask);
  // Masked patches are hidden as keys (transformers' _prepare_4d_attention_mask); a mask with nothing
  // masked is dropped, as transformers does.
  at::Tensor mask;
  if (patch_attention_mask.defined()) {
    const at::Tensor valid = patch_attention_mask.to(x.device()).to(at::kBool).reshape({x.size(0), 1, 1, -1});
    if (!valid.all().item<bool>())
      mask =
          at::zeros(valid.sizes(), x.options()).masked_fill(valid.logical_not(), std::numeric_limits<float>::lowest());
  }
  const at::Tensor h = encoder_.forward(x, mask, output_hidden_states ? &out.hidden_states : nullptr);
  out.last_hidden_state = post_layernorm_(h);
  if (has_head_) out.pooler_output = pool(out.last_hidden_state);
  return out;
}

}  // namespace pictor::models
