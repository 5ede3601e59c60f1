#pragma once
// Images named by URL in chat messages (`image_url.url`): `data:image/...;base64,` URIs, http(s) URLs
// fetched by the server, and local files when the operator allowed a folder. Fetching a URL on a
// client's behalf is a server-side request forgery risk, so by default the server refuses hosts that
// resolve to loopback, private, link-local, unspecified, multicast or reserved addresses (IPv4, IPv6 and
// IPv4-mapped IPv6), connects to exactly the address it checked (no second DNS lookup a rebinding
// attacker could answer differently), re-checks every redirect (3 at most), and stops reading past the
// image byte limit and the timeout. Every failure is an ApiError naming the request field (`param`).
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "serve/server_options.hpp"
#include "storage/image_store.hpp"

namespace pictor::serve {

// The encoded bytes behind `url` (a data: URI, http(s) URL, file:// URL or plain path), at most
// options.max_image_bytes. Not yet checked to be an image.
std::vector<uint8_t> read_image_source(const std::string& url, const ServerOptions& options, const std::string& param);

// read_image_source, then checks it decodes as PNG/JPEG/WebP within the byte and pixel limits and stores
// it (metadata {"source": "chat"}).
storage::StoredImage store_image_source(storage::ImageStore& store, const std::string& url,
                                        const ServerOptions& options, const std::string& param);

// ---- Parts, exposed for tests ------------------------------------------------------------------------

// Payload of a base64 `data:image/<type>;base64,<data>` URI (whitespace in the data is ignored).
std::vector<uint8_t> decode_data_uri(const std::string& uri, uint64_t max_bytes, const std::string& param);

// True when a numeric IPv4/IPv6 address must not be fetched without allow_private_urls: loopback,
// RFC 1918 / unique-local private ranges, link-local, unspecified, multicast, broadcast, shared (CGNAT),
// benchmarking and reserved ranges, also when wrapped in IPv6 (IPv4-mapped, IPv4-compatible, NAT64,
// 6to4). Text that is not an IP address counts as not public.
bool is_non_public_address(const std::string& ip);

// The canonical path (symlinks resolved) of a file:// URL or plain path, required to exist inside
// `dir` (itself canonicalised). ApiError 403 when it lies outside, 400 when it does not exist.
std::filesystem::path resolve_local_image_path(const std::string& url, const std::filesystem::path& dir,
                                               const std::string& param);

}  // namespace pictor::serve
