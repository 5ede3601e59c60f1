#include "serve/server.hpp"

#include <httplib.h>

#include <cstdio>

#include "jobs/job_queue.hpp"
#include "jobs/model_catalog.hpp"
#include "serve/auth.hpp"
#include "serve/http_util.hpp"
#include "serve/metrics.hpp"
#include "serve/routes.hpp"
#include "serve/server_context.hpp"
#include "storage/database.hpp"
#include "storage/image_store.hpp"
#include "storage/job_store.hpp"

namespace pictor::serve {

namespace {

ServerOptions checked(ServerOptions o) {
  if (!is_loopback_host(o.host) && o.api_keys.empty())
    throw Error("--api-key is required when serving on " + o.host +
                " (a non-loopback address); give one or more keys, or bind to 127.0.0.1");
  if (o.port < 0 || o.port > 65535) throw Error("--port must be between 0 and 65535");
  if (o.workers < 1) throw Error("--workers must be at least 1");
  return o;
}

// Paths that need a key when keys are configured. The page and its assets, /health and capability URLs
// (stored images, job previews: 96-bit random ids) are open so browsers can load them.
bool needs_key(const std::string& path) {
  if (path.rfind("/v1/files/images/", 0) == 0) return false;
  if (path.rfind("/v1/jobs/", 0) == 0 && path.size() > 8 && path.find("/preview") != std::string::npos) return false;
  return path.rfind("/v1/", 0) == 0 || path.rfind("/sdapi/", 0) == 0 || path == "/metrics";
}

jobs::CatalogOptions catalog_options(const ServerOptions& o) {
  jobs::CatalogOptions c;
  c.models_dir = o.models_dir;
  c.memory_budget = o.memory_budget;
  c.load.taesd_dir = o.taesd_dir;
  c.load.threads = o.threads;
  c.load.int8_decoder = o.int8_decoder;
  return c;
}

}  // namespace

struct Server::Impl {
  explicit Impl(ServerOptions o)
      : options(checked(std::move(o))),
        db(options.data_dir / "pictor.db"),
        images(db, options.data_dir / "images"),
        job_records(db),
        catalog(catalog_options(options)),
        queue(job_records, images, catalog, jobs::QueueOptions{options.workers, options.max_queued, 2}),
        auth(options),
        ctx{options, db, images, job_records, catalog, queue, metrics, auth, stopping} {}

  ServerOptions options;
  storage::Database db;
  storage::ImageStore images;
  storage::JobStore job_records;
  jobs::ModelCatalog catalog;
  jobs::JobQueue queue;
  Metrics metrics;
  Auth auth;
  std::atomic<bool> stopping{false};
  ServerContext ctx;
  httplib::Server http;
  int port = 0;

  void install();
};

void Server::Impl::install() {
  // Many connections wait (synchronous generations, event streams) while few compute: a pool much larger
  // than the core count keeps new requests from queuing behind them.
  http.new_task_queue = [] { return new httplib::ThreadPool(64); };
  http.set_payload_max_length(options.max_body_bytes);
  http.set_read_timeout(30, 0);
  http.set_write_timeout(30, 0);

  http.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    if (!options.cors_origin.empty()) {
      res.set_header("Access-Control-Allow-Origin", options.cors_origin);
      res.set_header("Vary", "Origin");
      if (req.method == "OPTIONS") {
        res.set_header("Access-Control-Allow-Methods", "GET, POST, DELETE, OPTIONS");
        res.set_header("Access-Control-Allow-Headers", "Authorization, Content-Type, X-Api-Key, X-Pictor-User");
        res.set_header("Access-Control-Max-Age", "600");
        res.status = 204;
        return httplib::Server::HandlerResponse::Handled;
      }
    }
    if (!needs_key(req.path)) return httplib::Server::HandlerResponse::Unhandled;
    try {
      std::string caller = auth.authenticate(req);
      auth.check_rate(auth.keys_required() ? caller : req.remote_addr);
    } catch (const ApiError& e) {
      send_api_error(res, e);
      return httplib::Server::HandlerResponse::Handled;
    }
    return httplib::Server::HandlerResponse::Unhandled;
  });

  http.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
    try {
      std::rethrow_exception(ep);
    } catch (const ApiError& e) {
      send_api_error(res, e);
    } catch (const Error& e) {  // the engine refused the input (bad image, unsupported option ...)
      send_api_error(res, ApiError(400, "invalid_request_error", e.what()));
    } catch (const std::exception& e) {
      std::fprintf(stderr, "pictor serve: internal error: %s\n", e.what());
      send_api_error(res, ApiError(500, "server_error", std::string("internal error: ") + e.what()));
    } catch (...) {
      send_api_error(res, ApiError(500, "server_error", "internal error"));
    }
  });

  // Errors httplib produces itself (no route, body over the limit, bad framing) get the same JSON shape.
  http.set_error_handler([](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return;
    if (res.status == 404)
      send_api_error(res, not_found("no route for " + req.method + " " + req.path));
    else if (res.status == 413)
      send_api_error(res, ApiError(413, "invalid_request_error", "request body too large", "", "body_too_large"));
    else if (res.status == 405)
      send_api_error(res, ApiError(405, "invalid_request_error", "method not allowed", "", "method_not_allowed"));
    else
      send_api_error(res, ApiError(res.status, res.status >= 500 ? "server_error" : "invalid_request_error",
                                   "request failed with HTTP status " + std::to_string(res.status)));
  });

  http.set_logger([this](const httplib::Request& req, const httplib::Response& res) {
    metrics.count_request(req.path, res.status);
  });

  add_system_routes(http, ctx);
  add_job_routes(http, ctx);
  add_file_routes(http, ctx);
  add_image_routes(http, ctx);
  add_a1111_routes(http, ctx);
  add_chat_routes(http, ctx);
  add_session_routes(http, ctx);
  add_web_routes(http, ctx);
}

Server::Server(ServerOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {
  impl_->install();
}

Server::~Server() {
  stop();
}

int Server::bind() {
  auto& i = *impl_;
  if (i.options.port == 0) {
    i.port = i.http.bind_to_any_port(i.options.host);
  } else {
    i.port = i.http.bind_to_port(i.options.host, i.options.port) ? i.options.port : -1;
  }
  if (i.port <= 0)
    throw Error("cannot listen on " + i.options.host + ":" + std::to_string(i.options.port) +
                " (address in use or not available)");
  return i.port;
}

void Server::run() {
  impl_->http.listen_after_bind();
}

void Server::stop() {
  impl_->stopping = true;
  if (impl_->http.is_running()) impl_->http.stop();
}

int Server::port() const {
  return impl_->port;
}
bool Server::running() const {
  return impl_->http.is_running();
}

}  // namespace pictor::serve
