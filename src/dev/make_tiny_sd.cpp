#include "dev/make_tiny_sd.hpp"

#include <ATen/ATen.h>

#include <fstream>
#include <set>

#include "core/error.hpp"
#include "core/json_file.hpp"
#include "formats/tensor_store.hpp"
#include "models/autoencoder_kl.hpp"
#include "models/autoencoder_tiny.hpp"
#include "models/clip_text.hpp"
#include "models/unet2d.hpp"
#include "nn/param_source.hpp"

namespace fs = std::filesystem;

namespace pictor::dev {

namespace {

// CLIP's byte -> printable-unicode table, in the order CLIP lists its base vocabulary.
std::vector<std::string> clip_byte_symbols() {
  std::vector<int> bs;
  for (int b = '!'; b <= '~'; ++b) bs.push_back(b);
  for (int b = 0xA1; b <= 0xAC; ++b) bs.push_back(b);
  for (int b = 0xAE; b <= 0xFF; ++b) bs.push_back(b);
  std::vector<int> cs = bs;
  std::set<int> have(bs.begin(), bs.end());
  int n = 0;
  for (int b = 0; b < 256; ++b)
    if (!have.count(b)) bs.push_back(b), cs.push_back(256 + n++);
  auto utf8 = [](int cp) {
    std::string s;
    if (cp < 0x80)
      s += char(cp);
    else if (cp < 0x800)
      s += char(0xC0 | (cp >> 6)), s += char(0x80 | (cp & 0x3F));
    else
      s += char(0xE0 | (cp >> 12)), s += char(0x80 | ((cp >> 6) & 0x3F)), s += char(0x80 | (cp & 0x3F));
    return s;
  };
  std::vector<std::string> out;
  for (int c : cs) out.push_back(utf8(c));
  return out;
}

// Words that become single tokens; everything else falls back to characters (still valid CLIP BPE).
const char* kWords[] = {"a",     "an",         "the",      "of",        "in",        "at",       "and",       "with",
                        "photo", "photograph", "painting", "portrait",  "cat",       "dog",      "astronaut", "riding",
                        "horse", "lighthouse", "dawn",     "red",       "blue",      "green",    "mountain",  "sunset",
                        "city",  "night",      "forest",   "river",     "beautiful", "detailed", "blurry",    "ugly",
                        "low",   "quality",    "style",    "landscape", "castle",    "sky"};

}  // namespace

int64_t write_tiny_clip_tokenizer(const fs::path& dir) {
  fs::create_directories(dir);
  std::vector<std::string> base = clip_byte_symbols();
  json vocab = json::object();
  int64_t id = 0;
  for (const auto& s : base) vocab[s] = id++;
  for (const auto& s : base) vocab[s + "</w>"] = id++;
  std::vector<std::string> merges;
  for (const char* w : kWords) {
    std::string word(w);
    if (word.size() < 2) continue;
    std::string left(1, word[0]);
    for (size_t i = 1; i < word.size(); ++i) {
      std::string right(1, word[i]);
      if (i + 1 == word.size()) right += "</w>";
      const std::string merged = left + right;
      if (!vocab.contains(merged)) {
        merges.push_back(left + " " + right);
        vocab[merged] = id++;
      }
      left = merged;
    }
  }
  vocab["<|startoftext|>"] = id++;
  vocab["<|endoftext|>"] = id++;
  std::ofstream(dir / "vocab.json") << vocab.dump() << "\n";
  std::ofstream m(dir / "merges.txt");
  m << "#version: 0.2\n";
  for (const auto& s : merges) m << s << "\n";
  write_json_file(dir / "tokenizer_config.json", {{"tokenizer_class", "CLIPTokenizer"},
                                                  {"bos_token", "<|startoftext|>"},
                                                  {"eos_token", "<|endoftext|>"},
                                                  {"pad_token", "<|endoftext|>"},
                                                  {"unk_token", "<|endoftext|>"},
                                                  {"model_max_length", 77},
                                                  {"do_lower_case", true},
                                                  {"errors", "replace"}});
  write_json_file(dir / "special_tokens_map.json", {{"bos_token", "<|startoftext|>"},
                                                    {"eos_token", "<|endoftext|>"},
                                                    {"pad_token", "<|endoftext|>"},
                                                    {"unk_token", "<|endoftext|>"}});
  return id;
}

namespace {

// Builds a model from its just-written config with recorded random weights and saves them.
template <class Model, class Config>
void save_random(const fs::path& dir, const std::string& weights_file, uint64_t seed) {
  Config cfg = Config::from_json(JsonConfig::load(dir / "config.json"));
  nn::RandomParams params(seed, /*record=*/true);
  Model model(cfg, params);
  save_tensors(dir / weights_file, params.recorded(), /*as_f16=*/false);
}

}  // namespace

void make_tiny_sd(const fs::path& dir, const TinySdOptions& o) {
  c10::InferenceMode guard;
  fs::create_directories(dir);
  write_json_file(dir / "model_index.json",
                  {{"_class_name", o.inpainting ? "StableDiffusionInpaintPipeline" : "StableDiffusionPipeline"},
                   {"_diffusers_version", "0.27.2"},
                   {"feature_extractor", {nullptr, nullptr}},
                   {"safety_checker", {nullptr, nullptr}},
                   {"requires_safety_checker", false},
                   {"scheduler", {"diffusers", "EulerDiscreteScheduler"}},
                   {"text_encoder", {"transformers", "CLIPTextModel"}},
                   {"tokenizer", {"transformers", "CLIPTokenizer"}},
                   {"unet", {"diffusers", "UNet2DConditionModel"}},
                   {"vae", {"diffusers", "AutoencoderKL"}}});
  write_json_file(dir / "scheduler" / "scheduler_config.json",
                  {{"_class_name", "EulerDiscreteScheduler"},
                   {"_diffusers_version", "0.27.2"},
                   {"beta_start", 0.00085},
                   {"beta_end", 0.012},
                   {"beta_schedule", "scaled_linear"},
                   {"num_train_timesteps", 1000},
                   {"prediction_type", o.v_prediction ? "v_prediction" : "epsilon"},
                   {"steps_offset", 1},
                   {"timestep_spacing", "leading"},
                   {"use_karras_sigmas", false},
                   {"interpolation_type", "linear"},
                   {"trained_betas", nullptr},
                   {"clip_sample", false},
                   {"set_alpha_to_one", false},
                   {"skip_prk_steps", true}});

  const int64_t vocab_size = write_tiny_clip_tokenizer(dir / "tokenizer");
  const int64_t hidden = 32;
  write_json_file(dir / "text_encoder" / "config.json", {{"architectures", {"CLIPTextModel"}},
                                                         {"model_type", "clip_text_model"},
                                                         {"vocab_size", vocab_size},
                                                         {"hidden_size", hidden},
                                                         {"intermediate_size", 64},
                                                         {"num_hidden_layers", 2},
                                                         {"num_attention_heads", 4},
                                                         {"max_position_embeddings", 77},
                                                         {"hidden_act", "quick_gelu"},
                                                         {"layer_norm_eps", 1e-5},
                                                         {"projection_dim", 32},
                                                         {"bos_token_id", 0},
                                                         {"eos_token_id", 2},
                                                         {"pad_token_id", 1},
                                                         {"torch_dtype", "float32"}});
  save_random<models::ClipTextModel, models::ClipTextConfig>(dir / "text_encoder", "model.safetensors", o.seed);

  write_json_file(dir / "unet" / "config.json", {{"_class_name", "UNet2DConditionModel"},
                                                 {"_diffusers_version", "0.27.2"},
                                                 {"act_fn", "silu"},
                                                 {"attention_head_dim", 4},
                                                 {"block_out_channels", {32, 64}},
                                                 {"center_input_sample", false},
                                                 {"cross_attention_dim", hidden},
                                                 {"down_block_types", {"CrossAttnDownBlock2D", "DownBlock2D"}},
                                                 {"downsample_padding", 1},
                                                 {"flip_sin_to_cos", true},
                                                 {"freq_shift", 0},
                                                 {"in_channels", o.inpainting ? 9 : 4},
                                                 {"layers_per_block", 1},
                                                 {"mid_block_scale_factor", 1},
                                                 {"mid_block_type", "UNetMidBlock2DCrossAttn"},
                                                 {"norm_eps", 1e-5},
                                                 {"norm_num_groups", 8},
                                                 {"out_channels", 4},
                                                 {"sample_size", 8},
                                                 {"up_block_types", {"UpBlock2D", "CrossAttnUpBlock2D"}},
                                                 {"use_linear_projection", false},
                                                 {"upcast_attention", false},
                                                 {"only_cross_attention", false},
                                                 {"dual_cross_attention", false},
                                                 {"class_embed_type", nullptr},
                                                 {"addition_embed_type", nullptr},
                                                 {"num_attention_heads", nullptr},
                                                 {"time_embedding_type", "positional"},
                                                 {"resnet_time_scale_shift", "default"},
                                                 {"transformer_layers_per_block", 1},
                                                 {"conv_in_kernel", 3},
                                                 {"conv_out_kernel", 3}});
  save_random<models::UNet2DConditionModel, models::UNetConfig>(dir / "unet", "diffusion_pytorch_model.safetensors",
                                                                o.seed + 1);

  write_json_file(
      dir / "vae" / "config.json",
      {{"_class_name", "AutoencoderKL"},
       {"_diffusers_version", "0.27.2"},
       {"act_fn", "silu"},
       {"block_out_channels", {16, 16, 16, 16}},
       {"down_block_types", {"DownEncoderBlock2D", "DownEncoderBlock2D", "DownEncoderBlock2D", "DownEncoderBlock2D"}},
       {"up_block_types", {"UpDecoderBlock2D", "UpDecoderBlock2D", "UpDecoderBlock2D", "UpDecoderBlock2D"}},
       {"in_channels", 3},
       {"out_channels", 3},
       {"latent_channels", 4},
       {"layers_per_block", 1},
       {"norm_num_groups", 8},
       {"sample_size", 64},
       {"scaling_factor", 0.18215},
       {"force_upcast", true}});
  save_random<models::AutoencoderKL, models::AutoencoderKLConfig>(dir / "vae", "diffusion_pytorch_model.safetensors",
                                                                  o.seed + 2);

  if (!o.taesd_dir.empty()) {
    write_json_file(o.taesd_dir / "config.json", {{"_class_name", "AutoencoderTiny"},
                                                  {"_diffusers_version", "0.27.2"},
                                                  {"act_fn", "relu"},
                                                  {"in_channels", 3},
                                                  {"out_channels", 3},
                                                  {"latent_channels", 4},
                                                  {"encoder_block_out_channels", {16, 16, 16, 16}},
                                                  {"decoder_block_out_channels", {16, 16, 16, 16}},
                                                  {"num_encoder_blocks", {1, 1, 1, 1}},
                                                  {"num_decoder_blocks", {1, 1, 1, 1}},
                                                  {"latent_magnitude", 3},
                                                  {"latent_shift", 0.5},
                                                  {"scaling_factor", 1.0},
                                                  {"upsampling_scaling_factor", 2},
                                                  {"force_upcast", false}});
    save_random<models::AutoencoderTiny, models::AutoencoderTinyConfig>(
        o.taesd_dir, "diffusion_pytorch_model.safetensors", o.seed + 3);
  }
}

}  // namespace pictor::dev
