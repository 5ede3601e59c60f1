#include "serve/server_context.hpp"

#include "serve/api_error.hpp"

namespace pictor::serve {

jobs::ModelInfo ServerContext::pick_model(const std::string& name, jobs::ModelKind kind, const std::string& param) {
  const char* what = kind == jobs::ModelKind::TextToImage ? "text-to-image" : "image-to-text";
  if (name.empty()) {
    auto m = models.default_model(kind);
    if (!m)
      throw ApiError(404, "invalid_request_error",
                     std::string("no ") + what + " model is installed in " + options.models_dir.string() +
                         " (put a model folder there, e.g. with `pictor pull`)",
                     param, "model_not_found");
    return *m;
  }
  auto m = models.find(name);
  if (!m)
    throw ApiError(
        404, "invalid_request_error",
        "the model \"" + name + "\" does not exist in " + options.models_dir.string() + " (GET /v1/models lists them)",
        param, "model_not_found");
  if (m->kind != kind)
    throw invalid_param(param, "the model \"" + name + "\" is not a " + what + " model", "wrong_model_kind");
  return *m;
}

std::string ServerContext::submit(jobs::JobSpec spec) {
  try {
    return queue.submit(std::move(spec));
  } catch (const jobs::QueueFull& e) {
    ApiError err(503, "server_error", e.what(), "", "queue_full");
    err.retry_after_s = 5;
    throw err;
  }
}

jobs::JobStatus ServerContext::run_and_wait(jobs::JobSpec spec) {
  auto id = submit(std::move(spec));
  auto status = queue.wait(id);
  const auto& r = status.record;
  if (r.state == "cancelled")
    throw ApiError(409, "invalid_request_error", "job " + id + " was cancelled", "", "cancelled");
  // The engine reports what it refuses (a prompt longer than the model's context, an unsupported option)
  // as pictor::Error: the request's fault, 400. Anything else (the queue marks it "internal error") is ours.
  if (r.state != "succeeded") {
    bool internal = r.error.rfind("internal error", 0) == 0 || r.error.rfind("interrupted", 0) == 0;
    throw ApiError(internal ? 500 : 400, internal ? "server_error" : "invalid_request_error",
                   "job " + id + " failed: " + r.error, "", "job_failed");
  }
  return status;
}

std::string ServerContext::image_path(const storage::StoredImage& image) {
  return "/v1/files/images/" + image.id + (image.format == "jpeg" ? ".jpg" : "." + image.format);
}

}  // namespace pictor::serve
