// Conformance for transformers' CLIPModel cases (vlm/clip): the case folder is the model folder (with
// tokenizer and preprocessor files). Besides the model outputs it checks the CLIP image processor
// against the recorded pixel_values and the tokenizer against the recorded input_ids.
#include <ATen/ATen.h>

#include <regex>

#include "core/error.hpp"
#include "dev/conform.hpp"
#include "formats/image.hpp"
#include "models/clip_image_processor.hpp"
#include "models/clip_model.hpp"
#include "tokenizers/clip_tokenizer.hpp"

namespace pictor::dev {
namespace {

// The test images named in case.json's preprocessing text, in order ("images=[image_a_200x120.png, ...]").
std::vector<std::string> case_images(const CaseDir& c) {
  std::vector<std::string> names;
  if (!c.spec.contains("preprocessing") || !c.spec["preprocessing"].is_string()) return names;
  const std::string text = c.spec["preprocessing"].get<std::string>();
  const std::regex image_re("image_\\w+\\.png");
  for (auto it = std::sregex_iterator(text.begin(), text.end(), image_re); it != std::sregex_iterator(); ++it)
    names.push_back(it->str());
  return names;
}

void check_processor_and_tokenizer(const CaseDir& c, ConformReport& rep, double atol, double rtol) {
  const auto names = case_images(c);
  if (!names.empty() && c.inputs.has("pixel_values")) {
    std::vector<Image> images;
    for (const auto& n : names) images.push_back(read_image(c.dir / n));
    const at::Tensor pixels = models::ClipImageProcessor::load(c.dir).preprocess(images);
    rep.close_rel("processor.pixel_values", pixels, c.inputs.get("pixel_values"), atol, rtol);
  }
  if (c.spec.contains("captions") && c.inputs.has("input_ids")) {
    const auto tok = tokenizers::ClipTokenizer::load(c.dir);
    std::vector<std::vector<int64_t>> rows;
    size_t longest = 0;
    for (const auto& caption : c.spec["captions"]) {
      std::vector<int64_t> ids{tok.bos_id()};
      for (int64_t id : tok.encode(caption.get<std::string>())) ids.push_back(id);
      ids.push_back(tok.eos_id());
      longest = std::max(longest, ids.size());
      rows.push_back(std::move(ids));
    }
    // padding=True: pad every row to the longest with the pad token, mask 0 there.
    at::Tensor ids = at::full({int64_t(rows.size()), int64_t(longest)}, tok.pad_id(), at::kLong);
    at::Tensor mask = at::zeros({int64_t(rows.size()), int64_t(longest)}, at::kLong);
    for (size_t r = 0; r < rows.size(); ++r)
      for (size_t t = 0; t < rows[r].size(); ++t) {
        ids[int64_t(r)][int64_t(t)] = rows[r][t];
        mask[int64_t(r)][int64_t(t)] = 1;
      }
    rep.exact("tokenizer.input_ids", ids, c.inputs.get("input_ids"));
    if (c.inputs.has("attention_mask")) rep.exact("tokenizer.attention_mask", mask, c.inputs.get("attention_mask"));
  }
}

void check_clip(const CaseDir& c, ConformReport& rep) {
  auto model = models::ClipModel::load(c.dir);
  at::InferenceMode guard;
  const auto [atol, rtol] = c.recommended_tolerance();
  auto compare = [&](const std::string& name, const at::Tensor& actual) {
    if (c.outputs.has(name)) rep.close_rel(name, actual, c.outputs.get(name), atol, rtol);
  };

  const at::Tensor mask = c.inputs.has("attention_mask") ? c.inputs.get("attention_mask") : at::Tensor();
  const auto out = model->forward(c.inputs.get("input_ids"), mask, c.inputs.get("pixel_values"));
  compare("image_embeds", out.image_embeds);
  compare("text_embeds", out.text_embeds);
  compare("logits_per_image", out.logits_per_image);
  compare("logits_per_text", out.logits_per_text);
  compare("cosine", models::clip_cosine(out.image_embeds, out.text_embeds));
  compare("clipscore", models::clip_score(out.image_embeds, out.text_embeds));
  compare("vision_pooler_output", out.vision.pooler_output);
  compare("vision_last_hidden_state", out.vision.last_hidden_state);
  compare("text_pooler_output", out.text.pooler_output);
  compare("text_last_hidden_state", out.text.last_hidden_state);
  if (c.spec.contains("logit_scale") && c.spec["logit_scale"].is_number())
    rep.close("logit_scale", at::tensor(std::log(model->logit_scale())),
              at::tensor(c.spec["logit_scale"].get<double>()), 1e-6);

  check_processor_and_tokenizer(c, rep, atol, rtol);

  // Every recorded output must have been compared: a new output in the case would otherwise pass unseen.
  for (const auto& name : c.outputs.names()) {
    bool seen = false;
    for (const auto& r : rep.results()) seen = seen || r.name == name;
    if (!seen) rep.check(name, false, "recorded output not computed by the clip checker");
  }
}

bool is_clip_case(const CaseDir& c) {
  if (!c.spec.contains("class") || !c.spec["class"].is_string()) return false;
  const auto cls = c.spec["class"].get<std::string>();
  return cls == "CLIPModel" || cls.ends_with(".CLIPModel");
}

}  // namespace

PICTOR_REGISTER_CONFORM("clip", is_clip_case, check_clip);

}  // namespace pictor::dev
