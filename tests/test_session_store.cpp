// Refinement sessions at the storage level: the history graph, per-author heads and undo, the prompt
// diff, concurrent appends and durability across a reopen of the database file.
#include <gtest/gtest.h>

#include <atomic>
#include <set>
#include <thread>

#include "core/error.hpp"
#include "storage/database.hpp"
#include "storage/ids.hpp"
#include "storage/prompt_diff.hpp"
#include "storage/session_store.hpp"
#include "support.hpp"

using namespace pictor;
using namespace pictor::storage;

namespace {

SessionNode make_node(const std::string& session, std::optional<std::string> parent, const std::string& op,
                      const std::string& author, const std::string& prompt, uint64_t seed = 7) {
  SessionNode n;
  n.session = session;
  n.parent = std::move(parent);
  n.operation = op;
  n.author = author;
  n.model = "tiny";
  n.prompt = prompt;
  n.seed = seed;
  n.params = {{"width", 64}, {"height", 64}, {"steps", 2}};
  return n;
}

std::string diff_string(const std::vector<DiffSegment>& diff) {
  std::string out;
  for (const auto& s : diff) {
    out += s.op == DiffSegment::Op::Keep ? "=" : s.op == DiffSegment::Op::Add ? "+" : "-";
    out += "[" + s.text + "]";
  }
  return out;
}

}  // namespace

TEST(PromptDiff, ReplacedWordIsRemovedThenAdded) {
  EXPECT_EQ(diff_string(prompt_diff("a red car", "a blue car")), "=[a]-[red]+[blue]=[car]");
}

TEST(PromptDiff, MergesRunsAndIgnoresWhitespaceAmount) {
  EXPECT_EQ(diff_string(prompt_diff("a photo of  a cat", "a photo of a cat, oil painting, trending")),
            "=[a photo of a]-[cat]+[cat, oil painting, trending]");
  EXPECT_EQ(diff_string(prompt_diff("  same words here ", "same\twords\nhere")), "=[same words here]");
}

TEST(PromptDiff, EmptySides) {
  EXPECT_EQ(diff_string(prompt_diff("", "new prompt")), "+[new prompt]");
  EXPECT_EQ(diff_string(prompt_diff("old prompt", "")), "-[old prompt]");
  EXPECT_TRUE(prompt_diff("", "").empty());
}

TEST(PromptDiff, KeepsTheLongestCommonSubsequence) {
  // "castle" and "at night" are kept although words move around them.
  EXPECT_EQ(diff_string(prompt_diff("castle on a hill at night", "ruined castle by the sea at night")),
            "+[ruined]=[castle]-[on a hill]+[by the sea]=[at night]");
  auto json = prompt_diff_json(prompt_diff("a b", "a c"));
  ASSERT_EQ(json.size(), 3u);
  EXPECT_EQ(json[0]["op"], "keep");
  EXPECT_EQ(json[1]["op"], "remove");
  EXPECT_EQ(json[2]["op"], "add");
  EXPECT_EQ(json[2]["text"], "c");
}

TEST(SessionStore, GraphBranchesAndDiffs) {
  Database db(":memory:");
  SessionStore store(db);
  auto s = store.create_session("castles", "alice");
  EXPECT_TRUE(is_valid_id(s.id, "ses"));

  auto root = store.append_node(make_node(s.id, std::nullopt, "generate", "alice", "a castle on a hill", 42));
  EXPECT_TRUE(is_valid_id(root.id, "node"));
  EXPECT_TRUE(root.prompt_diff.empty());
  auto edit = store.append_node(make_node(s.id, root.id, "prompt_edit", "alice", "a castle on a hill at night", 42));
  ASSERT_EQ(edit.prompt_diff.size(), 2u);
  EXPECT_EQ(edit.prompt_diff[1]["op"], "add");
  EXPECT_EQ(edit.prompt_diff[1]["text"], "at night");
  // A second branch from the root.
  auto branch = store.append_node(make_node(s.id, root.id, "img2img", "alice", "a castle on a hill"));

  auto nodes = store.nodes(s.id);
  ASSERT_EQ(nodes.size(), 3u);
  EXPECT_EQ(nodes[0].id, root.id);
  EXPECT_EQ(nodes[1].id, edit.id);
  EXPECT_EQ(nodes[2].id, branch.id);
  EXPECT_EQ(nodes[1].parent, root.id);
  EXPECT_EQ(nodes[2].parent, root.id);
  EXPECT_EQ(nodes[1].seed, 42u);
  EXPECT_EQ(nodes[1].params["steps"], 2);
  EXPECT_EQ(store.get_session(s.id)->node_count, 3);

  // Parent from another session, unknown parent and unknown session are refused.
  auto other = store.create_session("other", "bob");
  EXPECT_THROW(store.append_node(make_node(other.id, root.id, "img2img", "bob", "x")), Error);
  EXPECT_THROW(store.append_node(make_node(s.id, "node_000000000000000000000000", "img2img", "bob", "x")), Error);
  EXPECT_THROW(store.append_node(make_node("ses_000000000000000000000000", std::nullopt, "generate", "bob", "x")),
               Error);
  EXPECT_EQ(store.nodes(s.id).size(), 3u);
  EXPECT_FALSE(store.get_session("ses_000000000000000000000000"));

  auto list = store.list_sessions();
  ASSERT_EQ(list.size(), 2u);
}

