#include "serve/http_util.hpp"

#include "serve/auth.hpp"
#include "serve/server_context.hpp"

namespace pictor::serve {

nlohmann::json parse_json_body(const httplib::Request& req) {
  if (req.body.empty())
    throw ApiError(400, "invalid_request_error", "the request body is empty; expected a JSON object", "",
                   "invalid_json");
  nlohmann::json body;
  try {
    body = nlohmann::json::parse(req.body);
  } catch (const nlohmann::json::parse_error& e) {
    throw ApiError(400, "invalid_request_error",
                   "the request body is not valid JSON (byte " + std::to_string(e.byte) + ")", "", "invalid_json");
  }
  if (!body.is_object())
    throw ApiError(400, "invalid_request_error", "the request body must be a JSON object", "", "invalid_json");
  return body;
}

void send_json(httplib::Response& res, const nlohmann::json& body, int status) {
  res.status = status;
  // Invalid UTF-8 from a model or a prompt must not throw here: replace it.
  res.set_content(body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace), "application/json");
}

nlohmann::json api_error_json(const ApiError& error) {
  return {{"error",
           {{"message", error.what()},
            {"type", error.type},
            {"param", error.param.empty() ? nlohmann::json() : nlohmann::json(error.param)},
            {"code", error.code.empty() ? nlohmann::json() : nlohmann::json(error.code)}}}};
}

void send_api_error(httplib::Response& res, const ApiError& error) {
  if (error.retry_after_s > 0) res.set_header("Retry-After", std::to_string(error.retry_after_s));
  send_json(res, api_error_json(error), error.status);
}

std::string caller_of(const ServerContext& ctx, const httplib::Request& req) {
  return ctx.auth.identify(req);
}

void send_event_stream(httplib::Response& res, std::function<void(const SseWriter& write)> produce) {
  res.set_header("Cache-Control", "no-cache");
  res.set_header("X-Accel-Buffering", "no");
  res.set_chunked_content_provider("text/event-stream", [produce](size_t, httplib::DataSink& sink) {
    SseWriter write = [&sink](const std::string& event, const std::string& data) {
      std::string msg;
      if (event.empty() && !data.empty() && data[0] == ':') {  // a comment line (keep-alive)
        msg = data + "\n\n";
        return sink.is_writable() && sink.write(msg.data(), msg.size());
      }
      if (!event.empty()) msg += "event: " + event + "\n";
      size_t start = 0;
      for (;;) {  // each line of the payload is its own data: field
        size_t nl = data.find('\n', start);
        msg += "data: " + data.substr(start, nl == std::string::npos ? std::string::npos : nl - start) + "\n";
        if (nl == std::string::npos) break;
        start = nl + 1;
      }
      msg += "\n";
      return sink.is_writable() && sink.write(msg.data(), msg.size());
    };
    produce(write);
    sink.done();
    return true;
  });
}

std::string path_match(const httplib::Request& req, size_t index) {
  if (index >= req.matches.size() || req.matches[index].length() == 0) throw not_found("no such resource: " + req.path);
  return req.matches[index].str();
}

void send_bytes(httplib::Response& res, const std::string& bytes, const std::string& content_type) {
  res.status = 200;
  res.set_content(bytes, content_type.c_str());
}

}  // namespace pictor::serve
