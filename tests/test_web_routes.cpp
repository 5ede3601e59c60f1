// The web page over HTTP: a real Server on a free port, the embedded copy and
// --web-dir.
#include <gtest/gtest.h>
#include <httplib.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <thread>

#include <nlohmann/json.hpp>

#include "serve/server.hpp"
#include "serve/web_assets.hpp"
#include "support.hpp"

namespace fs = std::filesystem;
using pictor::serve::Server;
using pictor::serve::ServerOptions;

namespace {

class RunningServer {
 public:
  explicit RunningServer(ServerOptions options) : server_(std::move(options)) {
    port_ = server_.bind();
    thread_ = std::thread([this] { server_.run(); });
  }
  ~RunningServer() {
    server_.stop();
    thread_.join();
  }
  httplib::Client client() const { return httplib::Client("127.0.0.1", port_); }

 private:
  Server server_;
  int port_ = 0;
  std::thread thread_;
};

ServerOptions options_in(const fs::path& dir) {
  ServerOptions o;
  o.host = "127.0.0.1";
  o.port = 0;
  o.models_dir = dir / "models";
  o.data_dir = dir / "data";
  fs::create_directories(o.models_dir);
  return o;
}

void write_file(const fs::path& p, const std::string& bytes) {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << bytes;
}

std::string error_param(const std::string& body) {
  return nlohmann::json::parse(body).at("error").at("param").get<std::string>();
}

}  // namespace

TEST(WebRoutes, ServesTheEmbeddedPageWithContentTypes) {
  RunningServer server(options_in(pictor::test::temp_dir("web_routes_embedded")));
  auto http = server.client();
  auto index = http.Get("/");
  ASSERT_TRUE(index);
  EXPECT_EQ(index->status, 200);
  EXPECT_EQ(index->get_header_value("Content-Type"), "text/html; charset=utf-8");
  EXPECT_EQ(index->body, std::string(pictor::serve::find_embedded_web_asset("index.html")->bytes));
  EXPECT_NE(index->get_header_value("Content-Security-Policy").find("script-src 'self'"), std::string::npos);
  EXPECT_EQ(index->get_header_value("X-Content-Type-Options"), "nosniff");

  auto js = http.Get("/web/app.js");
  ASSERT_TRUE(js);
  EXPECT_EQ(js->status, 200);
  EXPECT_EQ(js->get_header_value("Content-Type"), "text/javascript; charset=utf-8");
  EXPECT_EQ(js->body, std::string(pictor::serve::find_embedded_web_asset("app.js")->bytes));
  auto css = http.Get("/web/style.css");
  ASSERT_TRUE(css);
  EXPECT_EQ(css->get_header_value("Content-Type"), "text/css; charset=utf-8");

  auto missing = http.Get("/web/missing.js");
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 404);
  EXPECT_EQ(error_param(missing->body), "path");
}

TEST(WebRoutes, RefusesTraversalInEveryEncoding) {
  RunningServer server(options_in(pictor::test::temp_dir("web_routes_traversal")));
  auto http = server.client();
  for (const char* path :
       {"/web/../CMakeLists.txt", "/web/%2e%2e/CMakeLists.txt", "/web/%2E%2E/x", "/web/..%2fx", "/web/%252e%252e/x",
        "/web/.%2e/x", "/web/a%5c..%5cx", "/web//etc/passwd", "/web/./app.js", "/web/"}) {
    auto res = http.Get(path);
    ASSERT_TRUE(res) << path;
    EXPECT_EQ(res->status, 400) << path;
    EXPECT_EQ(error_param(res->body), "path") << path;
  }
}

TEST(WebRoutes, WebDirServesThatFolderOnly) {
  const fs::path dir = pictor::test::temp_dir("web_routes_dir");
  write_file(dir / "site" / "index.html", "<p>edited page</p>");
  write_file(dir / "site" / "app.js", "console.log(1)");
  write_file(dir / "secret.txt", "secret");
  fs::create_symlink(dir / "secret.txt", dir / "site" / "leak.txt");
  auto options = options_in(dir);
  options.web_dir = (dir / "site").string();
  RunningServer server(options);
  auto http = server.client();

  auto index = http.Get("/");
  ASSERT_TRUE(index);
  EXPECT_EQ(index->status, 200);
  EXPECT_EQ(index->body, "<p>edited page</p>");
  auto js = http.Get("/web/app.js");
  ASSERT_TRUE(js);
  EXPECT_EQ(js->body, "console.log(1)");
  EXPECT_EQ(js->get_header_value("Content-Type"), "text/javascript; charset=utf-8");
  // The built-in files are not mixed in.
  auto css = http.Get("/web/style.css");
  ASSERT_TRUE(css);
  EXPECT_EQ(css->status, 404);
  for (const char* path : {"/web/../secret.txt", "/web/%2e%2e/secret.txt", "/web/..%2fsecret.txt"}) {
    auto res = http.Get(path);
    ASSERT_TRUE(res) << path;
    EXPECT_EQ(res->status, 400) << path;
    EXPECT_EQ(res->body.find("secret\""), std::string::npos);
  }
  auto leak = http.Get("/web/leak.txt");
  ASSERT_TRUE(leak);
  EXPECT_EQ(leak->status, 404);
  EXPECT_NE(leak->body,
            "secret");  // the JSON error, not the file behind the link
}
