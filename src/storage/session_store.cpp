#include "storage/session_store.hpp"

#include <mutex>

#include "core/error.hpp"
#include "storage/ids.hpp"
#include "storage/prompt_diff.hpp"

namespace pictor::storage {

namespace {

const char* kNodeColumns =
    "id, session, parent, operation, author, created, model, prompt, negative_prompt, prompt_diff, seed, params, "
    "replay_of, state, job, images, text, error, revision";

SessionNode read_node(const Statement& s) {
  SessionNode n;
  n.id = s.text(0);
  n.session = s.text(1);
  n.parent = s.optional_text(2);
  n.operation = s.text(3);
  n.author = s.text(4);
  n.created = s.real(5);
  n.model = s.text(6);
  n.prompt = s.text(7);
  n.negative_prompt = s.text(8);
  n.prompt_diff = nlohmann::json::parse(s.text(9));
  // Seeds are unsigned 64-bit; SQLite integers are signed, so they are stored bit-for-bit.
  if (!s.is_null(10)) n.seed = static_cast<uint64_t>(s.int64(10));
  n.params = nlohmann::json::parse(s.text(11));
  n.replay_of = s.optional_text(12);
  n.state = s.text(13);
  n.job = s.text(14);
  n.images = nlohmann::json::parse(s.text(15));
  n.text = s.optional_text(16);
  n.error = s.optional_text(17);
  n.revision = s.int64(18);
  return n;
}

Session read_session(const Statement& s) {
  Session out;
  out.id = s.text(0);
  out.title = s.text(1);
  out.created = s.real(2);
  out.updated = s.real(3);
  out.created_by = s.text(4);
  out.node_count = s.int64(5);
  return out;
}

const char* kSessionSelect =
    "SELECT s.id, s.title, s.created, s.updated, s.created_by, "
    "(SELECT COUNT(*) FROM session_nodes n WHERE n.session = s.id) FROM sessions s";

bool is_terminal(const std::string& state) {
  return state == "succeeded" || state == "failed" || state == "cancelled";
}

}  // namespace

SessionStore::SessionStore(Database& db) : db_(db) {
  db_.exec(R"(
    CREATE TABLE IF NOT EXISTS sessions (
      id TEXT PRIMARY KEY,
      title TEXT NOT NULL,
      created REAL NOT NULL,
      updated REAL NOT NULL,
      created_by TEXT NOT NULL,
      revision INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE IF NOT EXISTS session_nodes (
      seq INTEGER PRIMARY KEY AUTOINCREMENT,
      id TEXT NOT NULL UNIQUE,
      session TEXT NOT NULL REFERENCES sessions(id),
      parent TEXT REFERENCES session_nodes(id),
      operation TEXT NOT NULL,
      author TEXT NOT NULL,
      created REAL NOT NULL,
      model TEXT NOT NULL,
      prompt TEXT NOT NULL,
      negative_prompt TEXT NOT NULL,
      prompt_diff TEXT NOT NULL,
      seed INTEGER,
      params TEXT NOT NULL,
      replay_of TEXT,
      state TEXT NOT NULL,
      job TEXT NOT NULL,
      images TEXT NOT NULL,
      text TEXT,
      error TEXT,
      revision INTEGER NOT NULL
    );
    CREATE INDEX IF NOT EXISTS session_nodes_by_session ON session_nodes(session, seq);
    CREATE INDEX IF NOT EXISTS session_nodes_by_revision ON session_nodes(session, revision);
    CREATE INDEX IF NOT EXISTS session_nodes_by_job ON session_nodes(job);
    CREATE TABLE IF NOT EXISTS session_events (
      session TEXT NOT NULL REFERENCES sessions(id),
      revision INTEGER NOT NULL,
      node TEXT NOT NULL,
      PRIMARY KEY (session, revision)
    );
    CREATE TABLE IF NOT EXISTS session_heads (
      session TEXT NOT NULL REFERENCES sessions(id),
      author TEXT NOT NULL,
      node TEXT REFERENCES session_nodes(id),
      PRIMARY KEY (session, author)
    );
  )");
}

Session SessionStore::create_session(const std::string& title, const std::string& created_by) {
  Session s;
  s.id = new_id("ses");
  s.title = title;
  s.created = s.updated = now_seconds();
  s.created_by = created_by;
  Transaction tx(db_);
  Statement(db_, "INSERT INTO sessions (id, title, created, updated, created_by) VALUES (?, ?, ?, ?, ?)")
      .bind(1, s.id)
      .bind(2, s.title)
      .bind(3, s.created)
      .bind(4, s.updated)
      .bind(5, s.created_by)
      .run();
  tx.commit();
  return s;
}

std::optional<Session> SessionStore::get_session(const std::string& id) {
  std::lock_guard lock(db_.mutex());
  Statement s(db_, std::string(kSessionSelect) + " WHERE s.id = ?");
  s.bind(1, id);
  if (!s.step()) return std::nullopt;
  return read_session(s);
}

std::vector<Session> SessionStore::list_sessions() {
  std::lock_guard lock(db_.mutex());
  Statement s(db_, std::string(kSessionSelect) + " ORDER BY s.updated DESC, s.id");
  std::vector<Session> out;
  while (s.step()) out.push_back(read_session(s));
  return out;
}

int64_t SessionStore::next_revision(const std::string& session) {
  Statement(db_, "UPDATE sessions SET revision = revision + 1 WHERE id = ?").bind(1, session).run();
  Statement s(db_, "SELECT revision FROM sessions WHERE id = ?");
  s.bind(1, session);
  if (!s.step()) throw Error("session " + session + " does not exist");
  return s.int64(0);
}

void SessionStore::touch_session(const std::string& session, double when) {
  Statement(db_, "UPDATE sessions SET updated = max(updated, ?) WHERE id = ?").bind(1, when).bind(2, session).run();
}

void SessionStore::record_event(const SessionNode& node) {
  Statement(db_, "INSERT INTO session_events (session, revision, node) VALUES (?, ?, ?)")
      .bind(1, node.session)
      .bind(2, node.revision)
      .bind(3, node_to_json(node).dump())
      .run();
}

std::vector<SessionStore::NodeEvent> SessionStore::events_since(const std::string& session, int64_t revision,
                                                                int limit) {
  std::lock_guard lock(db_.mutex());
  Statement s(db_,
              "SELECT revision, node FROM session_events WHERE session = ? AND revision > ? ORDER BY revision "
              "LIMIT ?");
  s.bind(1, session).bind(2, revision).bind(3, int64_t(limit));
  std::vector<NodeEvent> out;
  while (s.step()) out.push_back({s.int64(0), nlohmann::json::parse(s.text(1))});
  return out;
}

int64_t SessionStore::revision(const std::string& session) {
  std::lock_guard lock(db_.mutex());
  Statement s(db_, "SELECT revision FROM sessions WHERE id = ?");
  s.bind(1, session);
  return s.step() ? s.int64(0) : 0;
}

SessionNode SessionStore::append_node(SessionNode node) {
  if (node.id.empty()) node.id = new_id("node");
  node.created = now_seconds();
  Transaction tx(db_);
  {
    Statement s(db_, "SELECT 1 FROM sessions WHERE id = ?");
    s.bind(1, node.session);
    if (!s.step()) throw Error("session " + node.session + " does not exist");
  }
  std::string parent_prompt;
  if (node.parent) {
    auto parent = get_node_locked(*node.parent);
    if (!parent || parent->session != node.session)
      throw Error("parent " + *node.parent + " is not a node of session " + node.session);
    parent_prompt = parent->prompt;
  }
  node.prompt_diff = node.parent ? prompt_diff_json(prompt_diff(parent_prompt, node.prompt)) : nlohmann::json::array();
  node.revision = next_revision(node.session);
  Statement ins(db_, std::string("INSERT INTO session_nodes (") + kNodeColumns +
                         ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
  ins.bind(1, node.id)
      .bind(2, node.session)
      .bind(3, node.parent)
      .bind(4, node.operation)
      .bind(5, node.author)
      .bind(6, node.created)
      .bind(7, node.model)
      .bind(8, node.prompt)
      .bind(9, node.negative_prompt)
      .bind(10, node.prompt_diff.dump());
  if (node.seed)
    ins.bind(11, static_cast<int64_t>(*node.seed));
  else
    ins.bind_null(11);
  ins.bind(12, node.params.dump())
      .bind(13, node.replay_of)
      .bind(14, node.state)
      .bind(15, node.job)
      .bind(16, node.images.dump())
      .bind(17, node.text)
      .bind(18, node.error)
      .bind(19, node.revision)
      .run();
  Statement(db_,
            "INSERT INTO session_heads (session, author, node) VALUES (?, ?, ?) "
            "ON CONFLICT(session, author) DO UPDATE SET node = excluded.node")
      .bind(1, node.session)
      .bind(2, node.author)
      .bind(3, node.id)
      .run();
  touch_session(node.session, node.created);
  record_event(node);
  tx.commit();
  return node;
}

std::optional<SessionNode> SessionStore::get_node_locked(const std::string& id) {
  Statement s(db_, std::string("SELECT ") + kNodeColumns + " FROM session_nodes WHERE id = ?");
  s.bind(1, id);
  if (!s.step()) return std::nullopt;
  return read_node(s);
}

std::optional<SessionNode> SessionStore::get_node(const std::string& id) {
  std::lock_guard lock(db_.mutex());
  return get_node_locked(id);
}

std::vector<SessionNode> SessionStore::nodes(const std::string& session) {
  std::lock_guard lock(db_.mutex());
  Statement s(db_, std::string("SELECT ") + kNodeColumns + " FROM session_nodes WHERE session = ? ORDER BY seq");
  s.bind(1, session);
  std::vector<SessionNode> out;
  while (s.step()) out.push_back(read_node(s));
  return out;
}

std::vector<SessionNode> SessionStore::changed_since(const std::string& session, int64_t revision) {
  std::lock_guard lock(db_.mutex());
  Statement s(db_, std::string("SELECT ") + kNodeColumns +
                       " FROM session_nodes WHERE session = ? AND revision > ? ORDER BY revision");
  s.bind(1, session).bind(2, revision);
  std::vector<SessionNode> out;
  while (s.step()) out.push_back(read_node(s));
  return out;
}

std::vector<SessionNode> SessionStore::unfinished_nodes(const std::string& session) {
  std::lock_guard lock(db_.mutex());
  Statement s(db_, std::string("SELECT ") + kNodeColumns +
                       " FROM session_nodes WHERE state IN ('queued', 'running') AND (? = '' OR session = ?) "
                       "ORDER BY seq");
  s.bind(1, session).bind(2, session);
  std::vector<SessionNode> out;
  while (s.step()) out.push_back(read_node(s));
  return out;
}

std::optional<SessionNode> SessionStore::set_node_outcome(const std::string& node_id, const NodeOutcome& outcome) {
  Transaction tx(db_);
  auto node = get_node_locked(node_id);
  if (!node) return std::nullopt;
  bool changed = false;
  auto assign = [&](auto& field, const auto& value) {
    if (value && field != *value) {
      field = *value;
      changed = true;
    }
  };
  if (outcome.state && !(node->finished() && !is_terminal(*outcome.state))) assign(node->state, outcome.state);
  assign(node->job, outcome.job);
  assign(node->images, outcome.images);
  if (outcome.text && node->text != outcome.text) node->text = outcome.text, changed = true;
  if (outcome.error && node->error != outcome.error) node->error = outcome.error, changed = true;
  if (!changed) return node;  // nothing new: no revision, so live views are not woken for nothing
  node->revision = next_revision(node->session);
  Statement(db_,
            "UPDATE session_nodes SET state = ?, job = ?, images = ?, text = ?, error = ?, revision = ? WHERE id = ?")
      .bind(1, node->state)
      .bind(2, node->job)
      .bind(3, node->images.dump())
      .bind(4, node->text)
      .bind(5, node->error)
      .bind(6, node->revision)
      .bind(7, node->id)
      .run();
  touch_session(node->session, now_seconds());
  record_event(*node);
  tx.commit();
  return node;
}

std::map<std::string, std::string> SessionStore::heads(const std::string& session) {
  std::lock_guard lock(db_.mutex());
  Statement s(db_, "SELECT author, node FROM session_heads WHERE session = ? AND node IS NOT NULL ORDER BY author");
  s.bind(1, session);
  std::map<std::string, std::string> out;
  while (s.step()) out[s.text(0)] = s.text(1);
  return out;
}

std::optional<std::string> SessionStore::head(const std::string& session, const std::string& author) {
  std::lock_guard lock(db_.mutex());
  Statement s(db_, "SELECT node FROM session_heads WHERE session = ? AND author = ?");
  s.bind(1, session).bind(2, author);
  if (!s.step()) return std::nullopt;
  return s.optional_text(0);
}

void SessionStore::set_head(const std::string& session, const std::string& author,
                            const std::optional<std::string>& node) {
  Transaction tx(db_);
  {
    Statement s(db_, "SELECT 1 FROM sessions WHERE id = ?");
    s.bind(1, session);
    if (!s.step()) throw Error("session " + session + " does not exist");
  }
  if (node) {
    auto n = get_node_locked(*node);
    if (!n || n->session != session) throw Error("node " + *node + " is not a node of session " + session);
  }
  Statement(db_,
            "INSERT INTO session_heads (session, author, node) VALUES (?, ?, ?) "
            "ON CONFLICT(session, author) DO UPDATE SET node = excluded.node")
      .bind(1, session)
      .bind(2, author)
      .bind(3, node)
      .run();
  tx.commit();
}

std::optional<std::string> SessionStore::undo(const std::string& session, const std::string& author) {
  Transaction tx(db_);
  std::optional<std::string> current;
  {
    Statement s(db_, "SELECT node FROM session_heads WHERE session = ? AND author = ?");
    s.bind(1, session).bind(2, author);
    if (s.step()) current = s.optional_text(0);
  }
  if (!current) return std::nullopt;
  auto node = get_node_locked(*current);
  std::optional<std::string> parent = node ? node->parent : std::nullopt;
  Statement(db_, "UPDATE session_heads SET node = ? WHERE session = ? AND author = ?")
      .bind(1, parent)
      .bind(2, session)
      .bind(3, author)
      .run();
  tx.commit();
  return parent;
}

nlohmann::json node_to_json(const SessionNode& n) {
  auto opt = [](const std::optional<std::string>& v) -> nlohmann::json { return v ? nlohmann::json(*v) : nullptr; };
  return {{"id", n.id},
          {"object", "session.node"},
          {"session", n.session},
          {"parent", opt(n.parent)},
          {"operation", n.operation},
          {"author", n.author},
          {"created", n.created},
          {"model", n.model},
          {"prompt", n.prompt},
          {"negative_prompt", n.negative_prompt},
          {"prompt_diff", n.prompt_diff},
          {"seed", n.seed ? nlohmann::json(*n.seed) : nlohmann::json(nullptr)},
          {"params", n.params},
          {"replay_of", opt(n.replay_of)},
          {"state", n.state},
          {"job", n.job.empty() ? nlohmann::json(nullptr) : nlohmann::json(n.job)},
          {"images", n.images},
          {"text", opt(n.text)},
          {"error", opt(n.error)},
          {"revision", n.revision}};
}

nlohmann::json session_summary_json(const Session& s) {
  return {{"id", s.id},           {"object", "session"},        {"title", s.title},
          {"created", s.created}, {"created_by", s.created_by}, {"node_count", s.node_count},
          {"updated", s.updated}};
}

}  // namespace pictor::storage
