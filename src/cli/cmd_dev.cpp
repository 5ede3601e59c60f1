// `pictor dev ...`: developer tools (golden conformance runner, tiny model generators).
#include <cstdio>
#include <string>

#include "cli/commands.hpp"
#include "core/error.hpp"
#include "core/runtime.hpp"
#include "dev/conform.hpp"
#include "dev/make_tiny_sd.hpp"
#include "dev/make_tiny_vlm.hpp"

namespace pictor::cli {

void add_dev_commands(CLI::App& app) {
  auto* dev = app.add_subcommand("dev", "Developer tools: golden conformance, tiny test models");
  dev->require_subcommand(1);

  auto* conform =
      dev->add_subcommand("conform", "Check a golden case folder (case.json + inputs/outputs) against Pictor");
  auto dir = std::make_shared<std::string>();
  auto threads = std::make_shared<int>(0);
  conform->add_option("DIR", *dir, "Case folder in the golden layout")->required();
  conform->add_option("--threads", *threads, "Compute threads (default: all cores)");
  auto int8 = std::make_shared<bool>(false);
  conform->add_flag("--int8", *int8,
                    "Quantize language models to int8 first (measures that format's error; fp32 tolerances will "
                    "mostly be missed)");
  conform->callback([dir, threads, int8] {
    set_threads(*threads);
    dev::set_conform_int8_decoder(*int8);
    std::string kind;
    auto rep = dev::run_conform(*dir, &kind);
    std::printf("case %s (kind: %s)\n%s", dir->c_str(), kind.c_str(), rep.format().c_str());
    std::printf("%d checks, %d failed\n", static_cast<int>(rep.results().size()), rep.failures());
    if (!rep.all_pass()) throw CLI::RuntimeError(1);
  });

  auto* tiny =
      dev->add_subcommand("make-tiny-sd", "Write a tiny random-weight Stable Diffusion folder (diffusers layout)");
  auto tdir = std::make_shared<std::string>();
  auto topt = std::make_shared<dev::TinySdOptions>();
  auto taesd = std::make_shared<std::string>();
  tiny->add_option("DIR", *tdir, "Output folder")->required();
  tiny->add_option("--seed", topt->seed, "Weight seed");
  tiny->add_flag("--inpainting", topt->inpainting, "9-channel inpainting UNet");
  tiny->add_flag("--v-prediction", topt->v_prediction, "v-prediction scheduler config (SD 2.x 768 style)");
  tiny->add_option("--taesd", *taesd, "Also write a tiny TAESD (AutoencoderTiny) folder here");
  tiny->callback([tdir, topt, taesd] {
    topt->taesd_dir = *taesd;
    dev::make_tiny_sd(*tdir, *topt);
    std::printf("wrote %s\n", tdir->c_str());
  });

  auto* tiny_vlm = dev->add_subcommand(
      "make-tiny-vlm", "Write a tiny random-weight Idefics3/SmolVLM folder (transformers layout, own tokenizer)");
  auto vdir = std::make_shared<std::string>();
  auto vopt = std::make_shared<dev::TinyVlmOptions>();
  tiny_vlm->add_option("DIR", *vdir, "Output folder")->required();
  tiny_vlm->add_option("--seed", vopt->seed, "Weight seed");
  tiny_vlm->callback([vdir, vopt] {
    dev::make_tiny_vlm(*vdir, *vopt);
    std::printf("wrote %s\n", vdir->c_str());
  });
}

}  // namespace pictor::cli
