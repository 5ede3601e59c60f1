#include "jobs/job_queue.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>

#include "jobs/job_kinds.hpp"
#include "jobs/model_catalog.hpp"
#include "storage/ids.hpp"

namespace pictor::jobs {

using storage::now_seconds;

struct JobQueue::Live {
  storage::JobRecord rec;
  int step = 0, total = 0;
  double eta_s = 0;
  std::shared_ptr<const std::vector<uint8_t>> preview_png;
  int preview_step = 0;
  std::string text;  // streamed so far, for subscribers that arrive after it started
  std::atomic<bool> cancel{false};
  bool shutdown = false;  // cancelled because the server is stopping: stays queued for the next start
  std::vector<std::weak_ptr<JobSubscription>> subscribers;
};

// ---- subscriptions ---------------------------------------------------------------------------------

std::optional<JobEvent> JobSubscription::next(int timeout_ms) {
  std::unique_lock lock(mutex_);
  if (!cv_.wait_for(lock, std::chrono::milliseconds(timeout_ms), [&] { return !events_.empty(); })) return std::nullopt;
  JobEvent e = std::move(events_.front());
  events_.pop_front();
  return e;
}

void JobSubscription::push(JobEvent e) {
  {
    std::lock_guard lock(mutex_);
    events_.push_back(std::move(e));
  }
  cv_.notify_all();
}

nlohmann::json JobStatus::to_json() const {
  const auto& r = record;
  nlohmann::json j = {{"id", r.id},
                      {"object", "job"},
                      {"type", r.tags.value("type", r.kind)},
                      {"kind", r.kind},
                      {"model", r.model},
                      {"owner", r.owner},
                      {"state", r.state},
                      {"step", step},
                      {"total", total},
                      {"eta_s", eta_s},
                      {"queue_position", queue_position},
                      {"preview_url", nullptr},
                      {"created", r.created},
                      {"started", r.started > 0 ? nlohmann::json(r.started) : nlohmann::json()},
                      {"finished", r.finished > 0 ? nlohmann::json(r.finished) : nlohmann::json()},
                      {"error", r.error.empty() ? nlohmann::json() : nlohmann::json(r.error)},
                      {"attempts", r.attempts},
                      {"result", r.result}};
  if (preview_png) j["preview_url"] = "/v1/jobs/" + r.id + "/preview?step=" + std::to_string(preview_step);
  return j;
}

// ---- queue -----------------------------------------------------------------------------------------

JobQueue::JobQueue(storage::JobStore& jobs, storage::ImageStore& images, ModelCatalog& models, QueueOptions options)
    : store_(jobs), images_(images), models_(models), options_(options) {
  stats_.latency_buckets_le = {0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800};
  stats_.latency_bucket_counts.assign(stats_.latency_buckets_le.size(), 0);
  // Jobs left by the previous run: queued ones are resumed in order; a run that was cut short counts as
  // an attempt, and a job that keeps getting interrupted is failed rather than retried forever.
  for (auto& rec : store_.unfinished()) {
    auto live = std::make_shared<Live>();
    live->rec = rec;
    if (rec.state == "running" && rec.attempts >= options_.max_attempts) {
      live->rec.state = "failed";
      live->rec.error = "interrupted by server restarts " + std::to_string(rec.attempts) + " times; not retried";
      live->rec.finished = now_seconds();
      store_.update(live->rec);
      continue;
    }
    live->rec.state = "queued";
    store_.update(live->rec);
    live_[rec.id] = live;
    queued_.push_back(live);
  }
  for (int i = 0; i < std::max(1, options_.workers); ++i) workers_.emplace_back([this] { worker_loop(); });
}

JobQueue::~JobQueue() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
    for (auto& [id, job] : live_) {
      job->shutdown = true;
      job->cancel = true;
    }
  }
  work_cv_.notify_all();
  for (auto& t : workers_) t.join();
}

std::string JobQueue::submit(JobSpec spec) {
  auto live = std::make_shared<Live>();
  auto& r = live->rec;
  r.id = storage::new_id("job");
  r.kind = spec.kind;
  r.model = spec.model;
  r.params = std::move(spec.params);
  r.owner = spec.owner;
  r.tags = spec.tags.is_object() ? spec.tags : nlohmann::json::object();
  r.state = "queued";
  r.result = nullptr;
  r.created = now_seconds();
  {
    std::lock_guard lock(mutex_);
    if (stopping_) throw QueueFull("the server is shutting down");
    if (int(queued_.size()) >= options_.max_queued)
      throw QueueFull("the queue is full (" + std::to_string(queued_.size()) + " jobs waiting, limit " +
                      std::to_string(options_.max_queued) + "); retry later");
    store_.insert(r);  // durable before it is acknowledged
    live_[r.id] = live;
    queued_.push_back(live);
  }
  work_cv_.notify_all();
  return r.id;
}

