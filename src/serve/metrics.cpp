#include "serve/metrics.hpp"

#include <sstream>

#include "serve/server_context.hpp"

namespace pictor::serve {

std::string route_family(const std::string& path) {
  // Keep the first two segments ("/v1/jobs", "/sdapi/v1"); everything else is "/other".
  static const char* known[] = {"/v1/images", "/v1/chat",  "/v1/jobs", "/v1/sessions", "/v1/models",
                                "/v1/files",  "/sdapi/v1", "/health",  "/metrics"};
  for (const char* k : known)
    if (path.rfind(k, 0) == 0) return k;
  return path == "/" ? "/" : "/other";
}

void Metrics::count_request(const std::string& path, int status) {
  std::lock_guard lock(mutex_);
  requests_[{route_family(path), status}]++;
}

std::string Metrics::render(ServerContext& ctx) {
  auto q = ctx.queue.stats();
  std::ostringstream o;
  auto metric = [&](const char* name, const char* type, const char* help) {
    o << "# HELP " << name << ' ' << help << "\n# TYPE " << name << ' ' << type << '\n';
  };
  metric("pictor_queue_length", "gauge", "Jobs waiting to run.");
  o << "pictor_queue_length " << q.queued << '\n';
  metric("pictor_jobs_running", "gauge", "Jobs running now.");
  o << "pictor_jobs_running " << q.running << '\n';
  metric("pictor_jobs_finished_total", "counter", "Jobs finished since start, by final state.");
  o << "pictor_jobs_finished_total{state=\"succeeded\"} " << q.succeeded << '\n';
  o << "pictor_jobs_finished_total{state=\"failed\"} " << q.failed << '\n';
  o << "pictor_jobs_finished_total{state=\"cancelled\"} " << q.cancelled << '\n';
  metric("pictor_job_latency_seconds", "histogram", "Time from submission to the end of a job.");
  for (size_t i = 0; i < q.latency_buckets_le.size(); ++i)
    o << "pictor_job_latency_seconds_bucket{le=\"" << q.latency_buckets_le[i] << "\"} " << q.latency_bucket_counts[i]
      << '\n';
  o << "pictor_job_latency_seconds_bucket{le=\"+Inf\"} " << q.latency_count << '\n';
  o << "pictor_job_latency_seconds_sum " << q.latency_sum_s << '\n';
  o << "pictor_job_latency_seconds_count " << q.latency_count << '\n';
  metric("pictor_images_generated_total", "counter", "Images produced since start.");
  o << "pictor_images_generated_total " << q.images_generated << '\n';
  metric("pictor_tokens_generated_total", "counter", "Text tokens produced since start.");
  o << "pictor_tokens_generated_total " << q.tokens_generated << '\n';
  auto loaded = ctx.models.loaded();
  uint64_t bytes = 0;
  for (auto& l : loaded) bytes += l.bytes;
  metric("pictor_models_loaded", "gauge", "Models held in memory.");
  o << "pictor_models_loaded " << loaded.size() << '\n';
  metric("pictor_model_memory_bytes", "gauge", "fp32 weight bytes of the loaded models.");
  o << "pictor_model_memory_bytes " << bytes << '\n';
  metric("pictor_model_memory_budget_bytes", "gauge", "Memory budget of the model cache.");
  o << "pictor_model_memory_budget_bytes " << ctx.models.memory_budget() << '\n';
  metric("pictor_http_requests_total", "counter", "HTTP requests by route family and status.");
  std::lock_guard lock(mutex_);
  for (auto& [key, n] : requests_)
    o << "pictor_http_requests_total{route=\"" << key.first << "\",status=\"" << key.second << "\"} " << n << '\n';
  return o.str();
}

}  // namespace pictor::serve
