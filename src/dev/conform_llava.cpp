// Conformance for transformers' LlavaForConditionalGeneration cases (vlm/llava): the case folder is the
// model folder. Checks the vision tower's hidden states, the selected and projected image features,
// the logits with the features spliced in, greedy generation and its per-step logits, and the image
// processor against the recorded pixel_values. The prompt ids come from inputs.safetensors, so the
// check does not depend on the byte-level BPE tokenizer.
#include <ATen/ATen.h>

#include <regex>

#include "core/error.hpp"
#include "dev/conform.hpp"
#include "formats/image.hpp"
#include "models/clip_image_processor.hpp"
#include "models/llava.hpp"

namespace pictor::dev {
namespace {

void check_llava(const CaseDir& c, ConformReport& rep) {
  auto model = models::LlavaModel::load(c.dir, c10::kCPU, conform_int8_decoder());
  at::InferenceMode guard;
  const auto [atol, rtol] = c.recommended_tolerance();
  auto compare = [&](const std::string& name, const at::Tensor& actual) {
    if (c.outputs.has(name)) rep.close_rel(name, actual, c.outputs.get(name), atol, rtol);
  };

  const at::Tensor ids = c.inputs.get("input_ids"), pixels = c.inputs.get("pixel_values");
  const at::Tensor mask = c.inputs.has("attention_mask") ? c.inputs.get("attention_mask") : at::Tensor();

  const auto vision = model->vision_tower().forward(pixels, /*want_hidden_states=*/true);
  for (size_t i = 0; i < vision.hidden_states.size(); ++i)
    compare("vision_hidden_states." + std::to_string(i), vision.hidden_states[i]);
  const at::Tensor selected = model->select_image_features(pixels);
  compare("image_features_selected", selected);
  compare("image_hidden_states", model->project(selected));
  compare("logits", model->forward(ids, pixels, mask));

  models::GenerationConfig greedy;
  greedy.max_new_tokens = c.call_int_argument("generated_ids", "max_new_tokens").value_or(12);
  const auto result = model->generate(ids, pixels, mask, greedy, {}, /*keep_step_logits=*/true);
  if (c.outputs.has("generated_ids")) rep.exact("generated_ids", result.sequences, c.outputs.get("generated_ids"));
  compare("generate_step_scores", at::stack(result.step_logits, 1));

  // The processor side: pixel_values from the case's images, and the image-token count LlavaProcessor
  // expands `<image>` to.
  if (c.spec.contains("images") && c.spec["images"].is_array()) {
    std::vector<Image> images;
    for (const auto& n : c.spec["images"]) images.push_back(read_image(c.dir / n.get<std::string>()));
    rep.close_rel("processor.pixel_values", models::ClipImageProcessor::load(c.dir).preprocess(images), pixels, atol,
                  rtol);
    const int64_t n_image_ids = ids.eq(model->config().image_token_index).sum().item<int64_t>();
    rep.check("processor.image_token_count",
              n_image_ids == int64_t(images.size()) * model->config().image_tokens_per_image(),
              std::to_string(n_image_ids) + " <image> ids for " + std::to_string(images.size()) + " image(s)");
  }

  for (const auto& name : c.outputs.names()) {
    bool seen = false;
    for (const auto& r : rep.results()) seen = seen || r.name == name;
    if (!seen) rep.check(name, false, "recorded output not computed by the llava checker");
  }
}

bool is_llava_case(const CaseDir& c) {
  if (!c.spec.contains("class") || !c.spec["class"].is_string()) return false;
  const auto cls = c.spec["class"].get<std::string>();
  return cls == "LlavaForConditionalGeneration" || cls.ends_with(".LlavaForConditionalGeneration");
}

}  // namespace

PICTOR_REGISTER_CONFORM("llava", is_llava_case, check_llava);

}  // namespace pictor::dev
