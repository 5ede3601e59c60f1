// `pictor serve`: the HTTP server (OpenAI-compatible API, AUTOMATIC1111 API, jobs, sessions, web page).
#include <signal.h>

#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <fstream>
#include <thread>

#include "cli/commands.hpp"
#include "core/error.hpp"
#include "serve/server.hpp"

namespace pictor::cli {

namespace {

uint64_t parse_bytes(const std::string& text) {
  // "8G", "512M", "1000000"
  size_t pos = 0;
  double v = std::stod(text, &pos);
  std::string unit = text.substr(pos);
  double mul = unit.empty() || unit == "B" ? 1
               : unit == "K"               ? 1024.0
               : unit == "M"               ? 1024.0 * 1024
               : unit == "G"               ? 1024.0 * 1024 * 1024
                                           : -1;
  if (mul < 0 || v < 0) throw Error("--memory-budget: \"" + text + "\" is not a size like 8G or 512M");
  return uint64_t(v * mul);
}

}  // namespace

void add_serve_command(CLI::App& app) {
  auto opts = std::make_shared<serve::ServerOptions>();
  auto port_file = std::make_shared<std::string>();
  auto budget = std::make_shared<std::string>();
  auto* cmd = app.add_subcommand("serve", "Serve the OpenAI-compatible HTTP API, jobs, sessions and the web page");
  cmd->add_option("--host", opts->host, "Address to bind (a non-loopback address needs --api-key)")
      ->capture_default_str();
  cmd->add_option("--port", opts->port, "Port (0: any free port, printed at start)")->capture_default_str();
  cmd->add_option("--models", opts->models_dir, "Models directory: each folder is a model, its name the id")
      ->capture_default_str();
  cmd->add_option("--data", opts->data_dir, "Data directory: SQLite database and images")->capture_default_str();
  cmd->add_option("--api-key", opts->api_keys, "Accepted API key, KEY or NAME:KEY (repeatable)");
  cmd->add_option("--taesd", opts->taesd_dir, "AutoencoderTiny folder for live previews");
  cmd->add_option("--workers", opts->workers, "Jobs running at once (at most one per model)")->capture_default_str();
  cmd->add_option("--max-queue", opts->max_queued, "Waiting jobs before requests get 503")->capture_default_str();
  cmd->add_option("--memory-budget", *budget, "Memory for loaded models, e.g. 12G (default: 3/4 of RAM)");
  cmd->add_option("--threads", opts->threads, "Compute threads (0: all cores)")->capture_default_str();
  cmd->add_flag("--int8", opts->int8_decoder,
                "Image-to-text models: language model weights as int8 (faster decoding, slightly less accurate)");
  cmd->add_option("--max-body", opts->max_body_bytes, "Largest request body in bytes")->capture_default_str();
  cmd->add_option("--max-image-bytes", opts->max_image_bytes, "Largest input image file in bytes")
      ->capture_default_str();
  cmd->add_option("--max-image-pixels", opts->max_image_pixels, "Largest input image (width*height)")
      ->capture_default_str();
  cmd->add_option("--max-size", opts->max_output_side, "Largest generated width/height")->capture_default_str();
  cmd->add_option("--rate-limit", opts->rate_limit_per_minute, "Requests per minute per key (0: off)")
      ->capture_default_str();
  cmd->add_flag("--allow-private-urls", opts->allow_private_urls,
                "Let chat image URLs point at loopback/private addresses");
  cmd->add_option("--url-timeout", opts->url_timeout_s, "Seconds allowed to fetch an image URL in a chat message")
      ->capture_default_str();
  cmd->add_option("--local-files", opts->local_files_dir, "Folder whose files chat messages may name by path");
  cmd->add_option("--cors-origin", opts->cors_origin, "Enable CORS for this origin (e.g. https://app.example)");
  cmd->add_option("--web-dir", opts->web_dir, "Serve the web page from this folder instead of the built-in one");
  cmd->add_option("--port-file", *port_file, "Write the bound port to this file once listening");
  cmd->callback([opts, port_file, budget] {
    if (!budget->empty()) opts->memory_budget = parse_bytes(*budget);
    // Signals are taken by a dedicated thread (sigwait), which stops the server cleanly: queued jobs stay
    // in the database and resume at the next start.
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, nullptr);

    serve::Server server(*opts);
    int port = server.bind();
    std::printf("pictor serve: listening on http://%s:%d (models: %s, data: %s)\n", opts->host.c_str(), port,
                opts->models_dir.c_str(), opts->data_dir.c_str());
    std::fflush(stdout);
    if (!port_file->empty()) {
      std::ofstream(*port_file) << port << '\n';
    }
    std::atomic<bool> signalled{false};
    std::thread waiter([&server, &signalled, sigs] {
      int sig = 0;
      sigwait(&sigs, &sig);
      if (signalled.exchange(true)) return;  // woken by our own kill() below
      std::fprintf(stderr, "pictor serve: stopping (signal %d)\n", sig);
      server.stop();
    });
    server.run();
    // run() also returns if the listener fails: wake the signal thread (the signal is blocked everywhere,
    // so only its sigwait sees it).
    if (!signalled.exchange(true)) kill(getpid(), SIGTERM);
    waiter.join();
  });
}

}  // namespace pictor::cli
