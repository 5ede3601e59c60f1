#pragma once
// `pictor serve`: the HTTP front of the library. It owns the state (SQLite store, model catalog, job
// queue) and an HTTP server whose routes are added by the routes_*.cpp files.
#include <memory>

#include "serve/server_options.hpp"

namespace pictor::serve {

class Server {
 public:
  explicit Server(ServerOptions options);  // opens the data directory, resumes queued jobs
  ~Server();

  // Binds the socket (throws pictor::Error when the address is taken) and returns the port.
  int bind();
  // Serves until stop() (call bind() first).
  void run();
  void stop();
  int port() const;
  bool running() const;  // run() is accepting connections

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace pictor::serve
