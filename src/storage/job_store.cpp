#include "storage/job_store.hpp"

namespace pictor::storage {

namespace {

const char* kColumns =
    "id, kind, model, owner, state, params, tags, result, error, created, started, finished, attempts";

nlohmann::json parse_or(const std::string& text, nlohmann::json fallback) {
  auto j = nlohmann::json::parse(text, nullptr, false);
  return j.is_discarded() ? fallback : j;
}

JobRecord read_row(const Statement& q) {
  JobRecord r;
  r.id = q.text(0);
  r.kind = q.text(1);
  r.model = q.text(2);
  r.owner = q.text(3);
  r.state = q.text(4);
  r.params = parse_or(q.text(5), nlohmann::json::object());
  r.tags = parse_or(q.text(6), nlohmann::json::object());
  r.result = parse_or(q.text(7), nullptr);
  r.error = q.text(8);
  r.created = q.real(9);
  r.started = q.real(10);
  r.finished = q.real(11);
  r.attempts = int(q.int64(12));
  return r;
}

}  // namespace

JobStore::JobStore(Database& db) : db_(db) {
  db_.exec(R"(CREATE TABLE IF NOT EXISTS jobs (
      id TEXT PRIMARY KEY, kind TEXT NOT NULL, model TEXT NOT NULL, owner TEXT NOT NULL, state TEXT NOT NULL,
      params TEXT NOT NULL, tags TEXT NOT NULL, result TEXT NOT NULL, error TEXT NOT NULL,
      created REAL NOT NULL, started REAL NOT NULL, finished REAL NOT NULL, attempts INTEGER NOT NULL);
    CREATE INDEX IF NOT EXISTS jobs_by_state ON jobs(state, created);
    CREATE INDEX IF NOT EXISTS jobs_by_owner ON jobs(owner, created))");
}

void JobStore::insert(const JobRecord& job) {
  std::lock_guard lock(db_.mutex());
  Statement q(db_, std::string("INSERT INTO jobs (") + kColumns + ") VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)");
  q.bind(1, job.id).bind(2, job.kind).bind(3, job.model).bind(4, job.owner).bind(5, job.state);
  q.bind(6, job.params.dump()).bind(7, job.tags.dump()).bind(8, job.result.dump()).bind(9, job.error);
  q.bind(10, job.created).bind(11, job.started).bind(12, job.finished).bind(13, int64_t(job.attempts));
  q.run();
}

void JobStore::update(const JobRecord& job) {
  std::lock_guard lock(db_.mutex());
  Statement q(db_,
              "UPDATE jobs SET state = ?, tags = ?, result = ?, error = ?, started = ?, finished = ?, attempts = ? "
              "WHERE id = ?");
  q.bind(1, job.state).bind(2, job.tags.dump()).bind(3, job.result.dump()).bind(4, job.error);
  q.bind(5, job.started).bind(6, job.finished).bind(7, int64_t(job.attempts)).bind(8, job.id);
  q.run();
}

std::optional<JobRecord> JobStore::get(const std::string& id) {
  std::lock_guard lock(db_.mutex());
  Statement q(db_, std::string("SELECT ") + kColumns + " FROM jobs WHERE id = ?");
  q.bind(1, id);
  if (!q.step()) return std::nullopt;
  return read_row(q);
}

std::vector<JobRecord> JobStore::unfinished() {
  std::lock_guard lock(db_.mutex());
  Statement q(db_, std::string("SELECT ") + kColumns +
                       " FROM jobs WHERE state IN ('queued', 'running') ORDER BY created, rowid");
  std::vector<JobRecord> out;
  while (q.step()) out.push_back(read_row(q));
  return out;
}

std::vector<JobRecord> JobStore::recent(int limit, const std::string& owner) {
  std::lock_guard lock(db_.mutex());
  std::string sql = std::string("SELECT ") + kColumns + " FROM jobs";
  if (!owner.empty()) sql += " WHERE owner = ?";
  sql += " ORDER BY created DESC, rowid DESC LIMIT ?";
  Statement q(db_, sql);
  int k = 1;
  if (!owner.empty()) q.bind(k++, owner);
  q.bind(k, int64_t(limit));
  std::vector<JobRecord> out;
  while (q.step()) out.push_back(read_row(q));
  return out;
}

}  // namespace pictor::storage
