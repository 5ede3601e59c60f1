#include "hub/pull.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "core/runtime.hpp"
#include "hub/download.hpp"
#include "hub/file_filter.hpp"
#include "hub/hub_client.hpp"
#include "hub/sha256.hpp"

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace pictor::hub {

namespace {

constexpr const char* kLockFile = ".pictor-lock";

// Paths come from the server: refuse anything that could escape the model folder or clobber our files.
void check_safe_repo_path(const std::string& repo_id, const std::string& path) {
  auto unsafe = [&] {
    throw Error("the hub listing of '" + repo_id + "' contains an unsafe file path '" + path + "'");
  };
  if (path.empty() || path.front() == '/' || path.find('\\') != std::string::npos ||
      path.find('\0') != std::string::npos)
    unsafe();
  size_t start = 0;
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string::npos) end = path.size();
    std::string seg = path.substr(start, end - start);
    if (seg.empty() || seg == "." || seg == ".." || seg == kCompleteMarker || seg == kLockFile) unsafe();
    start = end + 1;
  }
  if (path.size() >= 5 && path.compare(path.size() - 5, 5, ".part") == 0) unsafe();
}

// Holds an exclusive flock on MODELS/OWNER/NAME/.pictor-lock so two pulls of one repo cannot interleave.
class DirLock {
 public:
  DirLock(const fs::path& dir, const std::string& repo_id) {
    fs::path p = dir / kLockFile;
    fd_ = ::open(p.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd_ < 0) throw Error(p.string() + ": cannot create the download lock");
    if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
      ::close(fd_);
      throw Error("another `pictor pull " + repo_id + "` is running (lock " + p.string() + ")");
    }
  }
  ~DirLock() { ::close(fd_); }
  DirLock(const DirLock&) = delete;
  DirLock& operator=(const DirLock&) = delete;

 private:
  int fd_ = -1;
};

json read_marker(const fs::path& dir) {
  std::ifstream in(dir / kCompleteMarker);
  if (!in) return json();
  return json::parse(in, nullptr, /*allow_exceptions=*/false);
}

void write_marker(const fs::path& dir, const RepoListing& listing, const std::string& endpoint,
                  const std::vector<std::string>& files) {
  json m = {{"repo_id", listing.repo_id},
            {"revision", listing.revision},
            {"sha", listing.commit_sha},
            {"endpoint", endpoint},
            {"files", files}};
  fs::path tmp = dir / (std::string(kCompleteMarker) + ".tmp");
  {
    std::ofstream out(tmp);
    out << m.dump(2) << "\n";
    if (!out) throw Error(tmp.string() + ": cannot write the completion marker");
  }
  std::error_code ec;
  fs::rename(tmp, dir / kCompleteMarker, ec);
  if (ec) throw Error((dir / kCompleteMarker).string() + ": cannot write the completion marker (" + ec.message() + ")");
}

// A file left by an earlier pull can be kept only when its content is provably the wanted one.
bool existing_file_matches(const fs::path& dest, const RepoFile& f) {
  std::error_code ec;
  if (!fs::is_regular_file(dest, ec) || f.sha256.empty()) return false;
  if (f.size && fs::file_size(dest, ec) != *f.size) return false;
  return sha256_file(dest) == f.sha256;
}

void say(const PullOptions& o, const std::string& msg) {
  if (!o.quiet) std::fprintf(stderr, "%s\n", msg.c_str());
}

}  // namespace

fs::path local_dir(const std::string& repo_id, const std::string& models_root) {
  validate_repo_id(repo_id);
  fs::path root = models_root.empty() ? fs::path(models_dir()) : fs::path(models_root);
  return root / repo_id;
}

std::optional<fs::path> find_local(const std::string& repo_id, const std::string& models_root) {
  fs::path dir = local_dir(repo_id, models_root);
  json m = read_marker(dir);
  if (!m.is_object() || m.value("repo_id", std::string()) != repo_id) return std::nullopt;
  return dir;
}

