#pragma once
// A small RAII layer over SQLite: one Database per file (WAL mode, foreign keys, busy timeout so several
// threads and processes can share it), prepared Statements with typed binds and column reads, and
// transactions. Every SQLite failure throws pictor::Error naming the database file and the statement.
#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

struct sqlite3;
struct sqlite3_stmt;

namespace pictor::storage {

class Database;

class Statement {
 public:
  Statement(Database& db, const std::string& sql);
  ~Statement();
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  // Binds are 1-based like SQLite's; they return *this so calls chain.
  Statement& bind(int index, int64_t value);
  Statement& bind(int index, double value);
  Statement& bind(int index, const std::string& value);
  Statement& bind(int index, const std::vector<uint8_t>& blob);
  Statement& bind_null(int index);
  Statement& bind(int index, const std::optional<std::string>& value) {
    return value ? bind(index, *value) : bind_null(index);
  }

  // Advances to the next row; false when done. Statements that return no rows: run().
  bool step();
  void run() {
    while (step()) {
    }
  }
  void reset();  // to re-run with new binds

  bool is_null(int column) const;
  int64_t int64(int column) const;
  double real(int column) const;
  std::string text(int column) const;
  std::optional<std::string> optional_text(int column) const;
  std::vector<uint8_t> blob(int column) const;

 private:
  Database& db_;
  sqlite3_stmt* stmt_ = nullptr;
  std::string sql_;
};

class Database {
 public:
  // Opens (creating if needed) the database file; ":memory:" gives a private in-memory database.
  explicit Database(const std::filesystem::path& file);
  ~Database();
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;

  void exec(const std::string& sql);  // one or more statements without parameters
  int64_t last_insert_rowid() const;
  int changes() const;  // rows changed by the last statement
  const std::string& name() const { return name_; }
  sqlite3* handle() { return db_; }

  // Serialises users of this connection: SQLite connections are not to be used by two threads at once.
  std::recursive_mutex& mutex() { return mutex_; }

  [[noreturn]] void fail(const std::string& what, const std::string& sql = "") const;

 private:
  sqlite3* db_ = nullptr;
  std::string name_;
  std::recursive_mutex mutex_;
};

// BEGIN IMMEDIATE ... COMMIT, rolled back when destroyed without commit() (an exception on the way).
// Holds the database mutex for its lifetime.
class Transaction {
 public:
  explicit Transaction(Database& db);
  ~Transaction();
  void commit();

 private:
  Database& db_;
  std::lock_guard<std::recursive_mutex> lock_;
  bool done_ = false;
};

}  // namespace pictor::storage
