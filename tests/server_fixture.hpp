#pragma once
// An in-process `pictor serve` for HTTP tests: a temporary data directory, a models directory holding
// tiny generated models, port 0 (any free port) and an httplib client pointed at it.
#include <httplib.h>

#include <filesystem>
#include <memory>
#include <thread>

#include "dev/make_tiny_sd.hpp"
#include "serve/server.hpp"
#include "support.hpp"

namespace pictor::test {

// A models directory with one tiny Stable Diffusion model ("tiny-sd") and a tiny TAESD beside it
// (`taesd_dir()`), made once per test process.
inline std::filesystem::path tiny_models_dir() {
  static std::filesystem::path dir = [] {
    auto root = temp_dir("server-models");
    dev::TinySdOptions o;
    o.taesd_dir = root / "taesd";
    dev::make_tiny_sd(root / "models" / "tiny-sd", o);
    return root / "models";
  }();
  return dir;
}
inline std::filesystem::path tiny_taesd_dir() {
  return tiny_models_dir().parent_path() / "taesd";
}

class TestServer {
 public:
  explicit TestServer(serve::ServerOptions o = {}, bool fresh_data = true) {
    if (o.models_dir == "models") o.models_dir = tiny_models_dir();
    if (fresh_data && o.data_dir == "pictor-data") o.data_dir = temp_dir("server-data");
    o.port = 0;
    options = o;
    server = std::make_unique<serve::Server>(o);
    port = server->bind();
    thread = std::thread([this] { server->run(); });
    // stop() before run() has started would be lost: wait until it accepts connections.
    while (!server->running()) std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  ~TestServer() { stop(); }
  void stop() {
    if (!server) return;
    server->stop();
    thread.join();
    server.reset();
  }
  httplib::Client client() const {
    httplib::Client c("127.0.0.1", port);
    c.set_read_timeout(300, 0);
    return c;
  }

  serve::ServerOptions options;
  std::unique_ptr<serve::Server> server;
  std::thread thread;
  int port = 0;
};

}  // namespace pictor::test
