#pragma once
// What route handlers share: the options, the store, the models and the queue, plus small helpers that
// every endpoint family needs (picking a model, storing uploads, image URLs).
#include <atomic>
#include <memory>
#include <string>

#include "jobs/job_queue.hpp"
#include "jobs/model_catalog.hpp"
#include "serve/server_options.hpp"
#include "storage/image_store.hpp"
#include "storage/job_store.hpp"

namespace pictor::serve {

class Metrics;
class Auth;

struct ServerContext {
  ServerOptions options;
  storage::Database& db;
  storage::ImageStore& images;
  storage::JobStore& job_records;
  jobs::ModelCatalog& models;
  jobs::JobQueue& queue;
  Metrics& metrics;
  Auth& auth;
  // Set when the server stops: long-lived streams (SSE) end so the server can shut down.
  std::atomic<bool>& stopping;

  // The model a request names, checked to exist and be of `kind` (ApiError 404/400 naming `param`
  // otherwise); an empty name picks the default model of that kind.
  jobs::ModelInfo pick_model(const std::string& name, jobs::ModelKind kind, const std::string& param = "model");
  // Submits a job, turning a full queue into ApiError 503.
  std::string submit(jobs::JobSpec spec);
  // Submits and waits; a failed job becomes ApiError 500 (or 400 when the engine refused the input).
  jobs::JobStatus run_and_wait(jobs::JobSpec spec);
  // Path under which stored images are served: "/v1/files/images/<id>.<ext>".
  static std::string image_path(const storage::StoredImage& image);
};

}  // namespace pictor::serve
