#pragma once
// One file download: into DEST.part, resumed with an HTTP Range request when a .part is already there,
// verified (size, SHA-256) and only then renamed to DEST, so DEST is either absent or complete.
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

#include "hub/hub_client.hpp"
#include "hub/progress_bar.hpp"

namespace pictor::hub {

struct DownloadRequest {
  std::string url;
  std::filesystem::path dest;
  RequestContext context;  // names the repo/revision/file in errors
  std::optional<uint64_t> expected_size;
  std::string expected_sha256;  // empty: taken from the ETag when that is a SHA-256 (LFS files)
  ProgressBar::Mode progress = ProgressBar::Mode::Silent;
};

struct DownloadResult {
  uint64_t bytes = 0;
  uint64_t resumed_from = 0;  // bytes of the .part file kept (0: downloaded from the start)
  std::string sha256;         // digest of the file
  bool sha256_verified = false;
};

// One attempt. Throws HubError: retryable ones (dropped connection, stall, 5xx) keep the .part file for the
// next attempt to resume; a checksum mismatch deletes it and names the file.
DownloadResult download_file(const DownloadRequest& request, const HttpSettings& settings);

std::filesystem::path part_path(const std::filesystem::path& dest);

}  // namespace pictor::hub