std::shared_ptr<JobQueue::Live> JobQueue::next_runnable() {
  for (auto it = queued_.begin(); it != queued_.end(); ++it)
    if (!busy_models_.count((*it)->rec.model)) {
      auto job = *it;
      queued_.erase(it);
      busy_models_.insert(job->rec.model);
      return job;
    }
  return nullptr;
}

void JobQueue::worker_loop() {
  for (;;) {
    std::shared_ptr<Live> job;
    {
      std::unique_lock lock(mutex_);
      work_cv_.wait(lock, [&] { return stopping_ || (job = next_runnable()) != nullptr; });
      if (!job) return;  // stopping
    }
    run(job);
  }
}

void JobQueue::publish(Live& job, JobEvent event) {
  // With mutex_ held.
  auto& subs = job.subscribers;
  subs.erase(std::remove_if(subs.begin(), subs.end(), [](auto& w) { return w.expired(); }), subs.end());
  for (auto& w : subs)
    if (auto s = w.lock()) s->push(event);
}

namespace {
JobStatus status_of_live(const storage::JobRecord& rec, int step, int total, double eta,
                         std::shared_ptr<const std::vector<uint8_t>> preview, int preview_step) {
  JobStatus s;
  s.record = rec;
  s.step = step;
  s.total = total;
  s.eta_s = eta;
  s.preview_png = std::move(preview);
  s.preview_step = preview_step;
  return s;
}
}  // namespace

void JobQueue::run(const std::shared_ptr<Live>& job) {
  {
    std::lock_guard lock(mutex_);
    job->rec.state = "running";
    job->rec.started = now_seconds();
    job->rec.attempts += 1;
    store_.update(job->rec);
    publish(*job, {"state", status_of_live(job->rec, 0, 0, 0, nullptr, 0).to_json()});
  }
  JobContext ctx{job->rec.id, job->rec.model, job->rec.params, models_, images_, {}, {}, {}};
  ctx.progress = [&](int step, int total, double eta, const Image* preview) {
    std::shared_ptr<const std::vector<uint8_t>> png;
    if (preview) png = std::make_shared<const std::vector<uint8_t>>(encode_png(*preview));
    std::lock_guard lock(mutex_);
    job->step = step;
    job->total = total;
    job->eta_s = eta;
    if (png) {
      job->preview_png = png;
      job->preview_step = step;
    }
    auto status = status_of_live(job->rec, step, total, eta, job->preview_png, job->preview_step).to_json();
    publish(*job,
            {"progress", {{"step", step}, {"total", total}, {"eta_s", eta}, {"preview_url", status["preview_url"]}}});
  };
  ctx.text = [&](const std::string& delta) {
    std::lock_guard lock(mutex_);
    job->text += delta;
    publish(*job, {"text", {{"delta", delta}}});
  };
  ctx.cancelled = [&] { return job->cancel.load(); };

  try {
    if (job->rec.kind == "generate")
      job->rec.result = run_generate_job(ctx);
    else if (job->rec.kind == "describe")
      job->rec.result = run_describe_job(ctx);
    else
      throw Error("unknown job kind \"" + job->rec.kind + "\"");
    job->rec.state = "succeeded";
  } catch (const Cancelled&) {
    job->rec.state = "cancelled";
  } catch (const std::exception& e) {
    job->rec.state = job->cancel ? "cancelled" : "failed";
    job->rec.error = dynamic_cast<const Error*>(&e) ? e.what() : std::string("internal error: ") + e.what();
  }
  if (job->shutdown && job->rec.state != "succeeded") {
    // Interrupted by shutdown: leave it queued in the store so the next start runs it again.
    std::lock_guard lock(mutex_);
    job->rec.state = "queued";
    job->rec.error.clear();
    store_.update(job->rec);
    busy_models_.erase(job->rec.model);
    live_.erase(job->rec.id);
    done_cv_.notify_all();
    return;
  }
  finish(job);
}

