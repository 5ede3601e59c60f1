// Conformance kind "unet": diffusers UNet2DConditionModel cases (golden sd/sd1/unet, sd/sd2/unet).
// Runs every call listed in case.json on the model in the case folder; call outputs named
// "<call>.debug.<module>" are compared with the forward's debug captures of that module.
#include <ATen/ATen.h>

#include <map>
#include <string>

#include "core/error.hpp"
#include "dev/conform.hpp"
#include "models/unet2d.hpp"

namespace pictor::dev {

namespace {

void check_unet(const CaseDir& c, ConformReport& rep) {
  auto model = models::UNet2DConditionModel::load(c.dir);
  c10::InferenceMode guard;
  for (const auto& call : c.spec.at("calls")) {
    const std::string name = call.at("name").get<std::string>();
    std::map<std::string, at::Tensor> debug;
    at::Tensor out = model->forward(c.inputs.get(name + ".sample"), c.inputs.get(name + ".timestep"),
                                    c.inputs.get(name + ".encoder_hidden_states"), &debug);
    for (const auto& o : call.at("outputs")) {
      const std::string key = o.get<std::string>();
      at::Tensor actual;
      const std::string debug_prefix = name + ".debug.";
      if (key == name + ".sample") {
        actual = out;
      } else if (key.rfind(debug_prefix, 0) == 0) {
        auto it = debug.find(key.substr(debug_prefix.size()));
        if (it != debug.end()) actual = it->second;
      } else {
        throw Error((c.dir / "case.json").string() + ": unknown UNet output '" + key + "'");
      }
      rep.close(key, actual, c.outputs.get(key), c.suggested_atol(key, 1e-4));
    }
  }
}

}  // namespace

PICTOR_REGISTER_CONFORM(
    "unet", [](const CaseDir& c) { return case_model_class_is(c, "UNet2DConditionModel"); }, check_unet);

}  // namespace pictor::dev
