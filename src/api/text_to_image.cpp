#include "pictor/text_to_image.hpp"

#include <ATen/ATen.h>

#include <random>

#include "core/error.hpp"
#include "core/runtime.hpp"
#include "formats/generation_params.hpp"
#include "formats/image_tensor.hpp"
#include "pipelines/sd_pipeline.hpp"
#include "schedulers/scheduler.hpp"

namespace pictor {

struct TextToImage::Impl {
  std::unique_ptr<pipelines::StableDiffusionModel> model;
};

TextToImage::TextToImage(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
TextToImage::~TextToImage() = default;

std::unique_ptr<TextToImage> TextToImage::load(const std::string& model_dir, const LoadOptions& opts) {
  set_threads(opts.threads);
  c10::InferenceMode guard;
  pipelines::SdLoadOptions lo;
  lo.taesd_dir = opts.taesd_dir;
  lo.decode_with_taesd = opts.decode_with_taesd;
  auto impl = std::make_unique<Impl>();
  impl->model = pipelines::StableDiffusionModel::load(model_dir, lo);
  return std::unique_ptr<TextToImage>(new TextToImage(std::move(impl)));
}

const std::string& TextToImage::model_name() const {
  return impl_->model->name;
}

std::vector<std::string> TextToImage::samplers() const {
  return scheduler_names();
}

GenerateOptions TextToImage::resolve(const GenerateOptions& in) const {
  const auto& m = *impl_->model;
  GenerateOptions o = in;
  if (o.init_image && (o.width == 0 || o.height == 0)) {
    // img2img keeps the source's size, rounded down to the latent grid.
    const int f = m.vae_scale_factor();
    if (o.width == 0) o.width = std::max(f, o.init_image->width / f * f);
    if (o.height == 0) o.height = std::max(f, o.init_image->height / f * f);
  }
  if (o.width == 0) o.width = m.default_size();
  if (o.height == 0) o.height = m.default_size();
  if (o.steps == 0) o.steps = m.is_turbo() ? 1 : 25;
  if (o.guidance < 0) o.guidance = m.is_turbo() ? 0.0 : 7.5;
  if (o.sampler.empty()) o.sampler = default_scheduler_for(m.scheduler_class);
  if (!o.seed) o.seed = std::random_device{}() & 0xffffffffu;
  if (o.count < 1 || o.count > 64) throw Error("image count " + std::to_string(o.count) + " must be between 1 and 64");
  if (o.noise != "cpu" && o.noise != "a1111") throw Error("noise must be 'cpu' or 'a1111', not '" + o.noise + "'");
  return o;
}

std::vector<GeneratedImage> TextToImage::generate(const GenerateOptions& in, const ProgressCallback& progress) {
  c10::InferenceMode guard;
  const auto& m = *impl_->model;
  const GenerateOptions o = resolve(in);

  pipelines::SdRequest r;
  r.prompt = o.prompt;
  r.negative_prompt = o.negative_prompt;
  r.width = o.width;
  r.height = o.height;
  r.steps = o.steps;
  r.guidance = o.guidance;
  r.sampler = o.sampler;
  r.noise = o.noise == "a1111" ? pipelines::NoiseKind::A1111Gpu : pipelines::NoiseKind::TorchCpu;
  r.clip_skip = o.clip_skip;
  r.strength = o.strength;
  r.previews = o.previews;
  if (o.init_image) r.init_image = image_to_tensor(resize_image(*o.init_image, o.width, o.height));
  if (o.mask) {
    if (!o.init_image) throw Error("a mask needs an init image");
    r.mask = mask_to_tensor(resize_image(*o.mask, o.width, o.height), o.mask_convention);
  }

  std::vector<GeneratedImage> out;
  for (int k = 0; k < o.count; ++k) {
    r.seed = *o.seed + static_cast<uint64_t>(k);
    pipelines::StepCallback cb;
    if (progress) {
      cb = [&](const pipelines::StepInfo& s) {
        Progress p;
        p.image_index = k;
        p.image_count = o.count;
        p.step = s.step;
        p.total = s.total;
        p.elapsed_s = s.elapsed_s;
        p.eta_s = s.eta_s;
        Image preview;
        if (s.preview.defined()) {
          preview = tensor_to_image(s.preview);
          p.preview = &preview;
        }
        return progress(p);
      };
    }
    auto res = pipelines::run_stable_diffusion(m, r, cb);
    GeneratedImage g;
    g.image = tensor_to_image(res.image);
    g.seed = r.seed;
    GenerationParams gp;
    gp.prompt = o.prompt;
    gp.negative_prompt = o.negative_prompt;
    gp.steps = o.steps;
    gp.sampler = a1111_sampler_display(o.sampler);
    gp.cfg_scale = o.guidance;
    gp.seed = r.seed;
    gp.width = o.width;
    gp.height = o.height;
    gp.model = m.name;
    if (o.init_image) gp.denoising_strength = o.strength;
    if (o.clip_skip > 1) gp.extra["Clip skip"] = std::to_string(o.clip_skip);
    // A1111 writes "RNG" only when it is not its GPU default.
    if (o.noise != "a1111") gp.extra["RNG"] = "CPU";
    g.parameters = format_a1111(gp);
    out.push_back(std::move(g));
  }
  return out;
}

}  // namespace pictor