TEST(SessionStore, FullSeedRangeRoundTrips) {
  Database db(":memory:");
  SessionStore store(db);
  auto s = store.create_session("t", "a");
  auto n = store.append_node(make_node(s.id, std::nullopt, "generate", "a", "p", 18446744073709551615ull));
  EXPECT_EQ(store.get_node(n.id)->seed, 18446744073709551615ull);
  auto d = make_node(s.id, n.id, "describe", "a", "");
  d.seed.reset();
  d = store.append_node(d);
  EXPECT_FALSE(store.get_node(d.id)->seed);
}

TEST(SessionStore, HeadsFollowAuthorsAndUndoWalksToParents) {
  Database db(":memory:");
  SessionStore store(db);
  auto s = store.create_session("t", "alice");
  auto a1 = store.append_node(make_node(s.id, std::nullopt, "generate", "alice", "one"));
  auto a2 = store.append_node(make_node(s.id, a1.id, "prompt_edit", "alice", "one two"));
  auto b1 = store.append_node(make_node(s.id, a1.id, "variation", "bob", "one"));

  auto heads = store.heads(s.id);
  EXPECT_EQ(heads.size(), 2u);
  EXPECT_EQ(heads["alice"], a2.id);
  EXPECT_EQ(heads["bob"], b1.id);

  EXPECT_EQ(store.undo(s.id, "alice"), a1.id);
  EXPECT_EQ(store.head(s.id, "alice"), a1.id);
  EXPECT_EQ(store.head(s.id, "bob"), b1.id);           // undo is per author
  EXPECT_EQ(store.undo(s.id, "alice"), std::nullopt);  // past the root: no head
  EXPECT_EQ(store.undo(s.id, "alice"), std::nullopt);
  EXPECT_EQ(store.heads(s.id).count("alice"), 0u);

  // Branch: alice jumps to bob's node; undo from there goes to its parent.
  store.set_head(s.id, "alice", b1.id);
  EXPECT_EQ(store.head(s.id, "alice"), b1.id);
  EXPECT_EQ(store.undo(s.id, "alice"), a1.id);
  store.set_head(s.id, "carol", std::nullopt);
  EXPECT_EQ(store.head(s.id, "carol"), std::nullopt);
  EXPECT_THROW(store.set_head(s.id, "carol", "node_000000000000000000000000"), Error);
  auto other = store.create_session("o", "x");
  EXPECT_THROW(store.set_head(other.id, "carol", a1.id), Error);
  // Nothing was removed by any of this.
  EXPECT_EQ(store.nodes(s.id).size(), 3u);
}

TEST(SessionStore, OutcomeUpdatesBumpRevisionsAndNeverRewindAResult) {
  Database db(":memory:");
  SessionStore store(db);
  auto s = store.create_session("t", "a");
  auto n = store.append_node(make_node(s.id, std::nullopt, "generate", "a", "p"));
  int64_t r0 = n.revision;
  EXPECT_TRUE(store.changed_since(s.id, r0).empty());

  auto after = store.set_node_outcome(n.id, {.state = "running", .job = "job_1"});
  ASSERT_TRUE(after);
  EXPECT_GT(after->revision, r0);
  auto changed = store.changed_since(s.id, r0);
  ASSERT_EQ(changed.size(), 1u);
  EXPECT_EQ(changed[0].state, "running");

  // Same state again: no new revision (live views are not woken for nothing).
  EXPECT_EQ(store.set_node_outcome(n.id, {.state = "running"})->revision, after->revision);

  nlohmann::json images = nlohmann::json::array({{{"id", "img_1"}, {"url", "/v1/files/images/img_1.png"}}});
  auto done = store.set_node_outcome(n.id, {.state = "succeeded", .images = images});
  EXPECT_EQ(done->state, "succeeded");
  // A late "running" report cannot undo the result.
  EXPECT_EQ(store.set_node_outcome(n.id, {.state = "running"})->state, "succeeded");
  auto stored = store.get_node(n.id);
  EXPECT_EQ(stored->images, images);
  EXPECT_EQ(stored->job, "job_1");
  EXPECT_EQ(stored->prompt, "p");  // history fields untouched
  EXPECT_TRUE(store.unfinished_nodes().empty());
  // The event log keeps every state the node went through, in order, even though the node row only holds
  // the last one.
  auto events = store.events_since(s.id, 0);
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[0].node["state"], "queued");
  EXPECT_EQ(events[1].node["state"], "running");
  EXPECT_EQ(events[2].node["state"], "succeeded");
  EXPECT_EQ(events[2].node["images"], images);
  EXPECT_EQ(events[2].revision, store.revision(s.id));
  EXPECT_EQ(store.events_since(s.id, events[1].revision).size(), 1u);
  EXPECT_FALSE(store.set_node_outcome("node_000000000000000000000000", {.state = "failed"}));
}

