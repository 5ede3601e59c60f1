// `pictor pull REPO_ID`: download a model repository from the Hugging Face hub into the models folder.
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "cli/commands.hpp"
#include "hub/pull.hpp"

namespace pictor::cli {

void add_pull_command(CLI::App& app) {
  struct Args {
    std::string repo_id;
    hub::PullOptions options;
  };
  auto args = std::make_shared<Args>();
  auto* cmd = app.add_subcommand(
      "pull",
      "Download a diffusers/transformers repository from the Hugging Face hub ($HF_ENDPOINT, token $HF_TOKEN) "
      "into MODELS/OWNER/NAME. By default only configs, tokenizer files and *.safetensors are fetched (no "
      ".bin/.ckpt/.onnx, no fp16/ema variants when the plain weights exist). Interrupted downloads resume.");
  cmd->add_option("REPO_ID", args->repo_id, "Repository, e.g. stabilityai/sd-turbo")->required();
  cmd->add_option("--revision", args->options.revision, "Branch, tag or commit")->capture_default_str();
  cmd->add_option("--include", args->options.include,
                  "Download exactly the files matching this glob (repeatable; replaces the default selection)")
      ->allow_extra_args(false);
  cmd->add_option("--exclude", args->options.exclude, "Skip files matching this glob (repeatable)")
      ->allow_extra_args(false);
  cmd->add_option("--models", args->options.models_dir,
                  "Models folder (default: $PICTOR_MODELS or ~/.cache/pictor/models)");
  cmd->add_option("--retries", args->options.max_retries, "Extra attempts per file after a network failure")
      ->capture_default_str();
  cmd->add_option("--stall-timeout", args->options.stall_timeout_s,
                  "Seconds without data before a transfer is abandoned (then retried)")
      ->capture_default_str();
  cmd->add_flag("-q,--quiet", args->options.quiet, "No progress output");
  cmd->callback([args] {
    auto dir = hub::pull(args->repo_id, args->options);
    std::printf("%s\n", dir.string().c_str());
  });
}

}  // namespace pictor::cli
