#pragma once
// `pictor pull`: downloading a diffusers/transformers repository from the Hugging Face hub.
//
// On-disk layout: MODELS/OWNER/NAME/ holds the repository's files at their repository paths
// (MODELS/stabilityai/sd-turbo/unet/config.json ...), MODELS being --models, else $PICTOR_MODELS, else
// ~/.cache/pictor/models. A file being downloaded is FILE.part beside its final name (kept to resume an
// interrupted pull). MODELS/OWNER/NAME/.pictor-complete (JSON: repo_id, revision, commit sha, files) is
// written only after every selected file was downloaded and verified; a folder without it is never used
// (find_local ignores it) and the next pull completes it.
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace pictor::hub {

inline constexpr const char* kCompleteMarker = ".pictor-complete";

struct PullOptions {
  std::string revision = "main";     // branch, tag or commit
  std::vector<std::string> include;  // globs; non-empty replaces the default file rule (see file_filter.hpp)
  std::vector<std::string> exclude;  // globs removed from the selection
  std::string models_dir;            // empty: pictor::models_dir()
  std::string endpoint;              // empty: $HF_ENDPOINT, else https://huggingface.co
  std::optional<std::string> token;  // nullopt: $HF_TOKEN (empty: none)
  long connect_timeout_s = 15;
  long stall_timeout_s = 60;   // a transfer slower than 1 byte/s for this long fails (and is retried)
  int max_retries = 3;         // extra attempts per file after retryable failures, resuming the .part
  double retry_delay_s = 1.0;  // doubled after each retry
  bool quiet = false;          // no progress or messages on stderr
};

// Folder of a repository under `models_root` (empty: pictor::models_dir()). Validates repo_id.
std::filesystem::path local_dir(const std::string& repo_id, const std::string& models_root = "");

// Downloads (or completes, or updates) repo_id and returns its folder. Throws pictor::Error (hub::HubError
// for network/HTTP failures) with a message naming the repository, file and what to do.
std::filesystem::path pull(const std::string& repo_id, const PullOptions& options = {});

// The folder of a completely pulled repo_id, or nullopt (absent or interrupted pull).
std::optional<std::filesystem::path> find_local(const std::string& repo_id, const std::string& models_root = "");

}  // namespace pictor::hub
