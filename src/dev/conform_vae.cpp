// Conformance for diffusers' image autoencoders: AutoencoderKL (the SD VAE) and AutoencoderTiny
// (TAESD). The case folder is itself the model folder (config.json + diffusion_pytorch_model.safetensors),
// so the model loads exactly as a user's would. Tiling is forced off: the goldens are untiled.
#include <ATen/ATen.h>

#include <map>

#include "dev/conform.hpp"
#include "models/autoencoder_kl.hpp"
#include "models/autoencoder_tiny.hpp"

namespace pictor::dev {
namespace {

// Compares every recorded output with the computed tensor of the same name; a recorded output with no
// computed counterpart fails, so a new output in a case cannot pass unseen.
void compare_all(const CaseDir& c, ConformReport& rep, const std::map<std::string, at::Tensor>& computed,
                 const std::string& kind) {
  for (const auto& name : c.outputs.names()) {
    auto it = computed.find(name);
    if (it == computed.end()) {
      rep.check(name, false, "recorded output not computed by the " + kind + " checker");
      continue;
    }
    rep.close(name, it->second, c.outputs.get(name), c.suggested_atol(name, 1e-4));
  }
}

void check_autoencoder_kl(const CaseDir& c, ConformReport& rep) {
  auto vae = models::AutoencoderKL::load(c.dir);
  vae->set_tiling(false);
  at::InferenceMode guard;
  const at::Tensor image = c.inputs.get("image"), latents = c.inputs.get("latents");
  std::map<std::string, at::Tensor> out;
  out["encoder_output"] = vae->run_encoder(image);
  out["moments"] = vae->quant_conv(out["encoder_output"]);
  const auto posterior = vae->encode(image);
  out["latent_mean"] = posterior.mean;
  out["latent_logvar"] = posterior.logvar;
  out["latent_std"] = posterior.std;
  out["post_quant_conv"] = vae->post_quant_conv(latents);
  out["decoded"] = vae->decode(latents);
  compare_all(c, rep, out, "autoencoder_kl");
}

void check_autoencoder_tiny(const CaseDir& c, ConformReport& rep) {
  auto taesd = models::AutoencoderTiny::load(c.dir);
  taesd->set_tiling(false);
  at::InferenceMode guard;
  std::map<std::string, at::Tensor> out;
  out["encoded_latents"] = taesd->encode(c.inputs.get("image"));
  out["scaled_latents"] = taesd->scale_latents(out["encoded_latents"]);
  out["unscaled_latents"] = taesd->unscale_latents(out["scaled_latents"]);
  out["decoded"] = taesd->decode(c.inputs.get("latents"));
  compare_all(c, rep, out, "autoencoder_tiny");
}

}  // namespace

PICTOR_REGISTER_CONFORM(
    "autoencoder_kl", [](const CaseDir& c) { return case_model_class_is(c, "AutoencoderKL"); }, check_autoencoder_kl);
PICTOR_REGISTER_CONFORM(
    "autoencoder_tiny", [](const CaseDir& c) { return case_model_class_is(c, "AutoencoderTiny"); },
    check_autoencoder_tiny);

}  // namespace pictor::dev
