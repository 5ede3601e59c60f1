// The "describe" job: a chat (or a styled description) about stored images with
// an image-to-text model. Parameters and result are documented in
// job_kinds.hpp.
#include <string>
#include <vector>

#include "core/error.hpp"
#include "jobs/job_kinds.hpp"
#include "jobs/model_catalog.hpp"
#include "pictor/image_to_text.hpp"

namespace pictor::jobs {

using nlohmann::json;

namespace {

Image load_image(storage::ImageStore& store, const std::string& id) {
  const auto stored = store.get(id);
  if (!stored) throw Error("describe job: the image " + id + " no longer exists");
  return store.decode(*stored);
}

// Messages with {"type":"image","image_id"} parts → ChatMessages with indices
// into `images`.
std::vector<ChatMessage> chat_messages(const json& messages, storage::ImageStore& store, std::vector<Image>& images) {
  if (!messages.is_array() || messages.empty()) throw Error("describe job: params.messages must be a non-empty array");
  std::vector<ChatMessage> out;
  for (const json& m : messages) {
    ChatMessage msg{m.value("role", ""), {}};
    const json& content = m.contains("content") ? m.at("content") : json();
    if (content.is_string()) {
      msg.parts.push_back(ChatPart::text_part(content.get<std::string>()));
    } else if (content.is_array()) {
      for (const json& part : content) {
        const std::string type = part.value("type", "");
        if (type == "text") {
          msg.parts.push_back(ChatPart::text_part(part.value("text", "")));
        } else if (type == "image") {
          images.push_back(load_image(store, part.value("image_id", "")));
          msg.parts.push_back(ChatPart::image_part(images.size() - 1));
        } else {
          throw Error("describe job: unknown content part type \"" + type + "\"");
        }
      }
    }
    out.push_back(std::move(msg));
  }
  return out;
}

}  // namespace

json run_describe_job(JobContext& ctx) {
  const json& p = ctx.params;
  if (ctx.cancelled && ctx.cancelled()) throw Cancelled();
  std::vector<Image> images;
  std::vector<ChatMessage> messages = chat_messages(p.value("messages", json()), ctx.images, images);
  const std::shared_ptr<ImageToText> engine = ctx.models.image_to_text(ctx.model);

  // Streams pieces to subscribers and stops generating once the job is
  // cancelled.
  bool cancelled = false;
  const TextStreamCallback on_text = [&](const std::string& piece) {
    if (ctx.cancelled && ctx.cancelled()) {
      cancelled = true;
      return false;
    }
    if (ctx.text) ctx.text(piece);
    return true;
  };

  Description d;
  const std::string style = p.value("style", "");
  if (!style.empty()) {
    // A styled description: the images and the user's text (if any) as the
    // instruction, then the style's post-processing (which can only be applied
    // to the whole answer, so nothing is streamed).
    DescribeOptions o;
    o.images = images;
    o.style = style;
    for (const ChatMessage& m : messages)
      for (const ChatPart& part : m.parts)
        if (m.role == "user" && part.kind == ChatPart::Kind::Text && !part.text.empty())
          o.prompt += (o.prompt.empty() ? "" : "\n") + part.text;
    o.max_tokens = p.value("max_tokens", 0);
    o.temperature = p.value("temperature", 0.0);
    o.top_p = p.value("top_p", 1.0);
    if (p.contains("seed") && !p.at("seed").is_null()) o.seed = p.at("seed").get<uint64_t>();
    d = engine->describe(o, [&](const std::string&) { return !(cancelled = ctx.cancelled && ctx.cancelled()); });
    if (!cancelled && ctx.text && !d.text.empty()) ctx.text(d.text);
  } else {
    ChatOptions o;
    o.messages = std::move(messages);
    o.images = std::move(images);
    o.max_tokens = p.value("max_tokens", 512);
    o.temperature = p.value("temperature", 0.0);
    o.top_p = p.value("top_p", 1.0);
    if (p.contains("seed") && !p.at("seed").is_null()) o.seed = p.at("seed").get<uint64_t>();
    if (p.contains("stop") && p.at("stop").is_array())
      for (const json& s : p.at("stop")) o.stop.push_back(s.get<std::string>());
    d = engine->chat(o, on_text);
  }
  if (cancelled || d.cancelled) throw Cancelled();

  return {{"text", d.text},
          {"finish_reason", d.finish_reason == "length" ? "length" : "stop"},
          {"prompt_tokens", d.prompt_tokens},
          {"completion_tokens", d.new_tokens},
          {"seed", d.seed},
          {"model", ctx.model}};
}

}  // namespace pictor::jobs
