#pragma once
// `POST /v1/chat/completions` in OpenAI's shapes, without any I/O: the request body is validated and
// turned into the parameters of a "describe" job (jobs/job_kinds.hpp), and finished jobs are turned into
// chat.completion objects or chat.completion.chunk stream events. Every validation error is an ApiError
// naming the exact field path, e.g. "messages[1].content[0].image_url".
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "serve/api_error.hpp"

namespace pictor::serve {

// An image a message refers to, still to be fetched/stored; its part in ChatRequest::params is
// {"type":"image","image_id":""} until attach_image_ids fills it.
struct ChatImageRef {
  std::string url;
  std::string detail;  // "auto", "low" or "high" (accepted; the model's processor decides the resolution)
  std::string param;   // "messages[i].content[j].image_url"
  size_t message = 0, part = 0;
};

struct ChatRequest {
  std::string model;      // as requested ("" = the default image-to-text model)
  nlohmann::json params;  // "describe" job parameters (messages, max_tokens, temperature, top_p, seed, stop)
  std::vector<ChatImageRef> images;
  bool stream = false;
  bool include_usage = false;  // stream_options.include_usage
  std::string user;
};

struct ChatLimits {
  int max_images = 10;
  int max_tokens_default = 512;
};

ChatRequest parse_chat_request(const nlohmann::json& body, const ChatLimits& limits = {});
// Puts the stored ids (one per ChatRequest::images entry, same order) into the parameters.
void attach_image_ids(ChatRequest& request, const std::vector<std::string>& image_ids);

// ---- Responses ---------------------------------------------------------------------------------------

// "chatcmpl-" + the job id's random part (a stable id, so GET /v1/jobs/{id} and the response agree).
std::string chat_completion_id(const std::string& job_id);
constexpr const char* kSystemFingerprint = "fp_pictor";

// {"prompt_tokens","completion_tokens","total_tokens"} from a describe job's result.
nlohmann::json chat_usage(const nlohmann::json& result);
// The chat.completion object of a finished describe job.
nlohmann::json chat_completion(const std::string& id, int64_t created, const std::string& model,
                               const nlohmann::json& result);
// One chat.completion.chunk. `delta` e.g. {"role":"assistant","content":""} or {"content":"..."};
// finish_reason null until the last chunk; usage (when given) appears on the usage-only chunk with an
// empty choices array, as OpenAI sends it.
nlohmann::json chat_chunk(const std::string& id, int64_t created, const std::string& model, const nlohmann::json& delta,
                          const nlohmann::json& finish_reason = nullptr);
nlohmann::json chat_usage_chunk(const std::string& id, int64_t created, const std::string& model,
                                const nlohmann::json& usage);

}  // namespace pictor::serve