TEST(SessionStore, ConcurrentAppendsAllLand) {
  auto dir = test::temp_dir("session_concurrent");
  Database db(dir / "pictor.db");
  SessionStore store(db);
  auto s = store.create_session("busy", "alice");
  auto root = store.append_node(make_node(s.id, std::nullopt, "generate", "alice", "root"));

  constexpr int kThreads = 8, kPerThread = 20;
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::string author = "user" + std::to_string(t);
      std::string parent = root.id;
      for (int i = 0; i < kPerThread; ++i) {
        try {
          // Each user chains its own branch, so parents written by this thread must be visible at once.
          parent = store.append_node(make_node(s.id, parent, "prompt_edit", author, "root " + std::to_string(i))).id;
          if (i % 5 == 0) store.set_node_outcome(parent, {.state = "succeeded"});
        } catch (const std::exception&) {
          ++failures;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);

  auto nodes = store.nodes(s.id);
  ASSERT_EQ(nodes.size(), size_t(1 + kThreads * kPerThread));
  std::set<std::string> ids;
  std::set<int64_t> revisions;
  std::map<std::string, int> per_author;
  for (const auto& n : nodes) {
    ids.insert(n.id);
    revisions.insert(n.revision);
    ++per_author[n.author];
  }
  EXPECT_EQ(ids.size(), nodes.size());
  EXPECT_EQ(revisions.size(), nodes.size());  // every change got its own revision number
  for (int t = 0; t < kThreads; ++t) EXPECT_EQ(per_author["user" + std::to_string(t)], kPerThread);
  EXPECT_EQ(store.heads(s.id).size(), size_t(kThreads + 1));
}

TEST(SessionStore, ConcurrentAppendsThroughTwoConnections) {
  // Two connections to one file stand for two processes: BEGIN IMMEDIATE + the busy timeout serialise them.
  auto dir = test::temp_dir("session_two_connections");
  Database db1(dir / "pictor.db");
  Database db2(dir / "pictor.db");
  SessionStore store1(db1), store2(db2);
  auto s = store1.create_session("shared", "alice");
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      SessionStore& store = t % 2 ? store2 : store1;
      for (int i = 0; i < 15; ++i)
        store.append_node(make_node(s.id, std::nullopt, "generate", "u" + std::to_string(t), "p"));
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(store1.nodes(s.id).size(), 60u);
  EXPECT_EQ(store2.get_session(s.id)->node_count, 60);
}

TEST(SessionStore, EverythingSurvivesAReopen) {
  auto dir = test::temp_dir("session_reopen");
  std::string session_id, root_id, child_id;
  {
    Database db(dir / "pictor.db");
    SessionStore store(db);
    auto s = store.create_session("durable", "alice");
    session_id = s.id;
    root_id = store.append_node(make_node(s.id, std::nullopt, "generate", "alice", "a tree", 99)).id;
    child_id = store.append_node(make_node(s.id, root_id, "prompt_edit", "bob", "a tall tree", 99)).id;
    store.set_node_outcome(
        root_id, {.state = "succeeded", .job = "job_x", .images = nlohmann::json::array({{{"id", "img_a"}}})});
    store.undo(session_id, "bob");
  }
  Database db(dir / "pictor.db");
  SessionStore store(db);  // CREATE TABLE IF NOT EXISTS leaves the data alone
  auto s = store.get_session(session_id);
  ASSERT_TRUE(s);
  EXPECT_EQ(s->title, "durable");
  EXPECT_EQ(s->node_count, 2);
  auto nodes = store.nodes(session_id);
  ASSERT_EQ(nodes.size(), 2u);
  EXPECT_EQ(nodes[0].state, "succeeded");
  EXPECT_EQ(nodes[0].job, "job_x");
  EXPECT_EQ(nodes[0].images[0]["id"], "img_a");
  EXPECT_EQ(nodes[1].seed, 99u);
  EXPECT_EQ(nodes[1].prompt_diff[1]["text"], "tall");
  EXPECT_EQ(store.head(session_id, "alice"), root_id);
  EXPECT_EQ(store.head(session_id, "bob"), root_id);         // after bob's undo
  EXPECT_EQ(store.unfinished_nodes(session_id).size(), 1u);  // the child never ran
}

TEST(SessionStore, NodeJsonHasTheContractFields) {
  Database db(":memory:");
  SessionStore store(db);
  auto s = store.create_session("t", "a");
  auto n = store.append_node(make_node(s.id, std::nullopt, "generate", "a", "p", 5));
  auto j = node_to_json(n);
  for (const char* key :
       {"id", "session", "parent", "operation", "author", "created", "model", "prompt", "negative_prompt",
        "prompt_diff", "seed", "params", "replay_of", "state", "job", "images", "text", "error"})
    EXPECT_TRUE(j.contains(key)) << key;
  EXPECT_TRUE(j["parent"].is_null());
  EXPECT_TRUE(j["text"].is_null());
  EXPECT_EQ(j["seed"], 5);
  EXPECT_EQ(j["state"], "queued");
  auto sj = session_summary_json(*store.get_session(s.id));
  EXPECT_EQ(sj["node_count"], 1);
  EXPECT_EQ(sj["created_by"], "a");
}
