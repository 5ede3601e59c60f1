#include "pictor/image_to_text.hpp"

#include <ATen/ATen.h>

#include <chrono>
#include <filesystem>
#include <random>

#include "core/error.hpp"
#include "core/runtime.hpp"
#include "pipelines/describe_styles.hpp"
#include "pipelines/vlm_pipeline.hpp"

namespace pictor {

struct ImageToText::Impl {
  std::unique_ptr<pipelines::VisionLanguageModel> model;
  std::string name;
};

ImageToText::ImageToText(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ImageToText::~ImageToText() = default;

std::unique_ptr<ImageToText> ImageToText::load(const std::string& model_dir, int threads) {
  set_threads(threads);
  c10::InferenceMode guard;
  auto impl = std::make_unique<Impl>();
  impl->model = pipelines::VisionLanguageModel::load(model_dir);
  const std::filesystem::path p = std::filesystem::path(model_dir).lexically_normal();
  impl->name = (p.has_filename() ? p.filename() : p.parent_path().filename()).string();
  return std::unique_ptr<ImageToText>(new ImageToText(std::move(impl)));
}

const std::string& ImageToText::model_name() const {
  return impl_->name;
}
std::string ImageToText::family() const {
  return pipelines::vlm_family_name(impl_->model->family());
}

DescribeOptions ImageToText::resolve(const DescribeOptions& in) const {
  DescribeOptions o = in;
  if (o.style.empty() && o.prompt.empty()) o.style = "caption";
  std::optional<pipelines::DescribeStyle> style;
  if (!o.style.empty()) style = pipelines::parse_describe_style(o.style);
  if (o.prompt.empty()) o.prompt = pipelines::style_prompt(*style);
  if (o.max_tokens == 0) o.max_tokens = style ? pipelines::style_max_tokens(*style) : 256;
  if (o.max_tokens < 1 || o.max_tokens > 4096)
    throw Error("max tokens " + std::to_string(o.max_tokens) + " must be between 1 and 4096");
  if (o.temperature < 0 || o.temperature > 10)
    throw Error("temperature " + std::to_string(o.temperature) + " must be between 0 and 10");
  if (o.top_p <= 0 || o.top_p > 1) throw Error("top_p " + std::to_string(o.top_p) + " must be in (0, 1]");
  if (o.top_k < 0) throw Error("top_k " + std::to_string(o.top_k) + " must be 0 (off) or positive");
  if (!o.seed) o.seed = o.temperature > 0 ? (std::random_device{}() & 0xffffffffu) : 0;
  return o;
}

Description ImageToText::describe(const DescribeOptions& in, const TextStreamCallback& on_text) {
  const auto start = std::chrono::steady_clock::now();
  const DescribeOptions o = resolve(in);
  if (o.images.empty()) throw Error("describe needs at least one image");

  models::GenerationConfig g = impl_->model->default_generation();
  g.max_new_tokens = o.max_tokens;
  g.seed = *o.seed;
  // The request's settings replace the folder's decoding mode: greedy unless a temperature is given.
  g.do_sample = o.temperature > 0;
  g.temperature = o.temperature > 0 ? o.temperature : 1.0;
  g.top_p = o.top_p;
  g.top_k = o.top_k;
  if (o.repetition_penalty > 0) g.repetition_penalty = o.repetition_penalty;
  g.validate();

  pipelines::VlmCallbacks cb;
  cb.on_text = on_text;
  const pipelines::VlmOutput out = impl_->model->describe(o.images, o.prompt, g, cb);

  Description d;
  d.raw_text = out.text;
  d.style = o.style;
  d.text = o.style.empty() ? out.text
                           : pipelines::postprocess_description(pipelines::parse_describe_style(o.style), out.text);
  d.prompt = o.prompt;
  d.seed = *o.seed;
  d.prompt_tokens = static_cast<int>(out.prompt_tokens);
  d.new_tokens = static_cast<int>(out.new_tokens.size());
  d.truncated = !out.finished && !out.cancelled;
  d.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return d;
}

}  // namespace pictor
