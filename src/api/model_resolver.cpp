// Resolving `--model`: a local folder, a hub repo id, or the default model (pulled on first use).
#include <filesystem>

#include "core/error.hpp"
#include "core/runtime.hpp"
#include "hub/pull.hpp"
#include "pictor/image_to_text.hpp"
#include "pictor/text_to_image.hpp"

namespace fs = std::filesystem;

namespace pictor {

namespace {

// `default_repo` is used for an empty `model`; `folder_kind` says what a local folder must hold.
std::string resolve_dir(const std::string& model, bool allow_pull, const char* default_repo,
                        const std::string& folder_kind) {
  const std::string repo = model.empty() ? std::string(default_repo) : model;
  if (fs::is_directory(repo)) return repo;
  // "owner/name" that is not a local folder is a hub repo id.
  const bool looks_like_repo = repo.find('/') != std::string::npos && repo.front() != '/' && repo.front() != '.' &&
                               repo.find('/') == repo.rfind('/');
  if (!looks_like_repo)
    throw Error("model folder '" + repo + "' not found (pass --model DIR with a " + folder_kind + ")");
  if (auto local = hub::find_local(repo)) return local->string();
  const std::string how = "Run `pictor pull " + repo + "` on a machine with internet access (models go to " +
                          models_dir() + ", set PICTOR_MODELS to change), or pass --model DIR with a " + folder_kind +
                          ".";
  if (!allow_pull) throw Error("model '" + repo + "' is not downloaded. " + how);
  try {
    return hub::pull(repo, hub::PullOptions{}).string();
  } catch (const Error& e) {
    throw Error("model '" + repo + "' is not downloaded and could not be fetched: " + e.what() + "\n" + how);
  }
}

}  // namespace

std::string resolve_model_dir(const std::string& model, bool allow_pull) {
  return resolve_dir(model, allow_pull, kDefaultModelRepo, "diffusers-layout Stable Diffusion folder");
}

std::string resolve_vlm_model_dir(const std::string& model, bool allow_pull) {
  return resolve_dir(model, allow_pull, kDefaultVlmRepo,
                     "transformers-layout vision-language model folder (SmolVLM/Idefics3 or LLaVA)");
}

}  // namespace pictor
