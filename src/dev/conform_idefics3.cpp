// Conformance for transformers' Idefics3ForConditionalGeneration cases (vlm/idefics3_*): the case folder
// is the model folder with its processor configs and test images. Checks the image processor (pixel
// values, pixel mask), the prompt expansion (against prompt_expanded*.txt, from prompt_rendered*.txt),
// the vision tower, connector, merged forward (logits, hidden states) and KV-cached generation. The
// model runs on the recorded input_ids so the check does not depend on the tokenizer.
#include <ATen/ATen.h>

#include <fstream>
#include <regex>
#include <sstream>

#include "core/error.hpp"
#include "dev/conform.hpp"
#include "formats/image.hpp"
#include "models/idefics3.hpp"
#include "models/idefics3_processor.hpp"
#include "models/text_generation.hpp"

namespace fs = std::filesystem;

namespace pictor::dev {
namespace {

std::string call_text(const CaseDir& c, const std::string& call) {
  if (!c.spec.contains("calls") || !c.spec["calls"].contains(call) || !c.spec["calls"][call].is_string()) return "";
  return c.spec["calls"][call].get<std::string>();
}

std::optional<int64_t> call_int(const CaseDir& c, const std::string& call, const std::string& arg) {
  const std::string text = call_text(c, call);
  std::smatch m;
  if (!std::regex_search(text, m, std::regex(arg + "=(\\d+)"))) return std::nullopt;
  return std::stoll(m[1].str());
}

std::optional<bool> call_bool(const CaseDir& c, const std::string& call, const std::string& arg) {
  const std::string text = call_text(c, call);
  std::smatch m;
  if (!std::regex_search(text, m, std::regex(arg + "=(True|False)"))) return std::nullopt;
  return m[1].str() == "True";
}

std::string read_text(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) throw Error(p.string() + ": cannot open");
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

void check_idefics3(const CaseDir& c, ConformReport& rep) {
  auto model = models::Idefics3Model::load(c.dir, c10::kCPU, conform_int8_decoder());
  const auto processor = models::Idefics3Processor::load(c.dir);
  at::InferenceMode guard;
  const auto [atol, rtol] = c.recommended_tolerance();
  const at::Tensor ids = c.inputs.get("input_ids"), mask = c.inputs.get("attention_mask");
  const at::Tensor pixel_values = c.inputs.get("pixel_values"), pixel_mask = c.inputs.get("pixel_attention_mask");
  const at::Tensor valid = mask.ne(0);  // left padding is don't-care in the LM outputs
  auto compare = [&](const std::string& name, const at::Tensor& actual) {
    if (c.outputs.has(name)) rep.close_rel(name, actual, c.outputs.get(name), atol, rtol);
  };
  auto compare_valid = [&](const std::string& name, const at::Tensor& actual) {
    if (c.outputs.has(name)) rep.close_rel(name, actual.index({valid}), c.outputs.get(name).index({valid}), atol, rtol);
  };

  // Processor: images of each sample -> frames, and the prompt expansion of each row.
  if (!c.spec.contains("images_per_sample")) throw Error((c.dir / "case.json").string() + ": no images_per_sample");
  std::vector<std::vector<Image>> images;
  for (const auto& sample : c.spec["images_per_sample"]) {
    images.emplace_back();
    for (const auto& name : sample) images.back().push_back(read_image(c.dir / name.get<std::string>()));
  }
  const models::Idefics3Batch batch = processor.preprocess(images, call_bool(c, "inputs", "do_image_splitting"));
  // Pixels are compared as floats and as the 8-bit frames they encode (exactly recoverable).
  rep.close("pixel_values", batch.pixel_values, pixel_values, 1e-6);
  auto to_u8 = [](const at::Tensor& x) { return (x.to(at::kDouble) * 0.5 + 0.5).mul(255).round().to(at::kLong); };
  if (batch.pixel_values.sizes() == pixel_values.sizes())
    rep.exact("pixel_values_uint8", to_u8(batch.pixel_values), to_u8(pixel_values));
  rep.exact("pixel_attention_mask", batch.pixel_attention_mask, pixel_mask.to(at::kLong));
  const int64_t B = ids.size(0);
  for (int64_t b = 0; b < B && b < int64_t(batch.grids.size()); ++b) {
    const std::string suffix = B == 1 ? "" : "_" + std::to_string(b);
    const std::string rendered = read_text(c.dir / ("prompt_rendered" + suffix + ".txt"));
    const std::string expected = read_text(c.dir / ("prompt_expanded" + suffix + ".txt"));
    const std::string expanded = processor.expand_prompt(rendered, batch.grids[size_t(b)]);
    rep.check("prompt_expanded" + suffix, expanded == expected,
              expanded == expected ? "" : "expanded prompt differs from prompt_expanded" + suffix + ".txt");
  }

  // Merged forward.
  models::Idefics3Trace trace;
  const at::Tensor logits = model->forward(ids, mask, pixel_values, pixel_mask, &trace, /*output_hidden_states=*/true);
  compare_valid("logits", logits);
  compare("image_hidden_states", trace.image_hidden_states);
  for (size_t i = 0; i < trace.text_hidden_states.size(); ++i)
    compare_valid("text_hidden_states." + std::to_string(i), trace.text_hidden_states[i]);

  // Vision tower alone on the real frames of sample 0 (no pixel mask: every patch real), then the connector.
  const int64_t n_real0 = pixel_values[0].ne(0.0).flatten(1).any(1).sum().item<int64_t>();
  const at::Tensor frames0 = pixel_values[0].narrow(0, 0, n_real0);
  const int64_t P = model->config().vision.patch_size;
  const at::Tensor all_patches = at::ones({n_real0, frames0.size(2) / P, frames0.size(3) / P}, at::kBool);
  const auto vision = model->vision_model().forward(frames0, all_patches, /*output_hidden_states=*/true);
  compare("vision_last_hidden_state", vision.last_hidden_state);
  for (size_t i = 0; i < vision.hidden_states.size(); ++i)
    compare("vision_hidden_states." + std::to_string(i), vision.hidden_states[i]);
  compare("connector_output", model->connector(vision.last_hidden_state));

  // Greedy generation without EOS (with its per-step logits), then with the saved generation config.
  models::GenerationConfig greedy;
  greedy.max_new_tokens = call_int(c, "generated_ids", "max_new_tokens").value_or(12);
  const auto result = model->generate(ids, mask, pixel_values, pixel_mask, greedy, {}, /*keep_step_logits=*/true);
  if (c.outputs.has("generated_ids")) rep.exact("generated_ids", result.sequences, c.outputs.get("generated_ids"));
  if (c.outputs.has("generate_step_scores")) compare("generate_step_scores", at::stack(result.step_logits, 1));
  if (c.outputs.has("generated_ids_stop_at_eos")) {
    models::GenerationConfig g =
        models::GenerationConfig::from_json(JsonConfig::load(c.dir / "generation_config.json"));
    g.max_new_tokens = call_int(c, "generated_ids_stop_at_eos", "max_new_tokens").value_or(greedy.max_new_tokens);
    rep.exact("generated_ids_stop_at_eos", model->generate(ids, mask, pixel_values, pixel_mask, g).sequences,
              c.outputs.get("generated_ids_stop_at_eos"));
  }

  // Every recorded output must have been compared: a new output in the case would otherwise pass unseen.
  for (const auto& name : c.outputs.names()) {
    bool seen = false;
    for (const auto& r : rep.results()) seen = seen || r.name == name;
    if (!seen) rep.check(name, false, "recorded output not computed by the idefics3 checker");
  }
}

bool is_idefics3_case(const CaseDir& c) {
  return c.spec.contains("class") && c.spec["class"].is_string() &&
         c.spec["class"].get<std::string>().find("Idefics3ForConditionalGeneration") != std::string::npos;
}

}  // namespace

PICTOR_REGISTER_CONFORM("idefics3", is_idefics3_case, check_idefics3);

}  // namespace pictor::dev
