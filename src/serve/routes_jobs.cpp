// /v1/jobs: any request type as a background job, its status, its event stream, its preview, cancelling.
#include <httplib.h>

#include <map>
#include <mutex>

#include "serve/auth.hpp"
#include "serve/http_util.hpp"
#include "serve/routes.hpp"
#include "serve/server_context.hpp"

namespace pictor::serve {

namespace {

std::mutex registry_mutex;
std::map<std::string, JobType>& registry() {
  static std::map<std::string, JobType> types;
  return types;
}

std::string known_types() {
  std::string out;
  for (auto& [name, t] : registry()) out += (out.empty() ? "" : ", ") + name;
  return out;
}

nlohmann::json job_json(ServerContext& ctx, const jobs::JobStatus& s) {
  nlohmann::json j = s.to_json();
  j["response"] = nullptr;
  // Generated images get their URLs here so clients need not know the storage layout.
  if (j["result"].is_object() && j["result"].contains("images"))
    for (auto& img : j["result"]["images"])
      if (auto rec = ctx.images.get(img.value("id", ""))) img["url"] = ServerContext::image_path(*rec);
  if (s.record.state == "succeeded")
    if (const JobType* t = find_job_type(s.record.tags.value("type", "")); t && t->format)
      j["response"] = t->format(ctx, s.record);
  return j;
}

jobs::JobStatus status_or_404(ServerContext& ctx, const std::string& id) {
  auto s = ctx.queue.status(id);
  if (!s) throw not_found("no job " + id, "id");
  return *s;
}

}  // namespace

void register_job_type(const std::string& type, JobType handlers) {
  std::lock_guard lock(registry_mutex);
  registry()[type] = std::move(handlers);
}

const JobType* find_job_type(const std::string& type) {
  std::lock_guard lock(registry_mutex);
  auto it = registry().find(type);
  return it == registry().end() ? nullptr : &it->second;
}

void add_job_routes(httplib::Server& http, ServerContext& ctx) {
  http.Post("/v1/jobs", [&ctx](const httplib::Request& req, httplib::Response& res) {
    auto body = parse_json_body(req);
    if (!body.contains("type") || !body["type"].is_string())
      throw invalid_param("type", "\"type\" must name the request type: one of " + known_types());
    std::string type = body["type"];
    const JobType* t = find_job_type(type);
    if (!t) throw invalid_param("type", "unknown job type \"" + type + "\"; known: " + known_types());
    if (!body.contains("request") || !body["request"].is_object())
      throw invalid_param("request", "\"request\" must be the JSON object the synchronous endpoint takes");
    jobs::JobSpec spec = t->parse(ctx, body["request"], caller_of(ctx, req));
    spec.tags["type"] = type;
    auto id = ctx.submit(std::move(spec));
    send_json(res, job_json(ctx, status_or_404(ctx, id)), 202);
  });

  http.Get("/v1/jobs", [&ctx](const httplib::Request& req, httplib::Response& res) {
    nlohmann::json data = nlohmann::json::array();
    for (auto& rec : ctx.job_records.recent(50, caller_of(ctx, req)))
      if (auto s = ctx.queue.status(rec.id)) data.push_back(job_json(ctx, *s));
    send_json(res, {{"object", "list"}, {"data", data}});
  });

  http.Get(R"(/v1/jobs/([^/]+))", [&ctx](const httplib::Request& req, httplib::Response& res) {
    send_json(res, job_json(ctx, status_or_404(ctx, path_match(req, 1))));
  });

  http.Delete(R"(/v1/jobs/([^/]+))", [&ctx](const httplib::Request& req, httplib::Response& res) {
    auto id = path_match(req, 1);
    auto s = status_or_404(ctx, id);
    if (ctx.auth.keys_required() && s.record.owner != caller_of(ctx, req))
      throw ApiError(403, "permission_error", "job " + id + " belongs to another API key", "id", "forbidden");
    ctx.queue.cancel(id);
    send_json(res, job_json(ctx, status_or_404(ctx, id)));
  });

  http.Get(R"(/v1/jobs/([^/]+)/preview)", [&ctx](const httplib::Request& req, httplib::Response& res) {
    auto s = status_or_404(ctx, path_match(req, 1));
    if (!s.preview_png) throw not_found("job " + s.record.id + " has no preview (yet)");
    res.set_header("Cache-Control", "no-store");
    send_bytes(res, std::string(s.preview_png->begin(), s.preview_png->end()), "image/png");
  });

  http.Get(R"(/v1/jobs/([^/]+)/events)", [&ctx](const httplib::Request& req, httplib::Response& res) {
    auto id = path_match(req, 1);
    status_or_404(ctx, id);
    auto sub = ctx.queue.subscribe(id);
    send_event_stream(res, [&ctx, sub](const SseWriter& write) {
      int idle_ms = 0;
      while (!ctx.stopping) {
        auto e = sub->next(250);
        if (!e) {
          // A comment line now and then finds out whether the client is still there.
          if ((idle_ms += 250) >= 10000) {
            if (!write("", ": keep-alive")) return;
            idle_ms = 0;
          }
          continue;
        }
        idle_ms = 0;
        nlohmann::json data = e->data;
        if ((e->type == "state" || e->type == "done") && data.is_object() && data.contains("id")) {
          if (auto s = ctx.queue.status(data["id"])) data = job_json(ctx, *s);
        }
        if (!write(e->type, data.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace))) return;
        if (e->type == "done") return;
      }
    });
  });
}

}  // namespace pictor::serve
