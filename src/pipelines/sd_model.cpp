#include "pipelines/sd_model.hpp"

#include <ATen/ATen.h>

#include <algorithm>

#include "core/error.hpp"
#include "core/json_file.hpp"

namespace fs = std::filesystem;

namespace pictor::pipelines {

namespace {
// model_index.json names each component as [library, class]; check that a component has one we load.
void expect_component(const JsonConfig& index, const std::string& key, std::initializer_list<const char*> classes) {
  if (!index.has(key)) throw Error(index.source() + ": missing component '" + key + "'");
  const json& v = index.raw()[key];
  if (!v.is_array() || v.size() != 2 || !v[1].is_string())
    throw Error(index.source() + ": component '" + key + "' should be [library, class]");
  const std::string cls = v[1].get<std::string>();
  for (const char* c : classes)
    if (cls == c) return;
  throw Unsupported(index.source() + ": component '" + key + "' has class '" + cls + "'");
}
}  // namespace

std::unique_ptr<StableDiffusionModel> StableDiffusionModel::load(const fs::path& dir, const SdLoadOptions& opts) {
  if (!fs::is_directory(dir)) throw Error(dir.string() + ": model folder not found");
  if (!fs::exists(dir / "model_index.json"))
    throw Error(dir.string() + ": no model_index.json (expected a diffusers pipeline folder)");
  JsonConfig index = JsonConfig::load(dir / "model_index.json");
  const std::string pipe = index.get<std::string>("_class_name", "StableDiffusionPipeline");
  if (pipe != "StableDiffusionPipeline" && pipe != "StableDiffusionImg2ImgPipeline" &&
      pipe != "StableDiffusionInpaintPipeline")
    throw Unsupported(index.source() + ": pipeline class '" + pipe + "' (Pictor loads Stable Diffusion 1.x/2.x)");
  expect_component(index, "tokenizer", {"CLIPTokenizer", "CLIPTokenizerFast"});
  expect_component(index, "text_encoder", {"CLIPTextModel"});
  expect_component(index, "unet", {"UNet2DConditionModel"});
  expect_component(index, "vae", {"AutoencoderKL", "AutoencoderTiny"});

  auto m = std::make_unique<StableDiffusionModel>();
  m->dir = dir;
  m->name = fs::absolute(dir).lexically_normal().filename().string();
  if (m->name.empty()) m->name = fs::absolute(dir).lexically_normal().parent_path().filename().string();
  m->device = opts.device;
  m->tokenizer = tokenizers::ClipTokenizer::load(dir / "tokenizer");
  m->text_encoder = models::ClipTextModel::load(dir / "text_encoder", opts.device);
  m->unet = models::UNet2DConditionModel::load(dir / "unet", opts.device);
  m->vae = models::AutoencoderKL::load(dir / "vae", opts.device);
  JsonConfig sched = JsonConfig::load(dir / "scheduler" / "scheduler_config.json");
  m->scheduler_config = SchedulerConfig::from_json(sched);
  m->scheduler_class = sched.get<std::string>("_class_name", "EulerDiscreteScheduler");
  if (!opts.taesd_dir.empty()) m->taesd = models::AutoencoderTiny::load(opts.taesd_dir, opts.device);
  if (opts.decode_with_taesd && !m->taesd) throw Error("--vae taesd decoding needs a TAESD folder");
  m->decode_with_taesd = opts.decode_with_taesd;

  const int64_t text_dim = m->text_encoder->config().hidden_size;
  for (int64_t cross_dim : m->unet->config().cross_attention_dim)
    if (text_dim != cross_dim)
      throw Error(dir.string() + ": text_encoder hidden_size " + std::to_string(text_dim) +
                  " does not match unet cross_attention_dim " + std::to_string(cross_dim));
  const int64_t lat = m->vae->config().latent_channels;
  const int64_t unet_in = m->unet->config().in_channels;
  if (unet_in != lat && unet_in != 2 * lat + 1)
    throw Error(dir.string() + ": unet in_channels " + std::to_string(unet_in) + " fits neither latent_channels " +
                std::to_string(lat) + " nor the inpainting layout " + std::to_string(2 * lat + 1));
  return m;
}

int StableDiffusionModel::vae_scale_factor() const {
  return 1 << (static_cast<int>(vae->config().block_out_channels.size()) - 1);
}

int StableDiffusionModel::default_size() const {
  return static_cast<int>(unet->config().sample_size) * vae_scale_factor();
}

bool StableDiffusionModel::is_turbo() const {
  std::string n = name;
  std::transform(n.begin(), n.end(), n.begin(), ::tolower);
  return n.find("turbo") != std::string::npos;
}

bool StableDiffusionModel::is_inpainting_unet() const {
  return unet->config().in_channels == 2 * vae->config().latent_channels + 1;
}

}  // namespace pictor::pipelines