fs::path pull(const std::string& repo_id, const PullOptions& o) {
  const fs::path dir = local_dir(repo_id, o.models_dir);
  HttpSettings settings;
  settings.token = o.token ? *o.token : env_or("HF_TOKEN", "");
  settings.connect_timeout_s = o.connect_timeout_s;
  settings.low_speed_time_s = o.stall_timeout_s;
  settings.low_speed_bytes = 1;
  HubClient client(o.endpoint.empty() ? default_endpoint() : o.endpoint, settings);

  RepoListing listing = client.list_files(repo_id, o.revision);
  std::vector<std::string> names;
  for (const auto& f : listing.files) names.push_back(f.path);
  std::vector<std::string> selected = select_files(names, FileFilter{o.include, o.exclude});
  if (selected.empty())
    throw Error("no file of '" + repo_id + "' at revision '" + o.revision + "' matches the " +
                (o.include.empty() ? std::string("default selection (configs, tokenizers, *.safetensors)")
                                   : std::string("--include/--exclude globs")) +
                " (the repository has " + std::to_string(names.size()) + " files)");
  for (const auto& p : selected) check_safe_repo_path(repo_id, p);

  json marker = read_marker(dir);
  if (marker.is_object() && !listing.commit_sha.empty() && marker.value("sha", std::string()) == listing.commit_sha &&
      marker.value("files", json::array()) == json(selected)) {
    say(o, repo_id + " is up to date in " + dir.string() + " (commit " + listing.commit_sha + ")");
    return dir;
  }

  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw Error(dir.string() + ": cannot create the model folder (" + ec.message() + ")");
  DirLock lock(dir, repo_id);
  fs::remove(dir / kCompleteMarker, ec);  // from here on the folder is incomplete until every file is verified

  std::map<std::string, const RepoFile*> by_path;
  for (const auto& f : listing.files) by_path[f.path] = &f;
  uint64_t total = 0, needed = 0;
  for (const auto& p : selected) {
    uint64_t size = by_path[p]->size.value_or(0);
    total += size;
    uint64_t have = fs::exists(part_path(dir / p), ec) ? fs::file_size(part_path(dir / p), ec) : 0;
    needed += size > have ? size - have : 0;
  }
  auto space = fs::space(dir, ec);
  if (!ec && space.available < needed)
    throw Error("not enough disk space in " + dir.string() + " for " + repo_id + ": needs up to " +
                format_bytes(needed) + ", " + format_bytes(space.available) + " available");
  say(o, "pulling " + repo_id + " (revision " + o.revision +
             (listing.commit_sha.empty() ? std::string() : ", commit " + listing.commit_sha.substr(0, 12)) + ") from " +
             client.endpoint() + " into " + dir.string() + ": " + std::to_string(selected.size()) + " files, " +
             format_bytes(total));

  // Files are fetched at the resolved commit so a branch moving during the pull cannot mix revisions.
  const std::string fetch_revision = listing.commit_sha.empty() ? o.revision : listing.commit_sha;
  for (const auto& p : selected) {
    const RepoFile& f = *by_path[p];
    fs::path dest = dir / p;
    if (existing_file_matches(dest, f)) {
      say(o, p + "  already present (sha256 ok)");
      continue;
    }
    DownloadRequest req;
    req.url = client.file_url(repo_id, fetch_revision, p);
    req.dest = dest;
    req.context = RequestContext{client.endpoint(), repo_id, o.revision, p, !settings.token.empty()};
    req.expected_size = f.size;
    req.expected_sha256 = f.sha256;
    req.progress = ProgressBar::auto_mode(o.quiet);
    for (int attempt = 0;; ++attempt) {
      try {
        download_file(req, client.settings());
        break;
      } catch (const HubError& e) {
        if (!e.retryable() || attempt >= o.max_retries) throw;
        double delay = o.retry_delay_s * static_cast<double>(1 << std::min(attempt, 10));
        say(o, std::string(e.what()) + "; retrying in " + format_duration(delay) + " (" + std::to_string(attempt + 1) +
                   "/" + std::to_string(o.max_retries) + ")");
        std::this_thread::sleep_for(std::chrono::duration<double>(delay));
      }
    }
  }
  write_marker(dir, listing, client.endpoint(), selected);
  say(o, "pulled " + repo_id + " into " + dir.string());
  return dir;
}

}  // namespace pictor::hub
