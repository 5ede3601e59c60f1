#pragma once
// The work queue behind every endpoint. Jobs are persisted (JobStore) before they are accepted, run by a
// small pool of workers with at most one job per model at a time (a model's engine uses every core; two
// jobs on one model would only thrash), and report progress, previews and streamed text to subscribers.
// Synchronous endpoints submit a job and wait for it, so they share the queue's ordering and limits.
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/error.hpp"
#include "storage/image_store.hpp"
#include "storage/job_store.hpp"

namespace pictor::jobs {

class ModelCatalog;

struct JobSpec {
  std::string kind;   // "generate" | "describe" (job_kinds.hpp)
  std::string model;  // model id (must exist in the catalog)
  nlohmann::json params;
  std::string owner;
  nlohmann::json tags = nlohmann::json::object();
};

// A job as clients see it.
struct JobStatus {
  storage::JobRecord record;
  int step = 0, total = 0;  // progress of the current run
  double eta_s = 0;
  // Latest TAESD preview as PNG (served at /v1/jobs/{id}/preview), null when none.
  std::shared_ptr<const std::vector<uint8_t>> preview_png;
  int preview_step = 0;
  int queue_position = 0;  // 1-based among queued jobs, 0 when not queued
  nlohmann::json to_json() const;
};

// One thing that happened to a job, for event streams: type "state", "progress", "text" or "done".
struct JobEvent {
  std::string type;
  nlohmann::json data;
};

// A subscriber's mailbox. next() blocks up to `timeout_ms`; nullopt on timeout. After a "done" event
// nothing more arrives.
class JobSubscription {
 public:
  std::optional<JobEvent> next(int timeout_ms);

 private:
  friend class JobQueue;
  void push(JobEvent e);
  std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<JobEvent> events_;
};

// Thrown by submit() when the queue is full (the server answers 503 with Retry-After).
class QueueFull : public Error {
 public:
  explicit QueueFull(const std::string& what) : Error(what) {}
};

struct QueueOptions {
  int workers = 2;       // jobs running at once (on different models)
  int max_queued = 64;   // jobs waiting; more are refused with QueueFull
  int max_attempts = 2;  // runs interrupted by restarts before a job is failed instead of resumed
};

struct QueueStats {
  int queued = 0, running = 0;
  uint64_t succeeded = 0, failed = 0, cancelled = 0;
  uint64_t images_generated = 0, tokens_generated = 0;
  double latency_sum_s = 0;  // created → finished, over finished jobs since start
  uint64_t latency_count = 0;
  std::vector<double> latency_buckets_le;       // histogram bounds (s)
  std::vector<uint64_t> latency_bucket_counts;  // cumulative counts per bound
};

class JobQueue {
 public:
  // Resumes the jobs the store holds as queued or running (a run cut by a restart counts an attempt).
  JobQueue(storage::JobStore& jobs, storage::ImageStore& images, ModelCatalog& models, QueueOptions options);
  ~JobQueue();  // stops workers; running jobs are cancelled and left queued for the next start

  std::string submit(JobSpec spec);
  std::optional<JobStatus> status(const std::string& id);
  // Asks a queued or running job to stop; false when it already ended or does not exist.
  bool cancel(const std::string& id);
  // Blocks until the job ends (or timeout_ms passes; <0: no limit) and returns its status.
  JobStatus wait(const std::string& id, int timeout_ms = -1);
  // Events from now on: a "state" event with the current status comes first, then, for a running job that
  // has streamed text already, that text as one "text" event, so no delta is lost to a late subscriber.
  std::shared_ptr<JobSubscription> subscribe(const std::string& id);
  QueueStats stats();

  // Called after every job ends (in the worker thread, after the result is stored).
  void on_finished(std::function<void(const storage::JobRecord&)> listener);

 private:
  struct Live;
  void worker_loop();
  std::shared_ptr<Live> next_runnable();  // with mutex_ held
  void run(const std::shared_ptr<Live>& job);
  void publish(Live& job, JobEvent event);
  void finish(const std::shared_ptr<Live>& job);

  storage::JobStore& store_;
  storage::ImageStore& images_;
  ModelCatalog& models_;
  QueueOptions options_;

  std::mutex mutex_;
  std::condition_variable work_cv_, done_cv_;
  std::deque<std::shared_ptr<Live>> queued_;
  std::map<std::string, std::shared_ptr<Live>> live_;  // queued + running
  std::set<std::string> busy_models_;
  // Last previews of recently finished jobs (a client may ask for it just after the end).
  std::deque<std::pair<std::string, std::shared_ptr<const std::vector<uint8_t>>>> recent_previews_;
  std::vector<std::function<void(const storage::JobRecord&)>> listeners_;
  QueueStats stats_;
  bool stopping_ = false;
  std::vector<std::thread> workers_;
};

}  // namespace pictor::jobs
