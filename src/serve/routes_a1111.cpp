// AUTOMATIC1111 web UI API (/sdapi/v1/*): txt2img and img2img run through the job queue like every other
// request; progress and interrupt act on the newest /sdapi job, which is found in the job store (so no
// state is lost when the request that made it is still waiting). The model chosen with POST
// /sdapi/v1/options is kept per server for later /sdapi requests, as A1111's global checkpoint is.
#include <httplib.h>

#include <map>
#include <mutex>

#include "serve/base64.hpp"
#include "serve/http_util.hpp"
#include "serve/image_routes_env.hpp"
#include "serve/routes.hpp"

namespace pictor::serve {

namespace {

using nlohmann::json;

// The checkpoint set with POST /sdapi/v1/options, per server (tests run several in one process).
std::mutex checkpoint_mutex;
std::map<const ServerContext*, std::string> checkpoints;

std::string current_checkpoint(const ServerContext& ctx) {
  std::lock_guard lock(checkpoint_mutex);
  auto it = checkpoints.find(&ctx);
  return it == checkpoints.end() ? "" : it->second;
}

// The newest job made by an /sdapi request, if any among the recent ones.
std::optional<storage::JobRecord> latest_sdapi_job(ServerContext& ctx) {
  for (const auto& job : ctx.job_records.recent(50))
    if (job.tags.is_object() && job.tags.value("type", "").rfind("sdapi.", 0) == 0) return job;
  return std::nullopt;
}

json parse_body(const httplib::Request& req) {
  // A1111 clients sometimes post an empty body to endpoints without parameters.
  return req.body.empty() ? json::object() : parse_json_body(req);
}

}  // namespace

void add_a1111_routes(httplib::Server& http, ServerContext& ctx) {
  for (bool img2img : {false, true}) {
    http.Post(img2img ? "/sdapi/v1/img2img" : "/sdapi/v1/txt2img",
              [&ctx, img2img](const httplib::Request& req, httplib::Response& res) {
                auto spec = parse_a1111_request(parse_body(req), img2img, image_request_env(ctx), caller_of(ctx, req),
                                                current_checkpoint(ctx));
                jobs::JobStatus done = ctx.run_and_wait(std::move(spec));
                send_json(res, a1111_response(done.record, image_response_env(ctx, "")));
              });
  }

  http.Get("/sdapi/v1/progress", [&ctx](const httplib::Request& req, httplib::Response& res) {
    std::optional<jobs::JobStatus> status;
    if (auto job = latest_sdapi_job(ctx)) {
      status = ctx.queue.status(job->id);
      if (!status) {  // no longer live: report the stored record
        status.emplace();
        status->record = *job;
      }
    }
    std::string preview;
    const bool skip = req.get_param_value("skip_current_image") == "true";
    if (status && !skip && status->preview_png) preview = base64_encode(*status->preview_png);
    send_json(res, a1111_progress(status, preview));
  });

  auto interrupt = [&ctx](const httplib::Request&, httplib::Response& res) {
    if (auto job = latest_sdapi_job(ctx)) ctx.queue.cancel(job->id);
    send_json(res, nullptr);
  };
  http.Post("/sdapi/v1/interrupt", interrupt);
  http.Post("/sdapi/v1/skip", interrupt);

  http.Get("/sdapi/v1/sd-models", [&ctx](const httplib::Request&, httplib::Response& res) {
    send_json(res, a1111_sd_models(ctx.models.list()));
  });
  http.Get("/sdapi/v1/samplers",
           [](const httplib::Request&, httplib::Response& res) { send_json(res, a1111_samplers()); });
  http.Get("/sdapi/v1/schedulers",
           [](const httplib::Request&, httplib::Response& res) { send_json(res, a1111_schedulers()); });

  http.Get("/sdapi/v1/options", [&ctx](const httplib::Request&, httplib::Response& res) {
    std::string checkpoint = current_checkpoint(ctx);
    if (checkpoint.empty())
      if (auto m = ctx.models.default_model(jobs::ModelKind::TextToImage)) checkpoint = m->id;
    send_json(res, {{"sd_model_checkpoint", checkpoint.empty() ? json(nullptr) : json(checkpoint)},
                    {"sd_checkpoint_hash", nullptr},
                    {"CLIP_stop_at_last_layers", 1},
                    {"samples_format", "png"}});
  });
  http.Post("/sdapi/v1/options", [&ctx](const httplib::Request& req, httplib::Response& res) {
    json body = parse_body(req);
    if (!body.is_object())
      throw ApiError(400, "invalid_request_error", "the request body must be a JSON object", "", "invalid_json");
    if (body.contains("sd_model_checkpoint") && !body["sd_model_checkpoint"].is_null()) {
      if (!body["sd_model_checkpoint"].is_string())
        throw invalid_param("sd_model_checkpoint", "sd_model_checkpoint must be a model name", "invalid_type");
      std::string id =
          ctx.pick_model(body["sd_model_checkpoint"], jobs::ModelKind::TextToImage, "sd_model_checkpoint").id;
      std::lock_guard lock(checkpoint_mutex);
      checkpoints[&ctx] = id;
    }
    send_json(res, nullptr);  // other options are accepted and ignored
  });

  for (bool img2img : {false, true}) {
    register_job_type(img2img ? "sdapi.img2img" : "sdapi.txt2img",
                      {[img2img](ServerContext& c, const json& request, const std::string& caller) {
                         return parse_a1111_request(request, img2img, image_request_env(c), caller,
                                                    current_checkpoint(c));
                       },
                       [](ServerContext& c, const storage::JobRecord& job) {
                         return a1111_response(job, image_response_env(c, ""));
                       }});
  }
}

}  // namespace pictor::serve
