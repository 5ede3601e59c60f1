#include "serve/chat_request.hpp"

#include <cmath>
#include <limits>

namespace pictor::serve {

using nlohmann::json;

namespace {

std::string at(const std::string& base, size_t i) {
  return base + "[" + std::to_string(i) + "]";
}

ApiError unsupported(const std::string& param, const std::string& message) {
  return invalid_param(param, message, "unsupported_parameter");
}

const char* type_name(const json& v) {
  return v.type_name();
}

bool present(const json& body, const char* key) {
  return body.contains(key) && !body.at(key).is_null();
}

int int_field(const json& body, const char* key, int lo, int hi) {
  const json& v = body.at(key);
  if (!v.is_number_integer() && !(v.is_number_float() && std::floor(v.get<double>()) == v.get<double>()))
    throw invalid_param(key, std::string(key) + " must be an integer, got " + type_name(v), "invalid_type");
  const double d = v.get<double>();
  if (d < lo || d > hi)
    throw invalid_param(key, std::string(key) + " must be between " + std::to_string(lo) + " and " +
                                 std::to_string(hi) + ", got " + v.dump());
  return static_cast<int>(d);
}

double number_field(const json& body, const char* key) {
  const json& v = body.at(key);
  if (!v.is_number())
    throw invalid_param(key, std::string(key) + " must be a number, got " + type_name(v), "invalid_type");
  return v.get<double>();
}

bool bool_field(const json& body, const char* key, const std::string& param) {
  const json& v = body.at(key);
  if (!v.is_boolean()) throw invalid_param(param, param + " must be a boolean, got " + type_name(v), "invalid_type");
  return v.get<bool>();
}

std::string string_at(const json& obj, const char* key, const std::string& param) {
  if (!obj.contains(key)) throw invalid_param(param, param + " is required", "missing_required_parameter");
  const json& v = obj.at(key);
  if (!v.is_string()) throw invalid_param(param, param + " must be a string, got " + type_name(v), "invalid_type");
  return v.get<std::string>();
}

json parse_content(const json& msg, const std::string& role, size_t i, std::vector<ChatImageRef>& images) {
  const std::string param = at("messages", i) + ".content";
  json parts = json::array();
  if (!msg.contains("content") || msg.at("content").is_null()) {
    if (role != "assistant") throw invalid_param(param, param + " is required", "missing_required_parameter");
    return parts;
  }
  const json& content = msg.at("content");
  if (content.is_string()) {
    parts.push_back({{"type", "text"}, {"text", content.get<std::string>()}});
    return parts;
  }
  if (!content.is_array())
    throw invalid_param(param, param + " must be a string or an array of content parts, got " + type_name(content),
                        "invalid_type");
  for (size_t j = 0; j < content.size(); ++j) {
    const std::string pp = at(param, j);
    const json& part = content[j];
    if (!part.is_object()) throw invalid_param(pp, pp + " must be an object, got " + type_name(part), "invalid_type");
    const std::string type = string_at(part, "type", pp + ".type");
    if (type == "text") {
      parts.push_back({{"type", "text"}, {"text", string_at(part, "text", pp + ".text")}});
    } else if (type == "image_url") {
      const std::string ip = pp + ".image_url";
      if (role != "user")
        throw invalid_param(ip, "images are only accepted in user messages (messages[" + std::to_string(i) +
                                    "] has role '" + role + "')");
      if (!part.contains("image_url")) throw invalid_param(ip, ip + " is required", "missing_required_parameter");
      const json& iu = part.at("image_url");
      ChatImageRef ref;
      ref.param = ip;
      ref.message = i;
      ref.part = parts.size();
      ref.detail = "auto";
      if (iu.is_string()) {
        ref.url = iu.get<std::string>();
      } else if (iu.is_object()) {
        ref.url = string_at(iu, "url", ip + ".url");
        if (present(iu, "detail")) {
          ref.detail = string_at(iu, "detail", ip + ".detail");
          if (ref.detail != "auto" && ref.detail != "low" && ref.detail != "high")
            throw invalid_param(ip + ".detail", ip + ".detail must be auto, low or high, got '" + ref.detail + "'");
        }
      } else {
        throw invalid_param(ip, ip + " must be an object {\"url\": ...}, got " + type_name(iu), "invalid_type");
      }
      if (ref.url.empty()) throw invalid_param(ip, ip + ".url is empty");
      images.push_back(std::move(ref));
      parts.push_back({{"type", "image"}, {"image_id", ""}});
    } else if (type == "refusal" && role == "assistant") {
      parts.push_back({{"type", "text"}, {"text", string_at(part, "refusal", pp + ".refusal")}});
    } else {
      throw unsupported(pp + ".type", "content part type '" + type + "' is not supported (use text or image_url)");
    }
  }
  return parts;
}

}  // namespace

ChatRequest parse_chat_request(const json& body, const ChatLimits& limits) {
  if (!body.is_object()) throw invalid_param("", "the request body must be a JSON object", "invalid_type");
  ChatRequest r;
  json params = json::object();

  if (!body.contains("messages")) throw invalid_param("messages", "messages is required", "missing_required_parameter");
  const json& messages = body.at("messages");
  if (!messages.is_array() || messages.empty())
    throw invalid_param("messages", "messages must be a non-empty array of messages");
  json out_messages = json::array();
  for (size_t i = 0; i < messages.size(); ++i) {
    const json& m = messages[i];
    const std::string mp = at("messages", i);
    if (!m.is_object()) throw invalid_param(mp, mp + " must be an object, got " + type_name(m), "invalid_type");
    std::string role = string_at(m, "role", mp + ".role");
    if (role == "developer") role = "system";  // OpenAI's newer name for system instructions
    if (role == "tool" || role == "function")
      throw unsupported(mp + ".role", "role '" + role + "' is not supported: this server has no tool calling");
    if (role != "system" && role != "user" && role != "assistant")
      throw invalid_param(mp + ".role", mp + ".role must be system, developer, user or assistant, got '" + role + "'");
    if (present(m, "tool_calls")) throw unsupported(mp + ".tool_calls", "tool calls are not supported");
    out_messages.push_back({{"role", role}, {"content", parse_content(m, role, i, r.images)}});
  }
  if (r.images.empty())
    throw invalid_param("messages",
                        "at least one user message must include an image (a content part of type image_url): this "
                        "server answers questions about images",
                        "image_required");
  if (int(r.images.size()) > limits.max_images)
    throw invalid_param("messages",
                        "the messages hold " + std::to_string(r.images.size()) +
                            " images; the server accepts at most " + std::to_string(limits.max_images),
                        "too_many_images");
  params["messages"] = std::move(out_messages);

  if (present(body, "model")) {
    if (!body.at("model").is_string()) throw invalid_param("model", "model must be a string", "invalid_type");
    r.model = body.at("model").get<std::string>();
  }

  int max_tokens = limits.max_tokens_default;
  if (present(body, "max_completion_tokens"))
    max_tokens = int_field(body, "max_completion_tokens", 1, 4096);
  else if (present(body, "max_tokens"))
    max_tokens = int_field(body, "max_tokens", 1, 4096);
  params["max_tokens"] = max_tokens;

  // Greedy decoding unless a temperature is asked for: answers about an image are then reproducible.
  double temperature = 0;
  if (present(body, "temperature")) {
    temperature = number_field(body, "temperature");
    if (temperature < 0 || temperature > 2)
      throw invalid_param("temperature", "temperature must be between 0 and 2, got " + body.at("temperature").dump());
  }
  params["temperature"] = temperature;
  double top_p = 1;
  if (present(body, "top_p")) {
    top_p = number_field(body, "top_p");
    if (!(top_p > 0 && top_p <= 1))
      throw invalid_param("top_p", "top_p must be greater than 0 and at most 1, got " + body.at("top_p").dump());
  }
  params["top_p"] = top_p;

  if (present(body, "seed")) {
    const json& s = body.at("seed");
    if (!s.is_number_integer())
      throw invalid_param("seed", "seed must be an integer, got " + std::string(type_name(s)), "invalid_type");
    if (s.is_number_unsigned())
      params["seed"] = s.get<uint64_t>();
    else if (s.get<int64_t>() >= 0)
      params["seed"] = uint64_t(s.get<int64_t>());
    else
      throw invalid_param("seed", "seed must not be negative, got " + s.dump());
  }

  json stop = json::array();
  if (present(body, "stop")) {
    const json& s = body.at("stop");
    if (s.is_string()) {
      stop.push_back(s);
    } else if (s.is_array()) {
      if (s.size() > 4) throw invalid_param("stop", "stop holds at most 4 sequences, got " + std::to_string(s.size()));
      for (size_t k = 0; k < s.size(); ++k) {
        if (!s[k].is_string()) throw invalid_param(at("stop", k), at("stop", k) + " must be a string", "invalid_type");
        stop.push_back(s[k]);
      }
    } else {
      throw invalid_param("stop", "stop must be a string or an array of strings, got " + std::string(type_name(s)),
                          "invalid_type");
    }
    for (size_t k = 0; k < stop.size(); ++k)
      if (stop[k].get<std::string>().empty()) throw invalid_param(at("stop", k), "stop sequences must not be empty");
  }
  params["stop"] = stop;

  if (present(body, "n") && int_field(body, "n", 1, std::numeric_limits<int>::max()) != 1)
    throw unsupported("n", "n must be 1: this server returns one choice per request");
  if (present(body, "stream")) r.stream = bool_field(body, "stream", "stream");
  if (present(body, "stream_options")) {
    const json& so = body.at("stream_options");
    if (!so.is_object()) throw invalid_param("stream_options", "stream_options must be an object", "invalid_type");
    if (!r.stream) throw invalid_param("stream_options", "stream_options is only allowed when stream is true");
    if (present(so, "include_usage")) r.include_usage = bool_field(so, "include_usage", "stream_options.include_usage");
  }
  if (present(body, "user")) {
    if (!body.at("user").is_string()) throw invalid_param("user", "user must be a string", "invalid_type");
    r.user = body.at("user").get<std::string>();
  }

  // Features this server does not have are refused rather than silently ignored.
  if (present(body, "logprobs") && body.at("logprobs") == true)
    throw unsupported("logprobs", "logprobs are not supported");
  if (present(body, "tools") && !(body.at("tools").is_array() && body.at("tools").empty()))
    throw unsupported("tools", "tools (function calling) are not supported");
  if (present(body, "response_format")) {
    const json& rf = body.at("response_format");
    if (!rf.is_object() || rf.value("type", "") != "text")
      throw unsupported("response_format", "only response_format {\"type\": \"text\"} is supported");
  }
  if (present(body, "audio") || (present(body, "modalities") && body.at("modalities") != json::array({"text"})))
    throw unsupported("modalities", "only text output is supported");

  r.params = std::move(params);
  return r;
}

void attach_image_ids(ChatRequest& request, const std::vector<std::string>& image_ids) {
  if (image_ids.size() != request.images.size())
    throw Error("attach_image_ids: " + std::to_string(image_ids.size()) + " ids for " +
                std::to_string(request.images.size()) + " images");
  for (size_t k = 0; k < image_ids.size(); ++k) {
    const ChatImageRef& ref = request.images[k];
    request.params["messages"][ref.message]["content"][ref.part]["image_id"] = image_ids[k];
  }
}

std::string chat_completion_id(const std::string& job_id) {
  const size_t sep = job_id.find('_');
  return "chatcmpl-" + (sep == std::string::npos ? job_id : job_id.substr(sep + 1));
}

json chat_usage(const json& result) {
  const int64_t prompt = result.value("prompt_tokens", int64_t(0)),
                completion = result.value("completion_tokens", int64_t(0));
  return {{"prompt_tokens", prompt}, {"completion_tokens", completion}, {"total_tokens", prompt + completion}};
}

json chat_completion(const std::string& id, int64_t created, const std::string& model, const json& result) {
  json message = {{"role", "assistant"}, {"content", result.value("text", "")}, {"refusal", nullptr}};
  json choice = {{"index", 0},
                 {"message", std::move(message)},
                 {"logprobs", nullptr},
                 {"finish_reason", result.value("finish_reason", "stop")}};
  return {{"id", id},
          {"object", "chat.completion"},
          {"created", created},
          {"model", model},
          {"choices", json::array({std::move(choice)})},
          {"usage", chat_usage(result)},
          {"system_fingerprint", kSystemFingerprint}};
}

json chat_chunk(const std::string& id, int64_t created, const std::string& model, const json& delta,
                const json& finish_reason) {
  json choice = {{"index", 0}, {"delta", delta}, {"logprobs", nullptr}, {"finish_reason", finish_reason}};
  return {{"id", id},       {"object", "chat.completion.chunk"},        {"created", created},
          {"model", model}, {"system_fingerprint", kSystemFingerprint}, {"choices", json::array({std::move(choice)})}};
}

json chat_usage_chunk(const std::string& id, int64_t created, const std::string& model, const json& usage) {
  return {{"id", id},       {"object", "chat.completion.chunk"},        {"created", created},
          {"model", model}, {"system_fingerprint", kSystemFingerprint}, {"choices", json::array()},
          {"usage", usage}};
}

}  // namespace pictor::serve
