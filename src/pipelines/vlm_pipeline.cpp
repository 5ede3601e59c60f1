#include "pipelines/vlm_pipeline.hpp"

#include <ATen/ATen.h>

#include <algorithm>

#include "core/error.hpp"
#include "core/json_file.hpp"
#include "models/clip_image_processor.hpp"
#include "models/idefics3.hpp"
#include "models/idefics3_processor.hpp"
#include "models/llava.hpp"
#include "tokenizers/chat_template.hpp"

namespace fs = std::filesystem;

namespace pictor::pipelines {

namespace {

constexpr const char* kReplacementChar = "\xEF\xBF\xBD";  // what decode() makes of an incomplete UTF-8 tail

std::string left_trim(const std::string& s) {
  size_t b = 0;
  while (b < s.size() && (s[b] == ' ' || s[b] == '\n' || s[b] == '\t' || s[b] == '\r')) ++b;
  return s.substr(b);
}

std::string strip(const std::string& s) {
  std::string out = left_trim(s);
  while (!out.empty() && (out.back() == ' ' || out.back() == '\n' || out.back() == '\t' || out.back() == '\r'))
    out.pop_back();
  return out;
}

// Streams the decoded text of a growing token list as pieces: each call re-decodes all tokens (BPE
// pieces can only be decoded correctly together) and emits what was not emitted yet.
class TextStreamer {
 public:
  TextStreamer(const tokenizers::LlmTokenizer& tok, std::function<bool(const std::string&)> sink)
      : tok_(tok), sink_(std::move(sink)) {}
  bool push(int64_t token) {
    tokens_.push_back(token);
    std::string text = left_trim(tok_.decode(tokens_, /*skip_special_tokens=*/true));
    // Hold back an incomplete multi-byte character until its last byte arrives.
    while (text.size() >= 3 && text.compare(text.size() - 3, 3, kReplacementChar) == 0) text.resize(text.size() - 3);
    if (text.size() <= emitted_.size() || text.compare(0, emitted_.size(), emitted_) != 0) return true;
    const std::string piece = text.substr(emitted_.size());
    emitted_ = std::move(text);
    return sink_(piece);
  }

 private:
  const tokenizers::LlmTokenizer& tok_;
  std::function<bool(const std::string&)> sink_;
  std::vector<int64_t> tokens_;
  std::string emitted_;
};

}  // namespace

const char* vlm_family_name(VlmFamily family) {
  return family == VlmFamily::Idefics3 ? "idefics3" : "llava";
}

VlmFamily detect_vlm_family(const fs::path& config_json) {
  const JsonConfig cfg = JsonConfig::load(config_json);
  const std::string type = cfg.get<std::string>("model_type", "");
  if (type == "idefics3") return VlmFamily::Idefics3;
  if (type == "llava") return VlmFamily::Llava;
  std::string arch;
  if (cfg.has("architectures") && cfg.raw().at("architectures").is_array() && !cfg.raw().at("architectures").empty() &&
      cfg.raw().at("architectures")[0].is_string())
    arch = cfg.raw().at("architectures")[0].get<std::string>();
  if (type.empty() && arch == "Idefics3ForConditionalGeneration") return VlmFamily::Idefics3;
  if (type.empty() && arch == "LlavaForConditionalGeneration") return VlmFamily::Llava;
  throw Unsupported(config_json.string() + ": field 'model_type' is '" + type + "' (architectures '" + arch +
                    "'); image description supports idefics3 (SmolVLM) and llava (LLaVA-1.5)");
}

struct VisionLanguageModel::Impl {
  fs::path dir;
  VlmFamily family = VlmFamily::Idefics3;
  std::unique_ptr<tokenizers::LlmTokenizer> tokenizer;
  std::unique_ptr<tokenizers::ChatTemplate> chat_template;
  models::GenerationConfig generation;
  int64_t max_positions = 0;
  // Idefics3 / SmolVLM
  std::unique_ptr<models::Idefics3Model> idefics3;
  std::unique_ptr<models::Idefics3Processor> idefics3_processor;
  // LLaVA
  std::unique_ptr<models::LlavaModel> llava;
  std::unique_ptr<models::ClipImageProcessor> clip_processor;
  std::string llava_image_token = "<image>";

