#pragma once
// Small helpers every route file uses on top of cpp-httplib: JSON bodies in and out, the OpenAI error
// shape, server-sent events, and who is calling.
#include <httplib.h>

#include <functional>
#include <string>

#include <nlohmann/json.hpp>

#include "serve/api_error.hpp"

namespace pictor::serve {

struct ServerContext;

// The request body as a JSON object; ApiError 400 ("invalid_json") naming the parse position otherwise.
nlohmann::json parse_json_body(const httplib::Request& req);

void send_json(httplib::Response& res, const nlohmann::json& body, int status = 200);
// {"error":{"message","type","param","code"}} with the error's status.
void send_api_error(httplib::Response& res, const ApiError& error);
nlohmann::json api_error_json(const ApiError& error);

// Who is calling: the name of the API key used (keys given as NAME:KEY), else the key's "key-<prefix>",
// else the X-Pictor-User header on an open server, else "anonymous".
std::string caller_of(const ServerContext& ctx, const httplib::Request& req);

// Streams server-sent events. `produce` is called once in the connection's thread with a writer; the
// writer returns false when the client went away (the producer should then stop). An empty event with
// data starting with ':' writes an SSE comment (keep-alive).
using SseWriter = std::function<bool(const std::string& event, const std::string& data)>;
void send_event_stream(httplib::Response& res, std::function<void(const SseWriter& write)> produce);

// cpp-httplib 0.11 routes are regular expressions ("/v1/jobs/([^/]+)"); this is capture group `index`
// (1-based), ApiError 404 when absent.
std::string path_match(const httplib::Request& req, size_t index);

// Writes raw bytes with a content type (images, the web page).
void send_bytes(httplib::Response& res, const std::string& bytes, const std::string& content_type);

}  // namespace pictor::serve
