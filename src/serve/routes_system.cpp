// /health, /v1/models, /metrics.
#include <httplib.h>

#include "serve/http_util.hpp"
#include "serve/metrics.hpp"
#include "serve/routes.hpp"
#include "serve/server_context.hpp"
#include "storage/ids.hpp"

namespace pictor::serve {

namespace {

nlohmann::json model_json(const jobs::ModelInfo& m) {
  return {{"id", m.id},
          {"object", "model"},
          {"created", int64_t(m.created)},
          {"owned_by", "pictor"},
          {"kind", m.kind == jobs::ModelKind::TextToImage ? "text-to-image" : "image-to-text"},
          {"input_modalities", m.input_modalities()},
          {"output_modalities", m.output_modalities()},
          {"weight_bytes", m.weight_bytes}};
}

}  // namespace

void add_system_routes(httplib::Server& http, ServerContext& ctx) {
  const double started = storage::now_seconds();
  http.Get("/health", [&ctx, started](const httplib::Request&, httplib::Response& res) {
    auto q = ctx.queue.stats();
    send_json(res, {{"status", "ok"},
                    {"version", "0.1.0"},
                    {"uptime_s", storage::now_seconds() - started},
                    {"queue", {{"queued", q.queued}, {"running", q.running}}},
                    {"models_loaded", ctx.models.loaded().size()}});
  });
  http.Get("/v1/models", [&ctx](const httplib::Request&, httplib::Response& res) {
    nlohmann::json data = nlohmann::json::array();
    for (auto& m : ctx.models.list()) data.push_back(model_json(m));
    send_json(res, {{"object", "list"}, {"data", data}});
  });
  http.Get(R"(/v1/models/([^/]+))", [&ctx](const httplib::Request& req, httplib::Response& res) {
    auto id = path_match(req, 1);
    auto m = ctx.models.find(id);
    if (!m)
      throw ApiError(404, "invalid_request_error", "the model \"" + id + "\" does not exist", "model",
                     "model_not_found");
    send_json(res, model_json(*m));
  });
  http.Get("/metrics", [&ctx](const httplib::Request&, httplib::Response& res) {
    res.set_content(ctx.metrics.render(ctx), "text/plain; version=0.0.4; charset=utf-8");
  });
}

}  // namespace pictor::serve
