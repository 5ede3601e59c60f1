#pragma once
// Refinement sessions: a history graph of images. A session holds nodes; each node is one step (generate,
// prompt edit, img2img, inpaint, variation, describe) with a parent (null for roots), so trying another
// idea from an older image is just a new child of that node: branches come for free and nothing is ever
// lost. Every author has a head (the node they are looking at); undo moves it to its parent.
//
// History is append-only: the fields that describe what was asked (parent, operation, author, prompt,
// seed, params ...) are written once. Only the outcome (state, job, images, text, error) changes while the
// node's job runs. Every change bumps the node's `revision` to the session's next number, so a live view
// can ask for "everything changed since revision R" (changed_since) without missing updates.
//
// All writes run in IMMEDIATE transactions, so several threads and processes appending to the same session
// at once each land their node.
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "storage/database.hpp"

namespace pictor::storage {

struct SessionNode {
  std::string id;  // "node_..."; append_node assigns one when empty
  std::string session;
  std::optional<std::string> parent;
  std::string operation;  // "generate" | "prompt_edit" | "img2img" | "inpaint" | "variation" | "describe"
  std::string author;
  double created = 0;  // set by append_node
  std::string model;
  std::string prompt, negative_prompt;
  nlohmann::json prompt_diff = nlohmann::json::array();  // vs the parent's prompt; set by append_node
  std::optional<uint64_t> seed;
  nlohmann::json params = nlohmann::json::object();  // width, height, steps, guidance_scale, sampler ...
  std::optional<std::string> replay_of;
  // Outcome, updated as the job runs.
  std::string state = "queued";                     // "queued" | "running" | "succeeded" | "failed" | "cancelled"
  std::string job;                                  // job id ("" until submitted)
  nlohmann::json images = nlohmann::json::array();  // [{"id","url"}]
  std::optional<std::string> text, error;
  int64_t revision = 0;  // session-wide change number of the last change to this node

  bool finished() const { return state == "succeeded" || state == "failed" || state == "cancelled"; }
};

struct Session {
  std::string id;  // "ses_..."
  std::string title;
  double created = 0, updated = 0;  // updated: last node created or changed
  std::string created_by;
  int64_t node_count = 0;
};

// The outcome of a node's job, as set_node_outcome writes it; unset fields stay as they are.
struct NodeOutcome {
  // Default member initialisers let callers name only what they set ({.state = "running"}).
  std::optional<std::string> state = {}, job = {};
  std::optional<nlohmann::json> images = {};
  std::optional<std::string> text = {}, error = {};
};

class SessionStore {
 public:
  explicit SessionStore(Database& db);  // creates the tables when missing

  Session create_session(const std::string& title, const std::string& created_by);
  std::optional<Session> get_session(const std::string& id);
  std::vector<Session> list_sessions();  // most recently updated first

  // Appends a node (id, created, prompt_diff and revision are filled in) and moves its author's head to
  // it. Throws pictor::Error when the session does not exist or the parent is not a node of that session.
  SessionNode append_node(SessionNode node);
  std::optional<SessionNode> get_node(const std::string& id);
  std::vector<SessionNode> nodes(const std::string& session);  // creation order
  // Nodes of the session changed (or created) after `revision`, in revision order.
  std::vector<SessionNode> changed_since(const std::string& session, int64_t revision);
  // Every node snapshot written after `revision` (creation and each outcome change, one per revision, in
  // order), so a live view sees each state a node went through even when it polls less often than the
  // states change.
  struct NodeEvent {
    int64_t revision;
    nlohmann::json node;  // node_to_json at that revision
  };
  std::vector<NodeEvent> events_since(const std::string& session, int64_t revision, int limit = 500);
  int64_t revision(const std::string& session);  // the session's latest revision (0 when none)
  // Nodes whose job has not ended (queued or running), across all sessions.
  std::vector<SessionNode> unfinished_nodes(const std::string& session = "");

  // Writes the outcome fields given; returns the node after the change, nullopt when it does not exist.
  // A finished node never goes back to queued/running (a late "running" report cannot undo a result).
  std::optional<SessionNode> set_node_outcome(const std::string& node_id, const NodeOutcome& outcome);

  // Per-author heads. set_head(nullopt) clears it; the node must belong to the session (pictor::Error).
  std::map<std::string, std::string> heads(const std::string& session);
  std::optional<std::string> head(const std::string& session, const std::string& author);
  void set_head(const std::string& session, const std::string& author, const std::optional<std::string>& node);
  // Moves the author's head to its parent (null for a root) and returns the new head; nothing to undo
  // (no head) returns nullopt.
  std::optional<std::string> undo(const std::string& session, const std::string& author);

 private:
  std::optional<SessionNode> get_node_locked(const std::string& id);
  int64_t next_revision(const std::string& session);
  void touch_session(const std::string& session, double when);
  void record_event(const SessionNode& node);

  Database& db_;
};

// The node as the HTTP API shows it (contract: SESSIONS_AND_JOBS_API.md, "Node object").
nlohmann::json node_to_json(const SessionNode& node);
nlohmann::json session_summary_json(const Session& session);

}  // namespace pictor::storage
