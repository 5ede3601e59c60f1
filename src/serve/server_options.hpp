#pragma once
// Everything `pictor serve` can be told. Defaults are safe for a single user on loopback.
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace pictor::serve {

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 8080;  // 0: any free port (tests)
  std::filesystem::path models_dir = "models";
  std::filesystem::path data_dir = "pictor-data";  // SQLite file + images
  std::vector<std::string> api_keys;               // "KEY" or "NAME:KEY"; required when host is not loopback
  std::string taesd_dir;                           // AutoencoderTiny folder for live previews (optional)
  int workers = 2;                                 // jobs running at once (one per model)
  int max_queued = 64;                             // more waiting jobs are refused with 503
  uint64_t memory_budget = 0;                      // bytes for loaded models; 0: 3/4 of RAM
  int threads = 0;                                 // compute threads per job; 0: all cores
  bool int8_decoder = false;                       // image-to-text language models with int8 weights

  // Limits on what clients send.
  uint64_t max_body_bytes = 32ull << 20;
  uint64_t max_image_bytes = 20ull << 20;      // one encoded image (upload, data: URI or fetched URL)
  uint64_t max_image_pixels = 4096ull * 4096;  // width * height of an input image, checked before decoding
  int max_output_side = 2048;                  // width/height of generated images
  int max_images_per_request = 10;             // `n`
  int rate_limit_per_minute = 0;               // requests per key (or client address) per minute; 0: off

  // Images named by URL in chat messages.
  bool allow_private_urls = false;  // fetching loopback/private/link-local addresses
  int url_timeout_s = 10;
  std::filesystem::path local_files_dir;  // file:// and plain paths allowed only under this folder; empty: none

  std::string cors_origin;  // Access-Control-Allow-Origin value; empty: CORS off
  std::string web_dir;      // serve the web page from this folder instead of the built-in copy
};

bool is_loopback_host(const std::string& host);

}  // namespace pictor::serve
