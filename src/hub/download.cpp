#include "hub/download.hpp"

#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "hub/sha256.hpp"

namespace fs = std::filesystem;

namespace pictor::hub {

namespace {

// "sha", "\"sha\"" or "W/\"sha\"" -> sha if it is a SHA-256 (the hub's ETag for LFS files), else "".
std::string sha256_from_etag(std::string etag) {
  if (etag.rfind("W/", 0) == 0) etag = etag.substr(2);
  if (etag.size() >= 2 && etag.front() == '"' && etag.back() == '"') etag = etag.substr(1, etag.size() - 2);
  if (!is_sha256_hex(etag)) return {};
  for (auto& c : etag) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return etag;
}

// Start offset of "bytes START-END/TOTAL"; nullopt when malformed.
std::optional<uint64_t> content_range_start(const std::string& value) {
  unsigned long long start = 0, end = 0;
  if (std::sscanf(value.c_str(), "bytes %llu-%llu", &start, &end) != 2) return std::nullopt;
  return start;
}

class PartFile {
 public:
  explicit PartFile(fs::path path) : path_(std::move(path)) {}
  ~PartFile() { close_quietly(); }
  void open(bool append) {
    close_quietly();
    file_ = std::fopen(path_.c_str(), append ? "ab" : "wb");
    if (!file_) throw Error(path_.string() + ": cannot open for writing (" + std::strerror(errno) + ")");
  }
  void write(const char* data, size_t n) {
    if (std::fwrite(data, 1, n, file_) != n)
      throw Error(path_.string() + ": write failed (" + std::strerror(errno) + "): is the disk full?");
  }
  // Flushes to stable storage before the rename, so a crash cannot leave a complete-looking short file.
  void close() {
    if (!file_) return;
    bool ok = std::fflush(file_) == 0 && ::fsync(::fileno(file_)) == 0;
    int err = errno;
    ok = (std::fclose(file_) == 0) && ok;
    file_ = nullptr;
    if (!ok) throw Error(path_.string() + ": write failed (" + std::strerror(err) + "): is the disk full?");
  }
  bool is_open() const { return file_ != nullptr; }

 private:
  void close_quietly() {
    if (file_) std::fclose(file_);
    file_ = nullptr;
  }
  fs::path path_;
  std::FILE* file_ = nullptr;
};

}  // namespace

fs::path part_path(const fs::path& dest) {
  return fs::path(dest.string() + ".part");
}

DownloadResult download_file(const DownloadRequest& req, const HttpSettings& settings) {
  const fs::path part = part_path(req.dest);
  const std::string name = req.context.file.empty() ? req.dest.filename().string() : req.context.file;
  fs::create_directories(req.dest.parent_path());
  std::error_code ec;

  uint64_t offset = fs::exists(part, ec) ? fs::file_size(part, ec) : 0;
  if (ec) offset = 0;
  if (req.expected_size && offset > *req.expected_size) {  // not a prefix of this file: start over
    fs::remove(part, ec);
    offset = 0;
  }

  Sha256 hasher;
  std::string expected_sha = req.expected_sha256;
  DownloadResult result;
  PartFile out(part);
  ProgressBar bar(name, req.expected_size, offset, req.progress);
  uint64_t written = offset;
  bool already_complete = req.expected_size && offset == *req.expected_size && offset > 0;

  if (offset > 0) sha256_update_from_file(hasher, part, offset);

  if (!already_complete) {
    std::vector<std::string> headers;
    if (offset > 0) headers.push_back("Range: bytes=" + std::to_string(offset) + "-");
    BodySink sink;
    sink.on_start = [&](const HttpResponse& r) {
      if (expected_sha.empty()) {
        expected_sha = sha256_from_etag(r.chain_header("x-linked-etag"));
        if (expected_sha.empty()) expected_sha = sha256_from_etag(r.chain_header("etag"));
      }
      if (r.status == 206 && offset > 0) {
        auto start = content_range_start(r.header("content-range"));
        if (!start || *start != offset) {
          fs::remove(part, ec);
          throw HubError("the server answered the resume request for '" + name + "' with a wrong range ('" +
                             r.header("content-range") + "', wanted byte " + std::to_string(offset) +
                             "); the partial file was deleted",
                         true);
        }
        out.open(/*append=*/true);
      } else {
        // 200: the whole file (a server that ignores Range restarts us from byte 0).
        offset = 0;
        written = 0;
        hasher.reset();
        bar.restart(0);
        out.open(/*append=*/false);
      }
    };
    sink.on_data = [&](const char* data, size_t n) {
      out.write(data, n);
      hasher.update(data, n);
      written += n;
      if (req.expected_size && written > *req.expected_size) {
        out.close();
        fs::remove(part, ec);
        throw HubError("'" + name + "' is larger than the " + std::to_string(*req.expected_size) +
                           " bytes the hub listed; the partial file was deleted",
                       true);
      }
      bar.update(written);
    };
    HttpResponse r = http_get(req.url, settings, headers, &sink);
    if (r.status == 416) {  // our .part does not fit the remote file any more
      fs::remove(part, ec);
      throw HubError("the server refused to resume '" + name + "' (HTTP 416); the partial file was deleted", true, 416);
    }
    if (r.status / 100 != 2) throw_for_status(r, req.context);
    out.close();
  }

  if (req.expected_size && written < *req.expected_size)
    throw HubError("'" + name + "' ended after " + std::to_string(written) + " of " +
                       std::to_string(*req.expected_size) + " bytes",
                   true);
  result.bytes = written;
  result.resumed_from = offset;
  result.sha256 = hasher.hex_digest();
  if (!expected_sha.empty()) {
    if (result.sha256 != expected_sha) {
      fs::remove(part, ec);
      // A kept .part may be a prefix of another revision of the file: that is worth one fresh attempt.
      throw HubError("checksum mismatch for '" + name + "': expected SHA-256 " + expected_sha + ", got " +
                         result.sha256 + "; the corrupt download was deleted",
                     /*retryable=*/offset > 0);
    }
    result.sha256_verified = true;
  }
  fs::rename(part, req.dest, ec);
  if (ec) throw Error(req.dest.string() + ": cannot move the finished download into place (" + ec.message() + ")");
  bar.finish(result.sha256_verified ? "sha256 ok" : "");
  return result;
}

}  // namespace pictor::hub
