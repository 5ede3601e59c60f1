#include "pictor/image_to_text.hpp"

#include <ATen/ATen.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <random>

#include "api/stop_strings.hpp"
#include "core/error.hpp"
#include "core/runtime.hpp"
#include "pipelines/describe_styles.hpp"
#include "pipelines/vlm_pipeline.hpp"

namespace pictor {

namespace {
// The decoding settings describe() and chat() share, checked the same way for both.
void check_sampling(int max_tokens, double temperature, double top_p, int top_k) {
  if (max_tokens < 1 || max_tokens > 4096)
    throw Error("max tokens " + std::to_string(max_tokens) + " must be between 1 and 4096");
  if (temperature < 0 || temperature > 10)
    throw Error("temperature " + std::to_string(temperature) + " must be between 0 and 10");
  if (top_p <= 0 || top_p > 1) throw Error("top_p " + std::to_string(top_p) + " must be in (0, 1]");
  if (top_k < 0) throw Error("top_k " + std::to_string(top_k) + " must be 0 (off) or positive");
}
}  // namespace

struct ImageToText::Impl {
  std::unique_ptr<pipelines::VisionLanguageModel> model;
  std::string name;
};

ImageToText::ImageToText(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ImageToText::~ImageToText() = default;

std::unique_ptr<ImageToText> ImageToText::load(const std::string& model_dir, int threads, bool int8_decoder) {
  set_threads(threads);
  c10::InferenceMode guard;
  auto impl = std::make_unique<Impl>();
  impl->model = pipelines::VisionLanguageModel::load(model_dir, c10::kCPU, int8_decoder);
  const std::filesystem::path p = std::filesystem::path(model_dir).lexically_normal();
  impl->name = (p.has_filename() ? p.filename() : p.parent_path().filename()).string();
  return std::unique_ptr<ImageToText>(new ImageToText(std::move(impl)));
}

const std::string& ImageToText::model_name() const {
  return impl_->name;
}

bool ImageToText::int8_decoder() const {
  return impl_->model->decoder_int8();
}
int64_t ImageToText::int8_saved_bytes() const {
  return impl_->model->decoder_int8_saved_bytes();
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
  check_sampling(o.max_tokens, o.temperature, o.top_p, o.top_k);
  if (!o.seed) o.seed = o.temperature > 0 ? (std::random_device{}() & 0xffffffffu) : 0;
  return o;
}

namespace {

// Chat messages as the chat templates expect them: content is always a list of parts, image parts
// carry no data (the images go to the processor separately, in the order their parts appear).
nlohmann::json template_messages(const std::vector<ChatMessage>& messages, size_t num_images,
                                 std::vector<size_t>* image_order) {
  nlohmann::json out = nlohmann::json::array();
  for (size_t m = 0; m < messages.size(); ++m) {
    const ChatMessage& msg = messages[m];
    if (msg.role != "system" && msg.role != "user" && msg.role != "assistant")
      throw Error("chat message " + std::to_string(m) + ": role '" + msg.role + "' must be system, user or assistant");
    nlohmann::json content = nlohmann::json::array();
    for (const ChatPart& part : msg.parts) {
      if (part.kind == ChatPart::Kind::Text) {
        content.push_back({{"type", "text"}, {"text", part.text}});
      } else {
        if (part.image >= num_images)
          throw Error("chat message " + std::to_string(m) + " refers to image " + std::to_string(part.image) +
                      " but only " + std::to_string(num_images) + " images were given");
        if (msg.role != "user") throw Error("chat message " + std::to_string(m) + ": only user turns can hold images");
        if (image_order) image_order->push_back(part.image);
        content.push_back({{"type", "image"}});
      }
    }
    if (content.empty()) content.push_back({{"type", "text"}, {"text", ""}});
    out.push_back({{"role", msg.role}, {"content", std::move(content)}});
  }
  return out;
}

std::string rstrip(std::string s) {
  while (!s.empty() && std::string(" \t\r\n\f\v").find(s.back()) != std::string::npos) s.pop_back();
  return s;
}

}  // namespace

std::string ImageToText::render_chat(const std::vector<ChatMessage>& messages) const {
  return impl_->model->render_prompt(template_messages(messages, SIZE_MAX, nullptr));
}

Description ImageToText::chat(const ChatOptions& o, const TextStreamCallback& on_text) {
  const auto start = std::chrono::steady_clock::now();
  if (o.messages.empty()) throw Error("chat needs at least one message");
  check_sampling(o.max_tokens, o.temperature, o.top_p, o.top_k);
  const uint64_t seed = o.seed ? *o.seed : o.temperature > 0 ? (std::random_device{}() & 0xffffffffu) : 0;

  std::vector<size_t> order;
  const nlohmann::json messages = template_messages(o.messages, o.images.size(), &order);
  if (order.empty()) throw Error("chat needs at least one image in the user messages");
  std::vector<Image> images;
  images.reserve(order.size());
  for (size_t i : order) images.push_back(o.images[i]);

  models::GenerationConfig g = impl_->model->default_generation();
  g.max_new_tokens = o.max_tokens;
  g.seed = seed;
  // The request's settings replace the folder's decoding mode: greedy unless a temperature is given.
  g.do_sample = o.temperature > 0;
  g.temperature = o.temperature > 0 ? o.temperature : 1.0;
  g.top_p = o.top_p;
  g.top_k = o.top_k;
  if (o.repetition_penalty > 0) g.repetition_penalty = o.repetition_penalty;
  for (const std::string& s : o.stop)
    if (!s.empty()) g.stop_strings.push_back(s);
  g.validate();

  api::StopStringStream stream(g.stop_strings, on_text);
  pipelines::VlmCallbacks cb;
  if (on_text) cb.on_text = [&](const std::string& piece) { return stream.push(piece); };
  const pipelines::VlmOutput out = impl_->model->generate(impl_->model->prepare(images, messages), g, cb);

  Description d;
  d.raw_text = out.text;
  const size_t stop = api::find_first_stop(out.text, g.stop_strings);
  const bool stopped = stop != std::string::npos || stream.stopped();
  d.text = stop != std::string::npos ? rstrip(out.text.substr(0, stop)) : out.text;
  if (on_text) stream.finish(d.text);
  d.seed = seed;
  d.prompt_tokens = static_cast<int>(out.prompt_tokens);
  d.new_tokens = static_cast<int>(out.new_tokens.size());
  d.cancelled = stream.sink_refused();
  d.truncated = !out.finished && !stopped && !d.cancelled;
  d.finish_reason = d.cancelled ? "cancelled" : (out.finished || stopped) ? "stop" : "length";
  d.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return d;
}

Description ImageToText::describe(const DescribeOptions& in, const TextStreamCallback& on_text) {
  const DescribeOptions o = resolve(in);
  if (o.images.empty()) throw Error("describe needs at least one image");

  // One user turn: the images, then the instruction (VisionLanguageModel::user_turn's layout).
  ChatOptions c;
  c.images = o.images;
  ChatMessage user{"user", {}};
  for (size_t i = 0; i < o.images.size(); ++i) user.parts.push_back(ChatPart::image_part(i));
  user.parts.push_back(ChatPart::text_part(o.prompt));
  c.messages.push_back(std::move(user));
  c.max_tokens = o.max_tokens;
  c.seed = o.seed;
  c.temperature = o.temperature;
  c.top_p = o.top_p;
  c.top_k = o.top_k;
  c.repetition_penalty = o.repetition_penalty;

  Description d = chat(c, on_text);
  d.style = o.style;
  d.prompt = o.prompt;
  if (!o.style.empty()) d.text = pipelines::postprocess_description(pipelines::parse_describe_style(o.style), d.text);
  return d;
}

}  // namespace pictor
