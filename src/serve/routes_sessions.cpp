// /v1/sessions: refinement sessions, a history graph of images that one or several people grow together.
// Every node is one step (generate, prompt edit, img2img, inpaint, variation, describe) run as an ordinary
// job of the queue; the job's tags {"session","node"} lead its result back into the node. Nodes are
// append-only (storage/session_store.hpp); heads and undo are per author.
#include <httplib.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <memory>
#include <random>
#include <set>
#include <thread>

#include "formats/image.hpp"
#include "jobs/job_kinds.hpp"
#include "serve/base64.hpp"
#include "serve/http_util.hpp"
#include "serve/routes.hpp"
#include "serve/server_context.hpp"
#include "storage/ids.hpp"
#include "storage/session_store.hpp"

namespace pictor::serve {

namespace {

using nlohmann::json;
using storage::NodeOutcome;
using storage::SessionNode;

const std::set<std::string> kImageOperations = {"generate", "prompt_edit", "img2img", "inpaint", "variation"};
const std::set<std::string> kDescribeStyles = {"alt", "caption", "detailed", "product"};
constexpr size_t kMaxPromptBytes = 8192;           // keeps the word diff and the job params small
constexpr double kDefaultVariationStrength = 0.6;  // a variation keeps the composition, changes details
constexpr int kEventPollMs = 200;
constexpr int kEventKeepAliveMs = 10000;  // a write now and then notices clients that went away

struct SessionRoutes {
  ServerContext& ctx;
  storage::SessionStore store;
  explicit SessionRoutes(ServerContext& c) : ctx(c), store(c.db) {}
};

bool is_terminal(const std::string& state) {
  return state == "succeeded" || state == "failed" || state == "cancelled";
}

// ---- job result → node ---------------------------------------------------------------------------

json node_images(ServerContext& ctx, const json& result) {
  json out = json::array();
  if (!result.is_object() || !result.contains("images") || !result["images"].is_array()) return out;
  for (const auto& image : result["images"]) {
    std::string id = image.value("id", "");
    if (id.empty()) continue;
    std::string url;
    if (auto stored = ctx.images.get(id)) url = ServerContext::image_path(*stored);
    out.push_back({{"id", id}, {"url", url}});
  }
  return out;
}

// Copies what a job reached (state, images, text, error) into its node.
void apply_job(SessionRoutes& s, const storage::JobRecord& job) {
  if (!job.tags.is_object() || !job.tags.contains("node") || !job.tags["node"].is_string()) return;
  NodeOutcome outcome;
  outcome.state = job.state;
  outcome.job = job.id;
  if (job.state == "succeeded") {
    if (job.kind == "describe")
      outcome.text = job.result.value("text", "");
    else
      outcome.images = node_images(s.ctx, job.result);
  }
  if (!job.error.empty()) outcome.error = job.error;
  s.store.set_node_outcome(job.tags["node"].get<std::string>(), outcome);
}

// Brings unfinished nodes up to date with their jobs: "running" has no event of its own, and a job that
// ended before this process registered its listener (a restart) is caught here too.
void reconcile(SessionRoutes& s, const std::string& session) {
  for (const auto& node : s.store.unfinished_nodes(session)) {
    if (node.job.empty()) continue;
    auto status = s.ctx.queue.status(node.job);
    if (!status) {
      if (auto record = s.ctx.job_records.get(node.job)) apply_job(s, *record);
      continue;
    }
    if (is_terminal(status->record.state))
      apply_job(s, status->record);
    else if (status->record.state != node.state)
      s.store.set_node_outcome(node.id, {.state = status->record.state});
  }
}

// ---- request parsing -----------------------------------------------------------------------------

storage::Session require_session(SessionRoutes& s, const std::string& id) {
  if (!storage::is_valid_id(id, "ses")) throw not_found("no session " + id, "session");
  auto session = s.store.get_session(id);
  if (!session) throw not_found("no session " + id, "session");
  return *session;
}

SessionNode require_node(SessionRoutes& s, const std::string& session, const std::string& id,
                         const std::string& param) {
  if (!storage::is_valid_id(id, "node")) throw not_found("no node " + id + " in session " + session, param);
  auto node = s.store.get_node(id);
  if (!node || node->session != session) throw not_found("no node " + id + " in session " + session, param);
  return *node;
}

std::string string_field(const json& body, const std::string& key) {
  const auto& v = body[key];
  if (!v.is_string()) throw invalid_param(key, key + " must be a string");
  if (v.get_ref<const std::string&>().size() > kMaxPromptBytes)
    throw invalid_param(key, key + " is longer than " + std::to_string(kMaxPromptBytes) + " bytes");
  return v.get<std::string>();
}

int int_field(const json& body, const std::string& key, int lo, int hi) {
  const auto& v = body[key];
  if (!v.is_number_integer() || v.get<int64_t>() < lo || v.get<int64_t>() > hi)
    throw invalid_param(key, key + " must be an integer from " + std::to_string(lo) + " to " + std::to_string(hi));
  return v.get<int>();
}

double number_field(const json& body, const std::string& key, double lo, double hi) {
  const auto& v = body[key];
  if (!v.is_number() || v.get<double>() < lo || v.get<double>() > hi)
    throw invalid_param(key, key + " must be a number from " + std::to_string(lo) + " to " + std::to_string(hi));
  return v.get<double>();
}

uint64_t random_seed() {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  return rng() & 0xffffffffull;  // 32 bits, like AUTOMATIC1111 seeds: easy to read and type
}

std::pair<int, int> parse_size(const std::string& size, int max_side) {
  int w = 0, h = 0;
  char x = 0, extra = 0;
  if (std::sscanf(size.c_str(), "%d%c%d%c", &w, &x, &h, &extra) != 3 || x != 'x' || w < 8 || h < 8 || w > max_side ||
      h > max_side || w % 8 || h % 8)
    throw invalid_param("size", "size must be WIDTHxHEIGHT with multiples of 8 up to " + std::to_string(max_side) +
                                    ", got \"" + size + "\"");
  return {w, h};
}

// Stores a mask given as a data: URI (or bare base64) and returns its image record.
storage::StoredImage store_mask(SessionRoutes& s, const std::string& uri) {
  std::string payload = uri;
  if (auto d = parse_data_uri(uri)) {
    payload = d->payload;
  } else if (uri.rfind("data:", 0) == 0) {
    throw invalid_param("mask", "mask must be a base64 data: URI (data:image/png;base64,...)");
  }
  if (payload.size() / 4 * 3 > s.ctx.options.max_image_bytes)
    throw invalid_param("mask", "mask is larger than " + std::to_string(s.ctx.options.max_image_bytes) + " bytes");
  auto decoded = base64_decode(payload, s.ctx.options.max_image_bytes);
  if (!decoded) throw invalid_param("mask", "mask is not valid base64");
  const std::vector<uint8_t>& bytes = *decoded;
  ImageHeader header;
  try {
    header = probe_image(bytes.data(), bytes.size(), "mask");
  } catch (const Error& e) {
    throw invalid_param("mask", std::string("mask is not a readable image: ") + e.what());
  }
  if (uint64_t(header.width) * uint64_t(header.height) > s.ctx.options.max_image_pixels)
    throw invalid_param("mask", "mask has more than " + std::to_string(s.ctx.options.max_image_pixels) + " pixels");
  return s.ctx.images.put(bytes, header.width, header.height, json{{"role", "mask"}});
}

storage::StoredImage require_image(SessionRoutes& s, const std::string& id, const std::string& param) {
  if (!storage::is_valid_id(id, "img")) throw not_found("no image " + id, param);
  auto image = s.ctx.images.get(id);
  if (!image) throw not_found("no image " + id, param);
  return *image;
}

// The image a node starts from: the request's "image", else the parent's first image.
storage::StoredImage start_image(SessionRoutes& s, const json& body, const std::optional<SessionNode>& parent,
                                 const std::string& operation) {
  if (body.contains("image") && !body["image"].is_null()) {
    if (!body["image"].is_string()) throw invalid_param("image", "image must be a stored image id (img_...)");
    return require_image(s, body["image"].get<std::string>(), "image");
  }
  if (!parent)
    throw invalid_param("image", operation + " needs an image: give \"image\" or a parent node that has one",
                        "missing_image");
  if (parent->images.empty()) {
    if (!parent->finished())
      throw ApiError(409, "invalid_request_error",
                     "parent node " + parent->id + " is still " + parent->state + "; wait until it has an image",
                     "parent", "parent_not_ready");
    throw invalid_param("parent", "parent node " + parent->id + " has no image to start from", "missing_image");
  }
  return require_image(s, parent->images[0]["id"].get<std::string>(), "image");
}

// The new node from a request: the operation's own fields, everything left out inherited from the parent
// (contract: "prompt_edit = parent's seed and parameters with a new prompt").
SessionNode build_node(SessionRoutes& s, const storage::Session& session, const json& body, const std::string& author) {
  SessionNode node;
  node.session = session.id;
  node.author = author;
  if (!body.contains("operation") || !body["operation"].is_string())
    throw invalid_param("operation",
                        "operation is required: generate, prompt_edit, img2img, inpaint, variation or "
                        "describe");
  node.operation = body["operation"].get<std::string>();
  bool describe = node.operation == "describe";
  if (!describe && !kImageOperations.count(node.operation))
    throw invalid_param("operation", "unknown operation \"" + node.operation +
                                         "\" (generate, prompt_edit, img2img, inpaint, variation, describe)");

  std::optional<SessionNode> parent;
  if (body.contains("parent") && !body["parent"].is_null()) {
    if (!body["parent"].is_string()) throw invalid_param("parent", "parent must be a node id or null");
    parent = require_node(s, session.id, body["parent"].get<std::string>(), "parent");
    node.parent = parent->id;
  }
  if (node.operation == "prompt_edit" && !parent)
    throw invalid_param("parent", "prompt_edit needs a parent node to take the seed and parameters from",
                        "missing_parent");

  // Only a parent of the same family (image ↔ image, describe ↔ describe) passes on model and parameters.
  bool same_family = parent && ((parent->operation == "describe") == describe);
  if (same_family) {
    node.model = parent->model;
    node.params = parent->params;
  }
  if (body.contains("model") && !body["model"].is_null()) node.model = string_field(body, "model");
  node.model = s.ctx.pick_model(node.model, describe ? jobs::ModelKind::ImageToText : jobs::ModelKind::TextToImage).id;

  if (parent) {
    // A describe parent's answer is a good prompt for an image made from it.
    bool from_description = parent->operation == "describe" && !describe && parent->text;
    node.prompt = from_description ? *parent->text : same_family ? parent->prompt : "";
    node.negative_prompt = same_family ? parent->negative_prompt : "";
  }
  if (body.contains("prompt") && !body["prompt"].is_null()) node.prompt = string_field(body, "prompt");
  if (body.contains("negative_prompt") && !body["negative_prompt"].is_null())
    node.negative_prompt = string_field(body, "negative_prompt");

  // Seed: given, else the parent's (same seed = the same picture with the change applied), except for a
  // fresh generate or a variation, whose point is a new random one.
  if (body.contains("seed") && !body["seed"].is_null()) {
    if (!body["seed"].is_number_unsigned() && !(body["seed"].is_number_integer() && body["seed"].get<int64_t>() >= 0))
      throw invalid_param("seed", "seed must be a non-negative integer");
    node.seed = body["seed"].get<uint64_t>();
  } else if (same_family && parent->seed && node.operation != "generate" && node.operation != "variation") {
    node.seed = parent->seed;
  } else {
    node.seed = random_seed();
  }

  json& p = node.params;
  if (describe) {
    if (body.contains("style") && !body["style"].is_null()) p["style"] = string_field(body, "style");
    if (!p.contains("style")) p["style"] = "caption";
    if (!kDescribeStyles.count(p["style"].get<std::string>()))
      throw invalid_param("style", "style must be alt, caption, detailed or product");
    if (body.contains("max_tokens") && !body["max_tokens"].is_null())
      p["max_tokens"] = int_field(body, "max_tokens", 1, 4096);
    p["image"] = start_image(s, body, parent, node.operation).id;
    return node;
  }

  if (body.contains("size") && !body["size"].is_null()) {
    auto [w, h] = parse_size(string_field(body, "size"), s.ctx.options.max_output_side);
    p["width"] = w;
    p["height"] = h;
  }
  if (body.contains("steps") && !body["steps"].is_null()) p["steps"] = int_field(body, "steps", 1, 500);
  if (body.contains("guidance_scale") && !body["guidance_scale"].is_null())
    p["guidance_scale"] = number_field(body, "guidance_scale", 0, 100);
  if (body.contains("sampler") && !body["sampler"].is_null()) p["sampler"] = string_field(body, "sampler");
  if (body.contains("strength") && !body["strength"].is_null()) p["strength"] = number_field(body, "strength", 0, 1);

  if (node.operation == "generate") {
    // Text to image: whatever image the parent started from does not apply.
    p.erase("image");
    p.erase("mask");
    p.erase("strength");
  } else if (node.operation == "prompt_edit") {
    // Keeps the parent's image, mask and strength: the same step again with another prompt.
  } else {
    auto image = start_image(s, body, parent, node.operation);
    p["image"] = image.id;
    if (!p.contains("width") || !p.contains("height")) {
      p["width"] = image.width;
      p["height"] = image.height;
    }
    if (!p.contains("strength") || (node.operation == "variation" && !body.contains("strength")))
      p["strength"] = node.operation == "variation" ? kDefaultVariationStrength : 0.75;
    if (node.operation == "inpaint") {
      if (body.contains("mask") && !body["mask"].is_null()) {
        if (!body["mask"].is_string()) throw invalid_param("mask", "mask must be a data: URI of a PNG");
        auto mask = store_mask(s, body["mask"].get<std::string>());
        if (mask.width != image.width || mask.height != image.height)
          throw invalid_param("mask", "mask is " + std::to_string(mask.width) + "x" + std::to_string(mask.height) +
                                          " but the image is " + std::to_string(image.width) + "x" +
                                          std::to_string(image.height));
        p["mask"] = mask.id;
      }
      if (!p.contains("mask"))
        throw invalid_param("mask", "inpaint needs a mask (data: URI PNG, transparent pixels are repainted)",
                            "missing_mask");
    } else {
      p.erase("mask");
    }
  }
  return node;
}

// The job that runs a node (jobs/job_kinds.hpp documents the params).
jobs::JobSpec job_for(const SessionNode& node) {
  jobs::JobSpec spec;
  spec.model = node.model;
  spec.owner = node.author;
  spec.tags = {{"session", node.session}, {"node", node.id}};
  const json& p = node.params;
  if (node.operation == "describe") {
    spec.kind = "describe";
    json content = json::array({{{"type", "image"}, {"image_id", p["image"]}}});
    if (!node.prompt.empty()) content.push_back({{"type", "text"}, {"text", node.prompt}});
    spec.params = {{"messages", json::array({{{"role", "user"}, {"content", content}}})},
                   {"style", p.value("style", "caption")}};
    if (p.contains("max_tokens")) spec.params["max_tokens"] = p["max_tokens"];
    if (node.seed) spec.params["seed"] = *node.seed;
    return spec;
  }
  spec.kind = "generate";
  spec.params = {{"prompt", node.prompt},
                 {"negative_prompt", node.negative_prompt},
                 {"width", p.value("width", 0)},
                 {"height", p.value("height", 0)},
                 {"steps", p.value("steps", 0)},
                 {"guidance", p.value("guidance_scale", -1.0)},
                 {"sampler", p.value("sampler", "")},
                 {"count", 1},
                 {"output_format", "png"},
                 {"previews", true}};  // TAESD previews when the server has --taesd
  if (node.seed) spec.params["seed"] = *node.seed;
  if (p.contains("image")) {
    spec.params["init_image"] = p["image"];
    spec.params["strength"] = p.value("strength", 0.75);
  }
  if (p.contains("mask")) {
    spec.params["mask"] = p["mask"];
    spec.params["mask_convention"] = "transparent";
  }
  return spec;
}

// Appends the node, then queues its job. The node is written first so the job's result always finds it;
// a job refused by the queue leaves the node failed (history is never removed) and the error goes back.
SessionNode create_and_submit(SessionRoutes& s, SessionNode node) {
  node = s.store.append_node(std::move(node));
  std::string job_id;
  try {
    job_id = s.ctx.submit(job_for(node));
  } catch (const std::exception& e) {
    s.store.set_node_outcome(node.id, {.state = "failed", .error = std::string(e.what())});
    throw;
  }
  if (auto updated = s.store.set_node_outcome(node.id, {.job = job_id})) return *updated;
  return node;
}

json session_json(SessionRoutes& s, const storage::Session& session) {
  reconcile(s, session.id);
  json out = storage::session_summary_json(session);
  // Read before the nodes: a client that streams events ?since=this revision may see a change twice, never
  // miss one.
  out["revision"] = s.store.revision(session.id);
  json nodes = json::array();
  for (const auto& n : s.store.nodes(session.id)) nodes.push_back(storage::node_to_json(n));
  out["nodes"] = std::move(nodes);
  out["node_count"] = out["nodes"].size();
  out["heads"] = s.store.heads(session.id);
  return out;
}

json head_json(const std::optional<std::string>& head) {
  return {{"head", head ? json(*head) : json(nullptr)}};
}

}  // namespace

void add_session_routes(httplib::Server& http, ServerContext& ctx) {
  auto s = std::make_shared<SessionRoutes>(ctx);

  ctx.queue.on_finished([s](const storage::JobRecord& job) {
    try {
      apply_job(*s, job);
    } catch (const std::exception&) {
      // A listener must not take the worker down; GET/events reconcile the node from the job later.
    }
  });
  try {
    reconcile(*s, "");  // jobs that ended while no listener was registered (before a restart)
  } catch (const std::exception&) {
  }

  http.Post("/v1/sessions", [s](const httplib::Request& req, httplib::Response& res) {
    json body = req.body.empty() ? json::object() : parse_json_body(req);
    std::string title = body.contains("title") && !body["title"].is_null() ? string_field(body, "title") : "";
    if (title.empty()) title = "Untitled session";
    auto session = s->store.create_session(title, caller_of(s->ctx, req));
    send_json(res, session_json(*s, session), 201);
  });

  http.Get("/v1/sessions", [s](const httplib::Request&, httplib::Response& res) {
    json data = json::array();
    for (const auto& session : s->store.list_sessions()) data.push_back(storage::session_summary_json(session));
    send_json(res, {{"object", "list"}, {"data", data}});
  });

  http.Get(R"(/v1/sessions/([^/]+))", [s](const httplib::Request& req, httplib::Response& res) {
    send_json(res, session_json(*s, require_session(*s, req.matches[1])));
  });

  http.Post(R"(/v1/sessions/([^/]+)/nodes)", [s](const httplib::Request& req, httplib::Response& res) {
    auto session = require_session(*s, req.matches[1]);
    json body = parse_json_body(req);
    auto node = build_node(*s, session, body, caller_of(s->ctx, req));
    send_json(res, storage::node_to_json(create_and_submit(*s, std::move(node))), 202);
  });

  http.Get(R"(/v1/sessions/([^/]+)/nodes/([^/]+))", [s](const httplib::Request& req, httplib::Response& res) {
    auto session = require_session(*s, req.matches[1]);
    reconcile(*s, session.id);
    send_json(res, storage::node_to_json(require_node(*s, session.id, req.matches[2], "node")));
  });

  http.Post(R"(/v1/sessions/([^/]+)/nodes/([^/]+)/replay)", [s](const httplib::Request& req, httplib::Response& res) {
    auto session = require_session(*s, req.matches[1]);
    auto original = require_node(*s, session.id, req.matches[2], "node");
    SessionNode node;
    node.session = session.id;
    node.parent = original.parent;
    node.operation = original.operation;
    node.author = caller_of(s->ctx, req);
    node.model = original.model;
    node.prompt = original.prompt;
    node.negative_prompt = original.negative_prompt;
    node.seed = original.seed;
    node.params = original.params;
    node.replay_of = original.id;
    send_json(res, storage::node_to_json(create_and_submit(*s, std::move(node))), 202);
  });

  http.Post(R"(/v1/sessions/([^/]+)/head)", [s](const httplib::Request& req, httplib::Response& res) {
    auto session = require_session(*s, req.matches[1]);
    json body = parse_json_body(req);
    if (!body.contains("node")) throw invalid_param("node", "node is required (a node id, or null for none)");
    std::optional<std::string> head;
    if (!body["node"].is_null()) {
      if (!body["node"].is_string()) throw invalid_param("node", "node must be a node id or null");
      head = require_node(*s, session.id, body["node"].get<std::string>(), "node").id;
    }
    s->store.set_head(session.id, caller_of(s->ctx, req), head);
    send_json(res, head_json(head));
  });

  http.Post(R"(/v1/sessions/([^/]+)/undo)", [s](const httplib::Request& req, httplib::Response& res) {
    auto session = require_session(*s, req.matches[1]);
    send_json(res, head_json(s->store.undo(session.id, caller_of(s->ctx, req))));
  });

  http.Get(R"(/v1/sessions/([^/]+)/events)", [s](const httplib::Request& req, httplib::Response& res) {
    auto session = require_session(*s, req.matches[1]);
    // Changes after the session's current state by default; ?since=REVISION replays from a revision a
    // client already saw (node objects and the session object carry "revision").
    int64_t since = -1;
    if (req.has_param("since")) {
      try {
        since = std::stoll(req.get_param_value("since"));
      } catch (const std::exception&) {
        throw invalid_param("since", "since must be an integer revision");
      }
    }
    if (since < 0) since = s->store.revision(session.id);
    std::string id = session.id;
    send_event_stream(res, [s, id, since](const SseWriter& write) mutable {
      auto last_write = std::chrono::steady_clock::now();
      while (!s->ctx.stopping) {
        try {
          reconcile(*s, id);
          for (const auto& event : s->store.events_since(id, since)) {
            since = event.revision;
            if (!write("node", event.node.dump())) return;
            last_write = std::chrono::steady_clock::now();
          }
        } catch (const std::exception& e) {
          write("error", json{{"message", e.what()}}.dump());
          return;
        }
        if (std::chrono::steady_clock::now() - last_write > std::chrono::milliseconds(kEventKeepAliveMs)) {
          if (!write("", ": keep-alive")) return;
          last_write = std::chrono::steady_clock::now();
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(kEventPollMs));
      }
    });
  });
}

}  // namespace pictor::serve
