#include "models/unet_config.hpp"

#include "core/error.hpp"

namespace pictor::models {

namespace {

const char* kCrossDown = "CrossAttnDownBlock2D";
const char* kPlainDown = "DownBlock2D";
const char* kCrossUp = "CrossAttnUpBlock2D";
const char* kPlainUp = "UpBlock2D";
const char* kCrossMid = "UNetMidBlock2DCrossAttn";

[[noreturn]] void unsupported(const JsonConfig& j, const std::string& key, const std::string& what) {
  throw Unsupported(j.source() + ": field '" + key + "': " + what);
}

// A field whose only supported value is null/absent (the feature it enables is not implemented).
void require_null(const JsonConfig& j, const std::string& key, const std::string& feature) {
  if (j.has(key)) unsupported(j, key, feature + " (" + j.raw().at(key).dump() + ") is not supported");
}

// A field that may be absent, null or equal to `expected`.
template <class T>
void require_value(const JsonConfig& j, const std::string& key, const T& expected, const std::string& feature) {
  if (!j.has(key)) return;
  T v = j.get<T>(key);
  if (v != expected) unsupported(j, key, feature + " (" + j.raw().at(key).dump() + ") is not supported");
}

// A value given either once for all blocks or as a list with one entry per down block.
template <class T>
std::vector<T> per_block(const JsonConfig& j, const std::string& key, size_t n, const T& fallback) {
  if (!j.has(key)) return std::vector<T>(n, fallback);
  const json& v = j.raw().at(key);
  if (!v.is_array()) return std::vector<T>(n, j.get<T>(key));
  if (v.size() != n)
    j.fail(key, "has " + std::to_string(v.size()) + " entries but there are " + std::to_string(n) + " down blocks");
  std::vector<T> out;
  for (const auto& e : v) {
    if (e.is_array()) unsupported(j, key, "nested per-layer lists are not supported");
    try {
      out.push_back(e.get<T>());
    } catch (const json::exception&) {
      j.fail(key, "entry " + e.dump() + " has the wrong type");
    }
  }
  return out;
}

void require_positive(const JsonConfig& j, const std::string& key, const std::vector<int64_t>& v) {
  for (int64_t x : v)
    if (x <= 0) j.fail(key, "values must be positive (got " + std::to_string(x) + ")");
}

}  // namespace

UNetConfig UNetConfig::from_json(const JsonConfig& j) {
  UNetConfig c;
  c.source = j.source();

  if (j.has("_class_name")) {
    auto cls = j.get<std::string>("_class_name");
    if (cls != "UNet2DConditionModel") unsupported(j, "_class_name", "model class '" + cls + "'");
  }

  // Features that change the math and are not implemented (SDXL, LCM, Kandinsky, unCLIP, ...).
  require_null(j, "class_embed_type", "class embedding");
  require_null(j, "num_class_embeds", "class embedding");
  require_null(j, "addition_embed_type", "addition embedding (SDXL-style text_time conditioning)");
  require_null(j, "encoder_hid_dim", "encoder hidden state projection");
  require_null(j, "encoder_hid_dim_type", "encoder hidden state projection");
  require_null(j, "time_cond_proj_dim", "timestep condition projection (LCM guidance embedding)");
  require_null(j, "timestep_post_act", "activation after the timestep embedding");
  require_null(j, "time_embedding_act_fn", "activation on the time embedding");
  require_null(j, "cross_attention_norm", "cross-attention normalisation");
  require_value<bool>(j, "dual_cross_attention", false, "dual cross attention");
  require_value<bool>(j, "resnet_skip_time_act", false, "resnet_skip_time_act");
  require_value<std::string>(j, "attention_type", "default", "attention type");
  require_value<std::string>(j, "time_embedding_type", "positional", "time embedding type");
  require_value<std::string>(j, "resnet_time_scale_shift", "default", "resnet time scale-shift");

  c.in_channels = j.get<int64_t>("in_channels", 4);
  c.out_channels = j.get<int64_t>("out_channels", 4);
  if (c.in_channels <= 0) j.fail("in_channels", "must be positive");
  if (c.out_channels <= 0) j.fail("out_channels", "must be positive");
  if (j.has("sample_size")) {
    const json& s = j.raw().at("sample_size");
    c.sample_size = s.is_array() && !s.empty() ? s[0].get<int64_t>() : j.get<int64_t>("sample_size");
  }
  c.center_input_sample = j.get<bool>("center_input_sample", false);

  c.block_out_channels = j.get<std::vector<int64_t>>("block_out_channels", {320, 640, 1280, 1280});
  c.down_block_types =
      j.get<std::vector<std::string>>("down_block_types", {kCrossDown, kCrossDown, kCrossDown, kPlainDown});
  c.up_block_types = j.get<std::vector<std::string>>("up_block_types", {kPlainUp, kCrossUp, kCrossUp, kCrossUp});
  c.mid_block_type = j.has("mid_block_type") ? j.get<std::string>("mid_block_type") : std::string();
  if (!j.raw().contains("mid_block_type")) c.mid_block_type = kCrossMid;  // diffusers' default

  const size_t n = c.block_out_channels.size();
  if (n == 0) j.fail("block_out_channels", "must not be empty");
  require_positive(j, "block_out_channels", c.block_out_channels);
  if (c.down_block_types.size() != n)
    j.fail("down_block_types", "has " + std::to_string(c.down_block_types.size()) +
                                   " entries but block_out_channels has " + std::to_string(n));
  if (c.up_block_types.size() != n)
    j.fail("up_block_types", "has " + std::to_string(c.up_block_types.size()) + " entries but block_out_channels has " +
                                 std::to_string(n));
  for (const auto& t : c.down_block_types)
    if (t != kCrossDown && t != kPlainDown) unsupported(j, "down_block_types", "block type '" + t + "'");
  for (const auto& t : c.up_block_types)
    if (t != kCrossUp && t != kPlainUp) unsupported(j, "up_block_types", "block type '" + t + "'");
  if (!c.mid_block_type.empty() && c.mid_block_type != kCrossMid)
    unsupported(j, "mid_block_type", "block type '" + c.mid_block_type + "'");

  c.layers_per_block = per_block<int64_t>(j, "layers_per_block", n, 2);
  require_positive(j, "layers_per_block", c.layers_per_block);
  c.cross_attention_dim = per_block<int64_t>(j, "cross_attention_dim", n, 1280);
  require_positive(j, "cross_attention_dim", c.cross_attention_dim);
  c.attention_head_dim = per_block<int64_t>(j, "attention_head_dim", n, 8);
  c.num_attention_heads =
      j.has("num_attention_heads") ? per_block<int64_t>(j, "num_attention_heads", n, 8) : c.attention_head_dim;
  require_positive(j, j.has("num_attention_heads") ? "num_attention_heads" : "attention_head_dim",
                   c.num_attention_heads);
  c.transformer_layers_per_block = per_block<int64_t>(j, "transformer_layers_per_block", n, 1);
  require_positive(j, "transformer_layers_per_block", c.transformer_layers_per_block);
  if (j.has("reverse_transformer_layers_per_block")) {
    c.reverse_transformer_layers_per_block = per_block<int64_t>(j, "reverse_transformer_layers_per_block", n, 1);
    require_positive(j, "reverse_transformer_layers_per_block", c.reverse_transformer_layers_per_block);
  }
  c.only_cross_attention = per_block<bool>(j, "only_cross_attention", n, false);

  c.use_linear_projection = j.get<bool>("use_linear_projection", false);
  c.upcast_attention = j.get<bool>("upcast_attention", false);
  c.norm_num_groups = j.get<int64_t>("norm_num_groups", 32);
  // diffusers skips the final GroupNorm when norm_num_groups is null; no SD checkpoint does that.
  if (j.raw().contains("norm_num_groups") && j.raw().at("norm_num_groups").is_null())
    unsupported(j, "norm_num_groups", "null (no output normalisation)");
  if (c.norm_num_groups <= 0) j.fail("norm_num_groups", "must be positive");
  c.norm_eps = j.get<double>("norm_eps", 1e-5);
  c.act_fn = j.get<std::string>("act_fn", "silu");
  c.flip_sin_to_cos = j.get<bool>("flip_sin_to_cos", true);
  c.freq_shift = j.get<double>("freq_shift", 0.0);
  c.time_embedding_dim = j.get<int64_t>("time_embedding_dim", c.block_out_channels[0] * 4);
  c.resnet_out_scale_factor = j.get<double>("resnet_out_scale_factor", 1.0);
  c.mid_block_scale_factor = j.get<double>("mid_block_scale_factor", 1.0);
  c.downsample_padding = j.get<int64_t>("downsample_padding", 1);
  if (c.downsample_padding != 0 && c.downsample_padding != 1)
    unsupported(j, "downsample_padding", std::to_string(c.downsample_padding) + " (only 0 and 1 are supported)");
  c.conv_in_kernel = j.get<int64_t>("conv_in_kernel", 3);
  c.conv_out_kernel = j.get<int64_t>("conv_out_kernel", 3);
  if (c.conv_in_kernel <= 0 || c.conv_in_kernel % 2 == 0) j.fail("conv_in_kernel", "must be a positive odd number");
  if (c.conv_out_kernel <= 0 || c.conv_out_kernel % 2 == 0) j.fail("conv_out_kernel", "must be a positive odd number");

  const int64_t half = c.block_out_channels[0] / 2;
  if (half - c.freq_shift == 0) j.fail("freq_shift", "equals half the embedding size (division by zero)");

  // Every attention block needs a whole number of heads; GroupNorm needs whole groups.
  for (size_t i = 0; i < n; ++i) {
    const int64_t ch = c.block_out_channels[i];
    if (ch % c.norm_num_groups != 0)
      j.fail("norm_num_groups", std::to_string(ch) + " channels of block " + std::to_string(i) +
                                    " are not divisible into " + std::to_string(c.norm_num_groups) + " groups");
    if (ch % c.num_attention_heads[i] != 0)
      j.fail(j.has("num_attention_heads") ? "num_attention_heads" : "attention_head_dim",
             std::to_string(ch) + " channels of block " + std::to_string(i) + " are not divisible into " +
                 std::to_string(c.num_attention_heads[i]) + " heads");
  }
  return c;
}

int64_t UNetConfig::up_transformer_layers(size_t i) const {
  if (!reverse_transformer_layers_per_block.empty()) return reverse_transformer_layers_per_block[i];
  return transformer_layers_per_block[transformer_layers_per_block.size() - 1 - i];
}

}  // namespace pictor::models
