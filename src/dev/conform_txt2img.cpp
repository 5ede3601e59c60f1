// Conformance for an end-to-end txt2img case: the diffusers pipeline folder doubles as the case folder
// (case.json "call" records prompt, size, steps, guidance; inputs hold the starting latents).
#include <ATen/ATen.h>

#include <regex>

#include "dev/conform.hpp"
#include "formats/image_tensor.hpp"
#include "pipelines/sd_pipeline.hpp"
#include "schedulers/scheduler.hpp"

namespace pictor::dev {

namespace {

// Reads `name=value` from the recorded Python call, e.g. height=128 or negative_prompt=''.
std::string call_arg(const std::string& call, const std::string& name) {
  std::smatch m;
  std::regex re(name + R"(\s*=\s*('([^']*)'|[^,)]+))");
  if (!std::regex_search(call, m, re)) throw Error("case.json: call has no argument '" + name + "'");
  return m[2].matched ? m[2].str() : m[1].str();
}

void check_txt2img(const CaseDir& c, ConformReport& rep) {
  c10::InferenceMode guard;
  const std::string call = c.spec.at("call").get<std::string>();
  std::smatch m;
  if (!std::regex_search(call, m, std::regex(R"(pipe\('([^']*)')")))
    throw Error("case.json: cannot find the prompt in call");
  auto model = pipelines::StableDiffusionModel::load(c.dir);
  pipelines::SdRequest r;
  r.prompt = m[1].str();
  r.negative_prompt = call_arg(call, "negative_prompt");
  r.height = std::stoi(call_arg(call, "height"));
  r.width = std::stoi(call_arg(call, "width"));
  r.steps = std::stoi(call_arg(call, "num_inference_steps"));
  r.guidance = std::stod(call_arg(call, "guidance_scale"));
  r.sampler = default_scheduler_for(model->scheduler_class);
  r.initial_latents = c.inputs.get("latents");
  pipelines::SdTrace trace;
  auto res = pipelines::run_stable_diffusion(*model, r, {}, &trace);

  auto tol = [&](const std::string& n) { return c.suggested_atol(n, 1e-4); };
  rep.close("prompt_embeds", trace.prompt_embeds, c.outputs.get("prompt_embeds"), tol("prompt_embeds"));
  rep.close("negative_prompt_embeds", trace.negative_prompt_embeds, c.outputs.get("negative_prompt_embeds"),
            tol("negative_prompt_embeds"));
  rep.close("timesteps", trace.timesteps.to(at::kFloat), c.outputs.get("timesteps"), tol("timesteps"));
  rep.close("step.unet_input", at::stack(trace.unet_input), c.outputs.get("step.unet_input"), tol("step.unet_input"));
  rep.close("step.unet_output", at::stack(trace.unet_output), c.outputs.get("step.unet_output"),
            tol("step.unet_output"));
  rep.close("step.latents", at::stack(trace.latents), c.outputs.get("step.latents"), tol("step.latents"));
  rep.close("decoded", trace.decoded, c.outputs.get("decoded"), tol("decoded"));
  rep.close("image", res.image.unsqueeze(0), c.outputs.get("image"), tol("image"));
  // The 8-bit image: rounding (x*255).round() of values within the float tolerance of a .5 boundary may
  // legitimately differ by one level; more than one level is a real difference.
  Image img = tensor_to_image(res.image);
  at::Tensor mine = at::from_blob(img.pixels.data(), {img.height, img.width, img.channels}, at::kByte).clone();
  rep.close("image_uint8 (levels)", mine.to(at::kFloat), c.outputs.get("image_uint8").to(at::kFloat), 1.0);
}

}  // namespace

PICTOR_REGISTER_CONFORM(
    "txt2img", [](const CaseDir& c) { return case_title_has(c, "txt2img") && c.spec.contains("call"); }, check_txt2img);

}  // namespace pictor::dev
