// The "generate" job: params (job_kinds.hpp) → TextToImage::generate → stored images.
#include <cmath>

#include "core/error.hpp"
#include "jobs/job_kinds.hpp"
#include "jobs/model_catalog.hpp"
#include "storage/ids.hpp"

namespace pictor::jobs {

namespace {

Image load_input(storage::ImageStore& images, const nlohmann::json& params, const char* field) {
  std::string id = params.value(field, "");
  auto rec = images.get(id);
  if (!rec) throw Error(std::string("params.") + field + ": stored image \"" + id + "\" not found");
  return images.decode(*rec);
}

GenerateOptions options_from(const nlohmann::json& p, storage::ImageStore& images, bool previews_available) {
  GenerateOptions o;
  o.prompt = p.value("prompt", "");
  o.negative_prompt = p.value("negative_prompt", "");
  o.width = p.value("width", 0);
  o.height = p.value("height", 0);
  o.steps = p.value("steps", 0);
  o.guidance = p.value("guidance", -1.0);
  o.sampler = p.value("sampler", "");
  if (p.contains("seed") && p["seed"].is_number_unsigned()) o.seed = p["seed"].get<uint64_t>();
  o.count = p.value("count", 1);
  o.noise = p.value("noise", "cpu");
  o.clip_skip = std::max(1, p.value("clip_skip", 1));
  o.strength = p.value("strength", 0.75);
  o.previews = p.value("previews", true) && previews_available;
  if (p.contains("init_image")) o.init_image = load_input(images, p, "init_image");
  if (p.contains("mask")) {
    o.mask = load_input(images, p, "mask");
    o.mask_convention = p.value("mask_convention", "white") == "transparent" ? MaskConvention::TransparentRepaints
                                                                             : MaskConvention::WhiteRepaints;
  }
  return o;
}

}  // namespace

nlohmann::json run_generate_job(JobContext& ctx) {
  auto engine = ctx.models.text_to_image(ctx.model);
  GenerateOptions opts = options_from(ctx.params, ctx.images, ctx.models.has_previews());
  // A seed is fixed before running so that the record (and a replay) names it even if the run fails.
  opts = engine->resolve(opts);
  const std::string format = ctx.params.value("output_format", "png");

  auto generated = engine->generate(opts, [&](const Progress& p) {
    if (ctx.cancelled()) return false;
    // Steps of all images of the request on one scale, so clients see one bar.
    int total = p.total * p.image_count;
    int step = p.image_index * p.total + p.step;
    double eta = p.eta_s + double(p.image_count - 1 - p.image_index) * (p.elapsed_s + p.eta_s);
    ctx.progress(step, total, eta, p.preview);
    return true;
  });

  nlohmann::json images = nlohmann::json::array(), parameters = nlohmann::json::array();
  for (auto& g : generated) {
    nlohmann::json meta = {
        {"seed", g.seed}, {"prompt", opts.prompt}, {"parameters", g.parameters}, {"model", ctx.model}};
    auto rec = ctx.images.put(g.image, format, {{"parameters", g.parameters}}, meta, ctx.job_id);
    images.push_back(
        {{"id", rec.id}, {"seed", g.seed}, {"width", rec.width}, {"height", rec.height}, {"format", rec.format}});
    parameters.push_back(g.parameters);
  }
  return {{"images", images},
          {"parameters", parameters},
          {"model", ctx.model},
          {"seed", *opts.seed},
          {"created", int64_t(storage::now_seconds())}};
}

}  // namespace pictor::jobs
