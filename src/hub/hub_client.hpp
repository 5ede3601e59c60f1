#pragma once
// Talking to a Hugging Face hub (or anything speaking its API, e.g. a mirror set with HF_ENDPOINT):
// listing a repository's files at a revision and mapping HTTP failures to messages a user can act on.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "hub/http.hpp"

namespace pictor::hub {

struct RepoFile {
  std::string path;              // path inside the repository ("unet/config.json")
  std::optional<uint64_t> size;  // from ?blobs=true
  std::string sha256;            // LFS files only (lower-case hex); empty when the hub gives none
};

struct RepoListing {
  std::string repo_id;
  std::string revision;    // as asked ("main", a tag, a commit)
  std::string commit_sha;  // what the revision resolved to (empty if the hub did not say)
  std::vector<RepoFile> files;
};

// $HF_ENDPOINT, else https://huggingface.co; without a trailing slash.
std::string default_endpoint();

// Throws pictor::Error unless `repo_id` is "name" or "owner/name" made of letters, digits, '-', '_', '.'.
void validate_repo_id(const std::string& repo_id);

// What a failed request was about, to name it in the error.
struct RequestContext {
  std::string endpoint;
  std::string repo_id;
  std::string revision;
  std::string file;  // empty for the listing
  bool has_token = false;
};

// Throws the HubError for a non-2xx response: 401/403 (gated/private: HF_TOKEN), 404 (unknown repo,
// revision or file), 429/5xx (retryable), anything else.
[[noreturn]] void throw_for_status(const HttpResponse& response, const RequestContext& context);

class HubClient {
 public:
  HubClient(std::string endpoint, HttpSettings settings);

  // GET {endpoint}/api/models/{repo_id}/revision/{revision}?blobs=true
  RepoListing list_files(const std::string& repo_id, const std::string& revision) const;
  // {endpoint}/{repo_id}/resolve/{revision}/{path}
  std::string file_url(const std::string& repo_id, const std::string& revision, const std::string& path) const;

  const std::string& endpoint() const { return endpoint_; }
  const HttpSettings& settings() const { return settings_; }

 private:
  std::string endpoint_;
  HttpSettings settings_;
};

}  // namespace pictor::hub
