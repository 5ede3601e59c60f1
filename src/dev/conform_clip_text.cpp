// Conformance for transformers' CLIPTextModel cases: the case folder is itself the text_encoder folder
// (config.json + model.safetensors), so the model loads exactly as a user's would.
#include <ATen/ATen.h>

#include "dev/conform.hpp"
#include "models/clip_text.hpp"

namespace pictor::dev {
namespace {

void check_clip_text(const CaseDir& c, ConformReport& rep) {
  auto model = models::ClipTextModel::load(c.dir);
  at::InferenceMode guard;
  auto out = model->forward(c.inputs.get("input_ids"), /*want_hidden_states=*/true);
  const auto& hs = out.hidden_states;

  auto compare = [&](const std::string& name, const at::Tensor& actual) {
    if (c.outputs.has(name)) rep.close(name, actual, c.outputs.get(name), c.suggested_atol(name, 1e-5));
  };
  compare("last_hidden_state", out.last_hidden_state);
  compare("pooler_output", out.pooler_output);
  const at::Tensor penultimate = hs[hs.size() - 2];
  compare("penultimate_hidden_state", penultimate);
  compare("penultimate_hidden_state_final_ln", model->final_layer_norm(penultimate));
  for (size_t i = 0; i < hs.size(); ++i) compare("hidden_states." + std::to_string(i), hs[i]);
  // Every recorded output must have been compared: a new output in the case would otherwise pass unseen.
  for (const auto& name : c.outputs.names()) {
    bool seen = false;
    for (const auto& r : rep.results()) seen = seen || r.name == name;
    if (!seen) rep.check(name, false, "recorded output not computed by the clip_text checker");
  }
}

}  // namespace

PICTOR_REGISTER_CONFORM(
    "clip_text", [](const CaseDir& c) { return case_model_class_is(c, "CLIPTextModel"); }, check_clip_text);

}  // namespace pictor::dev
