#include "hub/hub_client.hpp"

#include <cctype>
#include <nlohmann/json.hpp>

#include "core/runtime.hpp"
#include "hub/sha256.hpp"

namespace pictor::hub {

namespace {

using json = nlohmann::json;

// The hub explains most refusals in a JSON {"error": "..."} body or an X-Error-Message header.
std::string server_explanation(const HttpResponse& r) {
  std::string msg = r.chain_header("x-error-message");
  if (msg.empty()) {
    json body = json::parse(r.body, nullptr, /*allow_exceptions=*/false);
    if (body.is_object() && body.contains("error") && body["error"].is_string()) msg = body["error"];
  }
  return msg.empty() ? std::string() : " [hub says: " + msg + "]";
}

std::string what_of(const RequestContext& c) {
  std::string what = "repository '" + c.repo_id + "' at revision '" + c.revision + "'";
  return c.file.empty() ? what : "file '" + c.file + "' of " + what;
}

}  // namespace

std::string default_endpoint() {
  std::string e = env_or("HF_ENDPOINT", "https://huggingface.co");
  while (!e.empty() && e.back() == '/') e.pop_back();
  return e;
}

void validate_repo_id(const std::string& repo_id) {
  auto bad = [&](const std::string& why) {
    throw Error("invalid repository id '" + repo_id + "': " + why +
                " (expected OWNER/NAME, e.g. stabilityai/sd-turbo)");
  };
  if (repo_id.empty()) bad("empty");
  if (repo_id.size() > 200) bad("longer than 200 characters");
  size_t slashes = 0;
  for (char c : repo_id) {
    if (c == '/') {
      ++slashes;
    } else if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' && c != '.') {
      bad(std::string("character '") + c + "' is not allowed");
    }
  }
  if (slashes > 1) bad("more than one '/'");
  size_t start = 0;
  while (start <= repo_id.size()) {
    size_t end = repo_id.find('/', start);
    if (end == std::string::npos) end = repo_id.size();
    std::string part = repo_id.substr(start, end - start);
    if (part.empty()) bad("empty owner or name");
    if (part.front() == '.' || part.front() == '-') bad("'" + part + "' must not start with '.' or '-'");
    start = end + 1;
  }
}

void throw_for_status(const HttpResponse& r, const RequestContext& c) {
  const long s = r.status;
  const std::string code = r.chain_header("x-error-code");
  const std::string why = server_explanation(r);
  const std::string status = "HTTP " + std::to_string(s);
  if (s == 401 || s == 403) {
    if (code == "GatedRepo")
      throw HubError("repository '" + c.repo_id + "' is gated (" + status + "): accept its conditions on " +
                         c.endpoint + "/" + c.repo_id + " and set HF_TOKEN to a token of that account" + why,
                     false, s);
    if (code == "RepoNotFound")
      throw HubError("repository '" + c.repo_id + "' not found on " + c.endpoint + " (" + status +
                         "): check the name; if it is private, set HF_TOKEN" + why,
                     false, s);
    std::string token_hint = c.has_token ? "HF_TOKEN is set but was rejected or lacks access to it"
                                         : "the repository is gated or private: set HF_TOKEN to a token with access";
    throw HubError("access to " + what_of(c) + " denied by " + c.endpoint + " (" + status + "): " + token_hint + why,
                   false, s);
  }
  if (s == 404) {
    if (code == "RepoNotFound")
      throw HubError("repository '" + c.repo_id + "' not found on " + c.endpoint + " (" + status +
                         "): check the repository id" + why,
                     false, s);
    if (code == "RevisionNotFound")
      throw HubError("revision '" + c.revision + "' not found in repository '" + c.repo_id + "' (" + status + ")" + why,
                     false, s);
    if (code == "EntryNotFound" || !c.file.empty())
      throw HubError(what_of(c) + " not found on " + c.endpoint + " (" + status + ")" + why, false, s);
    throw HubError("repository '" + c.repo_id + "' or revision '" + c.revision + "' not found on " + c.endpoint + " (" +
                       status + "): check the repository id and --revision" + why,
                   false, s);
  }
  if (s == 429)
    throw HubError(c.endpoint + " is rate-limiting requests (" + status + ") for " + what_of(c) + why, true, s);
  if (s >= 500)
    throw HubError(c.endpoint + " had a server error (" + status + ") for " + what_of(c) + ": try again later" + why,
                   true, s);
  throw HubError("unexpected answer " + status + " from " + c.endpoint + " for " + what_of(c) + why, false, s);
}

HubClient::HubClient(std::string endpoint, HttpSettings settings)
    : endpoint_(std::move(endpoint)), settings_(std::move(settings)) {
  while (!endpoint_.empty() && endpoint_.back() == '/') endpoint_.pop_back();
  if (endpoint_.rfind("http://", 0) != 0 && endpoint_.rfind("https://", 0) != 0)
    throw Error("hub endpoint '" + endpoint_ + "' (HF_ENDPOINT) must start with http:// or https://");
  settings_.hub_endpoint = endpoint_;
}

std::string HubClient::file_url(const std::string& repo_id, const std::string& revision,
                                const std::string& path) const {
  return endpoint_ + "/" + repo_id + "/resolve/" + url_encode(revision, false) + "/" + url_encode(path, true);
}

RepoListing HubClient::list_files(const std::string& repo_id, const std::string& revision) const {
  validate_repo_id(repo_id);
  std::string url = endpoint_ + "/api/models/" + repo_id + "/revision/" + url_encode(revision, false) + "?blobs=true";
  HttpResponse r = http_get(url, settings_);
  if (r.status / 100 != 2) throw_for_status(r, {endpoint_, repo_id, revision, "", !settings_.token.empty()});

  auto bad = [&](const std::string& why) -> HubError {
    return HubError("unexpected answer from " + url + ": " + why + " (is HF_ENDPOINT a Hugging Face hub?)", false);
  };
  json j = json::parse(r.body, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) throw bad("not a JSON object");
  if (!j.contains("siblings") || !j["siblings"].is_array()) throw bad("no 'siblings' file list");
  RepoListing listing;
  listing.repo_id = repo_id;
  listing.revision = revision;
  if (j.contains("sha") && j["sha"].is_string()) listing.commit_sha = j["sha"];
  if (listing.commit_sha.empty()) listing.commit_sha = r.header("x-repo-commit");
  for (const auto& s : j["siblings"]) {
    if (!s.is_object() || !s.contains("rfilename") || !s["rfilename"].is_string())
      throw bad("a 'siblings' entry has no 'rfilename'");
    RepoFile f;
    f.path = s["rfilename"];
    if (s.contains("size") && s["size"].is_number_unsigned()) f.size = s["size"].get<uint64_t>();
    if (s.contains("lfs") && s["lfs"].is_object()) {
      const auto& lfs = s["lfs"];
      if (lfs.contains("sha256") && lfs["sha256"].is_string()) {
        std::string sha = lfs["sha256"];
        if (!is_sha256_hex(sha)) throw bad("'lfs.sha256' of '" + f.path + "' is not a SHA-256");
        for (auto& ch : sha) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
        f.sha256 = sha;
      }
      if (lfs.contains("size") && lfs["size"].is_number_unsigned()) f.size = lfs["size"].get<uint64_t>();
    }
    listing.files.push_back(std::move(f));
  }
  return listing;
}

}  // namespace pictor::hub