  // The family's language model (Idefics3's text model or LLaVA's).
  const models::LlamaModel& language_model() const {
    return family == VlmFamily::Idefics3 ? idefics3->text_model() : llava->language_model();
  }
};

VisionLanguageModel::VisionLanguageModel(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
VisionLanguageModel::~VisionLanguageModel() = default;

std::unique_ptr<VisionLanguageModel> VisionLanguageModel::load(const fs::path& dir, c10::Device device,
                                                               bool int8_decoder) {
  if (!fs::is_directory(dir)) throw Error("model folder '" + dir.string() + "' not found");
  auto impl = std::make_unique<Impl>();
  impl->dir = dir;
  impl->family = detect_vlm_family(dir / "config.json");
  impl->tokenizer = tokenizers::load_llm_tokenizer(dir);
  impl->chat_template = std::make_unique<tokenizers::ChatTemplate>(tokenizers::ChatTemplate::load(dir));
  if (fs::exists(dir / "generation_config.json"))
    impl->generation = models::GenerationConfig::from_json(JsonConfig::load(dir / "generation_config.json"));
  if (impl->family == VlmFamily::Idefics3) {
    impl->idefics3 = models::Idefics3Model::load(dir, device, int8_decoder);
    impl->idefics3_processor = std::make_unique<models::Idefics3Processor>(models::Idefics3Processor::load(dir));
    impl->max_positions = impl->idefics3->config().text.max_position_embeddings;
    const int64_t model_seq = impl->idefics3->config().image_seq_len();
    const int64_t proc_seq = impl->idefics3_processor->config().image_seq_len;
    if (model_seq != proc_seq)
      throw Error((dir / "processor_config.json").string() + ": field 'image_seq_len' is " + std::to_string(proc_seq) +
                  " but config.json's vision settings give " + std::to_string(model_seq) + " tokens per frame");
  } else {
    impl->llava = models::LlavaModel::load(dir, device, int8_decoder);
    impl->clip_processor = std::make_unique<models::ClipImageProcessor>(models::ClipImageProcessor::load(dir));
    impl->max_positions = impl->llava->config().text.max_position_embeddings;
    if (fs::exists(dir / "processor_config.json"))
      impl->llava_image_token =
          JsonConfig::load(dir / "processor_config.json").get<std::string>("image_token", impl->llava_image_token);
  }
  // The end-of-turn token ends an answer even when generation_config.json names another EOS (SmolVLM's
  // tokenizer EOS is <|im_end|>, its turns end with <end_of_utterance>).
  auto& eos = impl->generation.eos_token_ids;
  for (const char* end : {"<end_of_utterance>"}) {
    const auto id = impl->tokenizer->token_to_id(end);
    if (id && std::find(eos.begin(), eos.end(), *id) == eos.end()) eos.push_back(*id);
  }
  if (eos.empty() && impl->tokenizer->eos_id()) eos.push_back(*impl->tokenizer->eos_id());
  return std::unique_ptr<VisionLanguageModel>(new VisionLanguageModel(std::move(impl)));
}

VlmFamily VisionLanguageModel::family() const {
  return impl_->family;
}
const fs::path& VisionLanguageModel::dir() const {
  return impl_->dir;
}
const models::GenerationConfig& VisionLanguageModel::default_generation() const {
  return impl_->generation;
}
const tokenizers::LlmTokenizer& VisionLanguageModel::tokenizer() const {
  return *impl_->tokenizer;
}

bool VisionLanguageModel::decoder_int8() const {
  return impl_->language_model().quantized_int8();
}

int64_t VisionLanguageModel::decoder_int8_saved_bytes() const {
  return impl_->language_model().int8_saved_bytes();
}

nlohmann::json VisionLanguageModel::user_turn(size_t num_images, const std::string& text) {
  nlohmann::json content = nlohmann::json::array();
  for (size_t i = 0; i < num_images; ++i) content.push_back({{"type", "image"}});
  content.push_back({{"type", "text"}, {"text", text}});
  return nlohmann::json::array({{{"role", "user"}, {"content", content}}});
}

std::string VisionLanguageModel::render_prompt(const nlohmann::json& messages) const {
  return impl_->chat_template->render(messages, /*add_generation_prompt=*/true);
}

VlmInputs VisionLanguageModel::prepare(const std::vector<Image>& images, const nlohmann::json& messages) const {
  if (images.empty()) throw Error("describe needs at least one image");
  VlmInputs in;
  in.rendered_prompt = render_prompt(messages);
  if (impl_->family == VlmFamily::Idefics3) {
    const models::Idefics3Batch batch = impl_->idefics3_processor->preprocess({images});
    in.pixel_values = batch.pixel_values;
    in.pixel_attention_mask = batch.pixel_attention_mask;
    in.expanded_prompt = impl_->idefics3_processor->expand_prompt(in.rendered_prompt, batch.grids[0]);
  } else {
    in.pixel_values = impl_->clip_processor->preprocess(images);
    // LlavaProcessor expands every marker; the count must match the images (the model checks the ids).
    size_t markers = 0;
    for (size_t p = 0; (p = in.rendered_prompt.find(impl_->llava_image_token, p)) != std::string::npos;
         p += impl_->llava_image_token.size())
      ++markers;
    if (markers != images.size())
      throw Error("the prompt has " + std::to_string(markers) + " image markers '" + impl_->llava_image_token +
                  "' for " + std::to_string(images.size()) + " images");
    in.expanded_prompt = models::expand_image_tokens(in.rendered_prompt, impl_->llava_image_token,
                                                     impl_->llava->config().image_tokens_per_image());
  }
  const std::vector<int64_t> ids = impl_->tokenizer->encode(in.expanded_prompt, /*add_special_tokens=*/true);
  in.input_ids = at::tensor(ids, at::kLong).unsqueeze(0);
  in.attention_mask = at::ones_like(in.input_ids);
  return in;
}

VlmOutput VisionLanguageModel::generate(const VlmInputs& in, const models::GenerationConfig& config,
                                        const VlmCallbacks& callbacks) const {
  c10::InferenceMode guard;
  const int64_t T = in.input_ids.size(1);
  if (impl_->max_positions > 0 && T + config.max_new_tokens > impl_->max_positions)
    throw Error("the prompt has " + std::to_string(T) + " tokens (images included); with " +
                std::to_string(config.max_new_tokens) + " new tokens it exceeds the model's " +
                std::to_string(impl_->max_positions) +
                " positions (config.json max_position_embeddings): use fewer or smaller images or fewer tokens");
  models::GenerationConfig g = config;
  if (g.eos_token_ids.empty()) g.eos_token_ids = impl_->generation.eos_token_ids;
  if (!g.pad_token_id) g.pad_token_id = impl_->generation.pad_token_id;
  models::GenerationCallbacks cb;
  std::unique_ptr<TextStreamer> streamer;
  if (callbacks.on_text) {
    streamer = std::make_unique<TextStreamer>(*impl_->tokenizer, callbacks.on_text);
    cb.on_token = [&](int, int64_t token) { return streamer->push(token); };
  }
  if (!g.stop_strings.empty())
    cb.decode = [&](int, const std::vector<int64_t>& t) { return impl_->tokenizer->decode(t, true); };

  const auto device = impl_->language_model().device();
  const at::Tensor ids = in.input_ids.to(device), mask = in.attention_mask.to(device);
  const at::Tensor pixels = in.pixel_values.to(device);
  const models::GenerationResult r =
      impl_->family == VlmFamily::Idefics3
          ? impl_->idefics3->generate(ids, mask, pixels, in.pixel_attention_mask.to(device), g, cb)
          : impl_->llava->generate(ids, pixels, mask, g, cb);

  VlmOutput out;
  out.prompt_tokens = T;
  out.finished = !r.finished.empty() && r.finished[0];
  out.cancelled = r.stopped_by_callback;
  const at::Tensor fresh = r.sequences[0].slice(0, T).to(at::kCPU).contiguous();
  out.new_tokens.assign(fresh.data_ptr<int64_t>(), fresh.data_ptr<int64_t>() + fresh.numel());
  // Nothing after the first EOS belongs to the answer (a finished single row is never padded, but be exact).
  const auto& eos = g.eos_token_ids;
  const auto first_eos = std::find_if(out.new_tokens.begin(), out.new_tokens.end(),
                                      [&](int64_t t) { return std::find(eos.begin(), eos.end(), t) != eos.end(); });
  const bool has_eos = first_eos != out.new_tokens.end();
  if (has_eos) out.new_tokens.erase(first_eos + 1, out.new_tokens.end());
  // The EOS itself is not text, even when the tokenizer does not mark it special.
  std::vector<int64_t> answer = out.new_tokens;
  if (has_eos) answer.pop_back();
  out.text = strip(impl_->tokenizer->decode(answer, /*skip_special_tokens=*/true));
  return out;
}

VlmOutput VisionLanguageModel::describe(const std::vector<Image>& images, const std::string& prompt,
                                        const models::GenerationConfig& config, const VlmCallbacks& callbacks) const {
  return generate(prepare(images, user_turn(images.size(), prompt)), config, callbacks);
}

}  // namespace pictor::pipelines
