// Conformance for transformers' SiglipVisionModel cases (vlm/siglip_vision): the case folder is the
// model folder; pixel_values come preprocessed in inputs.safetensors.
#include <ATen/ATen.h>

#include "dev/conform.hpp"
#include "models/siglip_vision.hpp"

namespace pictor::dev {
namespace {

void check_siglip(const CaseDir& c, ConformReport& rep) {
  auto model = models::SiglipVisionModel::load(c.dir);
  at::InferenceMode guard;
  const auto [atol, rtol] = c.recommended_tolerance();
  auto compare = [&](const std::string& name, const at::Tensor& actual) {
    if (c.outputs.has(name)) rep.close_rel(name, actual, c.outputs.get(name), atol, rtol);
  };
  const auto out = model->forward(c.inputs.get("pixel_values"), {}, /*output_hidden_states=*/true);
  compare("last_hidden_state", out.last_hidden_state);
  if (out.pooler_output.defined()) compare("pooler_output", out.pooler_output);
  for (size_t i = 0; i < out.hidden_states.size(); ++i)
    compare("hidden_states." + std::to_string(i), out.hidden_states[i]);

  // Every recorded output must have been compared: a new output in the case would otherwise pass unseen.
  for (const auto& name : c.outputs.names()) {
    bool seen = false;
    for (const auto& r : rep.results()) seen = seen || r.name == name;
    if (!seen) rep.check(name, false, "recorded output not computed by the siglip_vision checker");
  }
}

bool is_siglip_vision_case(const CaseDir& c) {
  if (!c.spec.contains("class") || !c.spec["class"].is_string()) return false;
  const std::string cls = c.spec["class"].get<std::string>();
  const std::string want = "SiglipVisionModel";
  return cls.size() >= want.size() && cls.compare(cls.size() - want.size(), want.size(), want) == 0;
}

}  // namespace

PICTOR_REGISTER_CONFORM("siglip_vision", is_siglip_vision_case, check_siglip);

}  // namespace pictor::dev
