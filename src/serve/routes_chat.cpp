// POST /v1/chat/completions: OpenAI-compatible chat about images. The request
// is validated and its images fetched/stored (chat_request.hpp,
// image_source.hpp) before a "describe" job is queued, so a bad request never
// takes a queue slot. Without `stream` the handler waits for the job; with it,
// the job's "text" events are relayed as chat.completion.chunk server-sent
// events.
#include <httplib.h>

#include <chrono>

#include "jobs/job_queue.hpp"
#include "serve/chat_request.hpp"
#include "serve/http_util.hpp"
#include "serve/image_source.hpp"
#include "serve/routes.hpp"
#include "serve/server_context.hpp"

namespace pictor::serve {

using nlohmann::json;

namespace {

constexpr int kKeepAliveS = 15;

struct PreparedChat {
  ChatRequest request;
  jobs::JobSpec spec;
};

PreparedChat prepare_chat(ServerContext& ctx, const json& body, const std::string& caller) {
  ChatLimits limits;
  limits.max_images = ctx.options.max_images_per_request;
  PreparedChat p{parse_chat_request(body, limits), {}};
  const jobs::ModelInfo model = ctx.pick_model(p.request.model, jobs::ModelKind::ImageToText);
  std::vector<std::string> ids;
  for (const ChatImageRef& ref : p.request.images)
    ids.push_back(store_image_source(ctx.images, ref.url, ctx.options, ref.param).id);
  attach_image_ids(p.request, ids);
  p.spec.kind = "describe";
  p.spec.model = model.id;
  p.spec.params = p.request.params;
  p.spec.owner = caller;
  p.spec.tags = {{"type", "chat.completions"}};
  if (!p.request.user.empty()) p.spec.tags["user"] = p.request.user;
  return p;
}

int64_t created_of(const storage::JobRecord& job) {
  return static_cast<int64_t>(job.created);
}

// Relays a running job's events as chat.completion.chunk events until [DONE];
// cancels the job when the client goes away or the server stops.
void stream_chat(ServerContext& ctx, const std::string& job_id, bool include_usage,
                 const std::shared_ptr<jobs::JobSubscription>& sub, const SseWriter& write) {
  const auto status = ctx.queue.status(job_id);
  const std::string id = chat_completion_id(job_id), model = status ? status->record.model : "";
  const int64_t created = status ? created_of(status->record) : 0;
  auto send = [&](const json& chunk) { return write("", chunk.dump()); };
  auto gone = [&] { ctx.queue.cancel(job_id); };

  if (!send(chat_chunk(id, created, model, {{"role", "assistant"}, {"content", ""}}))) return gone();
  auto last_write = std::chrono::steady_clock::now();
  std::string streamed;
  for (;;) {
    if (ctx.stopping.load()) return gone();
    const std::optional<jobs::JobEvent> ev = sub->next(500);
    if (!ev) {
      if (std::chrono::steady_clock::now() - last_write > std::chrono::seconds(kKeepAliveS)) {
        if (!write("", ": keep-alive")) return gone();
        last_write = std::chrono::steady_clock::now();
      }
      continue;
    }
    if (ev->type == "text") {
      const std::string delta = ev->data.value("delta", "");
      if (!delta.empty() && !send(chat_chunk(id, created, model, {{"content", delta}}))) return gone();
      streamed += delta;
      last_write = std::chrono::steady_clock::now();
    } else if (ev->type == "done") {
      const json& job = ev->data;
      const std::string state = job.value("state", "");
      if (state == "succeeded") {
        const json& result = job.at("result");
        // Text not seen as events (the job can end before the subscription saw it run) comes in one piece.
        const std::string text = result.value("text", "");
        if (text.size() > streamed.size() && text.compare(0, streamed.size(), streamed) == 0 &&
            !send(chat_chunk(id, created, model, {{"content", text.substr(streamed.size())}})))
          return;
        if (!send(chat_chunk(id, created, model, json::object(), result.value("finish_reason", "stop")))) return;
        if (include_usage && !send(chat_usage_chunk(id, created, model, chat_usage(result)))) return;
      } else {
        const std::string message = state == "cancelled" ? "the request was cancelled"
                                                         : "generation failed: " + job.value("error", std::string());
        ApiError err(state == "cancelled" ? 409 : 500, "server_error", message, "",
                     state == "cancelled" ? "cancelled" : "job_failed");
        if (!write("", api_error_json(err).dump())) return;
      }
      write("", "[DONE]");
      return;
    }
  }
}

}  // namespace

void add_chat_routes(httplib::Server& http, ServerContext& ctx) {
  register_job_type("chat.completions", {[](ServerContext& c, const json& request, const std::string& caller) {
                                           return prepare_chat(c, request, caller).spec;
                                         },
                                         [](ServerContext&, const storage::JobRecord& job) {
                                           return chat_completion(chat_completion_id(job.id), created_of(job),
                                                                  job.model, job.result);
                                         }});

  http.Post("/v1/chat/completions", [&ctx](const httplib::Request& req, httplib::Response& res) {
    PreparedChat p = prepare_chat(ctx, parse_json_body(req), caller_of(ctx, req));
    if (!p.request.stream) {
      const jobs::JobStatus done = ctx.run_and_wait(std::move(p.spec));
      send_json(res, chat_completion(chat_completion_id(done.record.id), created_of(done.record), done.record.model,
                                     done.record.result));
      return;
    }
    const std::string job_id = ctx.submit(std::move(p.spec));
    auto sub = ctx.queue.subscribe(job_id);
    const bool include_usage = p.request.include_usage;
    send_event_stream(res, [&ctx, job_id, include_usage, sub](const SseWriter& write) {
      stream_chat(ctx, job_id, include_usage, sub, write);
    });
  });
}

}  // namespace pictor::serve
