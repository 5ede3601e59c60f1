#include "storage/database.hpp"

#include <sqlite3.h>

#include "core/error.hpp"

namespace pictor::storage {

Database::Database(const std::filesystem::path& file) : name_(file.string()) {
  if (file != ":memory:" && file.has_parent_path()) std::filesystem::create_directories(file.parent_path());
  int rc =
      sqlite3_open_v2(name_.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = db_ ? sqlite3_errmsg(db_) : sqlite3_errstr(rc);
    sqlite3_close(db_);
    db_ = nullptr;
    throw Error("cannot open database " + name_ + ": " + msg);
  }
  // Several server threads (and a second process reading) may touch the file: wait instead of failing
  // with SQLITE_BUSY, and use WAL so readers never block the writer.
  sqlite3_busy_timeout(db_, 10000);
  exec("PRAGMA foreign_keys = ON;");
  if (file != ":memory:") {
    exec("PRAGMA journal_mode = WAL;");
    exec("PRAGMA synchronous = NORMAL;");
  }
}

Database::~Database() {
  sqlite3_close(db_);
}

void Database::fail(const std::string& what, const std::string& sql) const {
  std::string msg = "database " + name_ + ": " + what + ": " + sqlite3_errmsg(db_);
  if (!sql.empty()) msg += " (in: " + sql.substr(0, 120) + ")";
  throw Error(msg);
}

void Database::exec(const std::string& sql) {
  std::lock_guard lock(mutex_);
  char* err = nullptr;
  if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = err ? err : "unknown error";
    sqlite3_free(err);
    throw Error("database " + name_ + ": " + msg + " (in: " + sql.substr(0, 120) + ")");
  }
}

int64_t Database::last_insert_rowid() const {
  return sqlite3_last_insert_rowid(db_);
}
int Database::changes() const {
  return sqlite3_changes(db_);
}

Statement::Statement(Database& db, const std::string& sql) : db_(db), sql_(sql) {
  if (sqlite3_prepare_v2(db.handle(), sql.c_str(), int(sql.size()), &stmt_, nullptr) != SQLITE_OK)
    db.fail("cannot prepare statement", sql);
}

Statement::~Statement() {
  sqlite3_finalize(stmt_);
}

Statement& Statement::bind(int index, int64_t value) {
  if (sqlite3_bind_int64(stmt_, index, value) != SQLITE_OK) db_.fail("bind", sql_);
  return *this;
}
Statement& Statement::bind(int index, double value) {
  if (sqlite3_bind_double(stmt_, index, value) != SQLITE_OK) db_.fail("bind", sql_);
  return *this;
}
Statement& Statement::bind(int index, const std::string& value) {
  if (sqlite3_bind_text(stmt_, index, value.data(), int(value.size()), SQLITE_TRANSIENT) != SQLITE_OK)
    db_.fail("bind", sql_);
  return *this;
}
Statement& Statement::bind(int index, const std::vector<uint8_t>& blob) {
  if (sqlite3_bind_blob(stmt_, index, blob.data(), int(blob.size()), SQLITE_TRANSIENT) != SQLITE_OK)
    db_.fail("bind", sql_);
  return *this;
}
Statement& Statement::bind_null(int index) {
  if (sqlite3_bind_null(stmt_, index) != SQLITE_OK) db_.fail("bind", sql_);
  return *this;
}

bool Statement::step() {
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  db_.fail("step", sql_);
}

void Statement::reset() {
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
}

bool Statement::is_null(int column) const {
  return sqlite3_column_type(stmt_, column) == SQLITE_NULL;
}
int64_t Statement::int64(int column) const {
  return sqlite3_column_int64(stmt_, column);
}
double Statement::real(int column) const {
  return sqlite3_column_double(stmt_, column);
}
std::string Statement::text(int column) const {
  const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, column));
  return p ? std::string(p, size_t(sqlite3_column_bytes(stmt_, column))) : std::string();
}
std::optional<std::string> Statement::optional_text(int column) const {
  if (is_null(column)) return std::nullopt;
  return text(column);
}
std::vector<uint8_t> Statement::blob(int column) const {
  const auto* p = static_cast<const uint8_t*>(sqlite3_column_blob(stmt_, column));
  return p ? std::vector<uint8_t>(p, p + sqlite3_column_bytes(stmt_, column)) : std::vector<uint8_t>();
}

Transaction::Transaction(Database& db) : db_(db), lock_(db.mutex()) {
  db_.exec("BEGIN IMMEDIATE");
}
Transaction::~Transaction() {
  if (!done_) {
    try {
      db_.exec("ROLLBACK");
    } catch (...) {  // nothing sensible to do in a destructor; the connection rolls back on close
    }
  }
}
void Transaction::commit() {
  db_.exec("COMMIT");
  done_ = true;
}

}  // namespace pictor::storage
