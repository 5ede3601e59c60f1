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
// writer returns false when the client went away (the producer should then stop).
using SseWriter = std::function<bool(const std::string& event, const std::string& data)>;
void send_event_stream(httplib::Response& res, std::function<void(const SseWriter& write)> produce);

// Path parameter `name` (from a route like "/v1/jobs/:id"); ApiError 404 when missing.
std::string path_param(const httplib::Request& req, const std::string& name);

}  // namespace pictor::serve
