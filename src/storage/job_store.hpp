#pragma once
// Durable job records: what was asked (kind, model, parameters), by whom, and how it ended. The queue
// writes every state change here before reporting it, so after a restart no finished result is lost and
// every job that was queued or running is found again (JobStore::unfinished).
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "storage/database.hpp"

namespace pictor::storage {

struct JobRecord {
  std::string id;         // "job_..."
  std::string kind;       // "generate", "describe"
  std::string model;      // model id
  std::string owner;      // who asked (API key name or user name)
  std::string state;      // "queued", "running", "succeeded", "failed", "cancelled"
  nlohmann::json params;  // kind-specific request (see jobs/job_kinds.hpp)
  nlohmann::json tags;    // caller's bookkeeping, e.g. {"session":..., "node":...}; object
  nlohmann::json result;  // kind-specific result when succeeded
  std::string error;      // message when failed
  double created = 0, started = 0, finished = 0;
  int attempts = 0;  // runs started (a restart during a run starts another)
};

class JobStore {
 public:
  explicit JobStore(Database& db);
  void insert(const JobRecord& job);
  void update(const JobRecord& job);  // every mutable field by id
  std::optional<JobRecord> get(const std::string& id);
  std::vector<JobRecord> unfinished();  // queued or running, oldest first
  std::vector<JobRecord> recent(int limit, const std::string& owner = "");

 private:
  Database& db_;
};

}  // namespace pictor::storage