void JobQueue::finish(const std::shared_ptr<Live>& job) {
  std::vector<std::function<void(const storage::JobRecord&)>> listeners;
  {
    std::lock_guard lock(mutex_);
    job->rec.finished = now_seconds();
    store_.update(job->rec);
    busy_models_.erase(job->rec.model);
    live_.erase(job->rec.id);
    if (job->preview_png) {
      recent_previews_.emplace_back(job->rec.id, job->preview_png);
      if (recent_previews_.size() > 32) recent_previews_.pop_front();
    }
    const auto& r = job->rec;
    if (r.state == "succeeded") {
      stats_.succeeded++;
      if (r.result.is_object()) {
        if (r.result.contains("images")) stats_.images_generated += r.result["images"].size();
        stats_.tokens_generated += r.result.value("completion_tokens", uint64_t(0));
      }
    } else if (r.state == "failed") {
      stats_.failed++;
    } else {
      stats_.cancelled++;
    }
    double latency = r.finished - r.created;
    stats_.latency_sum_s += latency;
    stats_.latency_count++;
    for (size_t i = 0; i < stats_.latency_buckets_le.size(); ++i)
      if (latency <= stats_.latency_buckets_le[i]) stats_.latency_bucket_counts[i]++;
    JobStatus final_status = status_of_live(r, job->step, job->total, 0, job->preview_png, job->preview_step);
    publish(*job, {"done", final_status.to_json()});
    listeners = listeners_;
  }
  done_cv_.notify_all();
  work_cv_.notify_all();  // the model is free: a job waiting for it may run now
  for (auto& l : listeners) {
    try {
      l(job->rec);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "pictor serve: job listener failed for %s: %s\n", job->rec.id.c_str(), e.what());
    }
  }
}

std::optional<JobStatus> JobQueue::status(const std::string& id) {
  {
    std::lock_guard lock(mutex_);
    auto it = live_.find(id);
    if (it != live_.end()) {
      auto& j = *it->second;
      JobStatus s = status_of_live(j.rec, j.step, j.total, j.eta_s, j.preview_png, j.preview_step);
      for (size_t k = 0; k < queued_.size(); ++k)
        if (queued_[k].get() == &j) s.queue_position = int(k) + 1;
      return s;
    }
  }
  if (!storage::is_valid_id(id, "job")) return std::nullopt;
  auto rec = store_.get(id);
  if (!rec) return std::nullopt;
  std::lock_guard lock(mutex_);
  for (auto& [pid, png] : recent_previews_)
    if (pid == id) return status_of_live(*rec, 0, 0, 0, png, 0);
  return status_of_live(*rec, 0, 0, 0, nullptr, 0);
}

bool JobQueue::cancel(const std::string& id) {
  std::shared_ptr<Live> job;
  {
    std::lock_guard lock(mutex_);
    auto it = live_.find(id);
    if (it == live_.end()) return false;
    job = it->second;
    job->cancel = true;
    auto q = std::find(queued_.begin(), queued_.end(), job);
    if (q == queued_.end()) return true;  // running: the worker stops it at the next step
    queued_.erase(q);
    job->rec.state = "cancelled";
    busy_models_.insert(job->rec.model);  // finish() releases it
  }
  finish(job);
  return true;
}

JobStatus JobQueue::wait(const std::string& id, int timeout_ms) {
  {
    std::unique_lock lock(mutex_);
    auto done = [&] { return !live_.count(id); };
    if (timeout_ms < 0)
      done_cv_.wait(lock, done);
    else
      done_cv_.wait_for(lock, std::chrono::milliseconds(timeout_ms), done);
  }
  auto s = status(id);
  if (!s) throw Error("job " + id + " not found");
  return *s;
}

std::shared_ptr<JobSubscription> JobQueue::subscribe(const std::string& id) {
  auto sub = std::make_shared<JobSubscription>();
  {
    std::lock_guard lock(mutex_);
    auto it = live_.find(id);
    if (it != live_.end()) {
      auto& j = *it->second;
      sub->push({"state", status_of_live(j.rec, j.step, j.total, j.eta_s, j.preview_png, j.preview_step).to_json()});
      // A stream subscribes just after submitting; a fast job may already have produced text.
      if (!j.text.empty()) sub->push({"text", {{"delta", j.text}}});
      j.subscribers.push_back(sub);
      return sub;
    }
  }
  auto s = status(id);
  if (!s) throw Error("job " + id + " not found");
  sub->push({"state", s->to_json()});
  sub->push({"done", s->to_json()});
  return sub;
}

QueueStats JobQueue::stats() {
  std::lock_guard lock(mutex_);
  QueueStats s = stats_;
  s.queued = int(queued_.size());
  s.running = int(live_.size() - queued_.size());
  return s;
}

void JobQueue::on_finished(std::function<void(const storage::JobRecord&)> listener) {
  std::lock_guard lock(mutex_);
  listeners_.push_back(std::move(listener));
}

}  // namespace pictor::jobs
