#pragma once
// One function per endpoint family; Server calls each once at start-up. Each lives in its own
// routes_*.cpp so the families stay independent.
namespace httplib {
class Server;
}

namespace pictor::serve {

struct ServerContext;

void add_system_routes(httplib::Server& http, ServerContext& ctx);   // /health, /v1/models, /metrics
void add_job_routes(httplib::Server& http, ServerContext& ctx);      // /v1/jobs
void add_file_routes(httplib::Server& http, ServerContext& ctx);     // /v1/files/images/<id>.<ext>
void add_image_routes(httplib::Server& http, ServerContext& ctx);    // /v1/images/*
void add_a1111_routes(httplib::Server& http, ServerContext& ctx);    // /sdapi/v1/*
void add_chat_routes(httplib::Server& http, ServerContext& ctx);     // /v1/chat/completions
void add_session_routes(httplib::Server& http, ServerContext& ctx);  // /v1/sessions
void add_web_routes(httplib::Server& http, ServerContext& ctx);      // / (the web page)

}  // namespace pictor::serve

// ---- Job types -------------------------------------------------------------------------------------
// `POST /v1/jobs {"type": T, "request": {...}}` runs any request type as a background job. Each endpoint
// family registers its types (from its add_*_routes) with a parser that turns the JSON request into a
// JobSpec, and a formatter that turns a finished job into the response the synchronous endpoint returns
// (shown as "response" by GET /v1/jobs/{id}).
#include <functional>
#include <string>

#include <nlohmann/json_fwd.hpp>

namespace pictor::jobs {
struct JobSpec;
}
namespace pictor::storage {
struct JobRecord;
}

namespace pictor::serve {

struct JobType {
  std::function<jobs::JobSpec(ServerContext& ctx, const nlohmann::json& request, const std::string& caller)> parse;
  std::function<nlohmann::json(ServerContext& ctx, const storage::JobRecord& job)> format;
};
// Types: "images.generations", "images.edits", "images.variations", "chat.completions",
// "sdapi.txt2img", "sdapi.img2img". The type is kept in the job's tags as "type".
void register_job_type(const std::string& type, JobType handlers);
const JobType* find_job_type(const std::string& type);

}  // namespace pictor::serve
