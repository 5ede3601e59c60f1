#pragma once
// The server side of image_requests: its hooks bound to a ServerContext (models, image store, limits),
// shared by the OpenAI and AUTOMATIC1111 route files.
#include <string>

#include "serve/image_requests.hpp"
#include "serve/server_context.hpp"

namespace httplib {
struct Request;
}

namespace pictor::serve {

ImageRequestEnv image_request_env(ServerContext& ctx);
// `base_url` "" gives relative image URLs (background jobs have no request to take a host from).
ImageResponseEnv image_response_env(ServerContext& ctx, const std::string& base_url);
// "http://<Host header>" ("https" behind a proxy that sets X-Forwarded-Proto: https); "" without a Host.
std::string request_base_url(const httplib::Request& req);

}  // namespace pictor::serve
