// POST /v1/chat/completions on an in-process server with a tiny random-weight
// SmolVLM: data-URI images, http(s) image URLs and the private-address refusal
// (against a loopback httplib server), size limits, streaming chunks, and
// OpenAI-shaped errors.
#include <gtest/gtest.h>
#include <httplib.h>

#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "dev/make_tiny_vlm.hpp"
#include "formats/image.hpp"
#include "serve/base64.hpp"
#include "server_fixture.hpp"

using namespace pictor;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

fs::path vlm_models_dir() {
  static fs::path dir = [] {
    const fs::path root = test::temp_dir("chat-models") / "models";
    dev::make_tiny_vlm(root / "tiny-vlm");
    return root;
  }();
  return dir;
}

std::vector<uint8_t> test_png(int w = 40, int h = 32) {
  Image im(w, h, 3);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      uint8_t* p = im.at(x, y);
      p[0] = uint8_t(x * 6);
      p[1] = uint8_t(y * 7);
      p[2] = uint8_t((x / 4 + y / 4) % 2 * 200);
    }
  return encode_png(im);
}

std::string base64(const std::vector<uint8_t>& data) {
  return pictor::serve::base64_encode(data);
}

std::string data_uri(const std::vector<uint8_t>& bytes) {
  return "data:image/png;base64," + base64(bytes);
}

json chat_body(const std::string& url, int max_tokens = 6) {
  return {
      {"model", "tiny-vlm"},
      {"max_tokens", max_tokens},
      {"messages",
       {{{"role", "user"},
         {"content",
          {{{"type", "text"}, {"text", "What is this?"}}, {{"type", "image_url"}, {"image_url", {{"url", url}}}}}}}}}};
}

serve::ServerOptions options() {
  serve::ServerOptions o;
  o.models_dir = vlm_models_dir();
  o.threads = 1;
  return o;
}

struct Reply {
  int status = 0;
  json body;
  std::string raw;
};

Reply post(const test::TestServer& s, const json& body, const std::string& path = "/v1/chat/completions") {
  auto c = s.client();
  auto res = c.Post(path.c_str(), body.dump(), "application/json");
  if (!res) return {};
  Reply r{res->status, json(), res->body};
  r.body = json::parse(res->body, nullptr, false);
  return r;
}

// A loopback image host: /img.png, /redirect (302 to /img.png), /big (too
// large), /text (not an image).
struct ImageHost {
  httplib::Server http;
  std::thread thread;
  int port = 0;
  explicit ImageHost(const std::vector<uint8_t>& png) {
    const std::string body(png.begin(), png.end());
    http.Get("/img.png",
             [body](const httplib::Request&, httplib::Response& res) { res.set_content(body, "image/png"); });
    http.Get("/redirect", [](const httplib::Request&, httplib::Response& res) { res.set_redirect("/img.png"); });
    http.Get("/big", [](const httplib::Request&, httplib::Response& res) {
      res.set_content(std::string(300000, 'x'), "image/png");
    });
    http.Get("/text", [](const httplib::Request&, httplib::Response& res) { res.set_content("hello", "text/plain"); });
    port = http.bind_to_any_port("127.0.0.1");
    thread = std::thread([this] { http.listen_after_bind(); });
    while (!http.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  ~ImageHost() {
    http.stop();
    thread.join();
  }
  std::string url(const std::string& path) const { return "http://127.0.0.1:" + std::to_string(port) + path; }
};

void expect_error(const Reply& r, int status, const std::string& param, const std::string& code = "") {
  EXPECT_EQ(r.status, status) << r.raw;
  ASSERT_TRUE(r.body.is_object() && r.body.contains("error")) << r.raw;
  const json& e = r.body["error"];
  EXPECT_TRUE(e["message"].is_string() && !e["message"].get<std::string>().empty()) << r.raw;
  EXPECT_TRUE(e["type"].is_string()) << r.raw;
  EXPECT_EQ(e["param"], param) << r.raw;
  if (!code.empty()) {
    EXPECT_EQ(e["code"], code) << r.raw;
  }
}

}  // namespace

TEST(ServerChat, DataUriImageGetsAChatCompletion) {
  test::TestServer s(options());
  const Reply r = post(s, chat_body(data_uri(test_png())));
  ASSERT_EQ(r.status, 200) << r.raw;
  const json& b = r.body;
  EXPECT_EQ(b["object"], "chat.completion");
  EXPECT_EQ(b["id"].get<std::string>().rfind("chatcmpl-", 0), 0u);
  EXPECT_EQ(b["model"], "tiny-vlm");
  EXPECT_GT(b["created"].get<int64_t>(), 1600000000);
  ASSERT_EQ(b["choices"].size(), 1u);
  EXPECT_EQ(b["choices"][0]["message"]["role"], "assistant");
  EXPECT_TRUE(b["choices"][0]["message"]["content"].is_string());
  const std::string finish = b["choices"][0]["finish_reason"];
  EXPECT_TRUE(finish == "stop" || finish == "length") << finish;
  EXPECT_GT(b["usage"]["prompt_tokens"].get<int>(), 10);
  EXPECT_LE(b["usage"]["completion_tokens"].get<int>(), 6);
  EXPECT_EQ(b["usage"]["total_tokens"].get<int>(),
            b["usage"]["prompt_tokens"].get<int>() + b["usage"]["completion_tokens"].get<int>());

  // Greedy by default: the same request gives the same answer.
  const Reply again = post(s, chat_body(data_uri(test_png())));
  EXPECT_EQ(again.body["choices"][0]["message"]["content"], b["choices"][0]["message"]["content"]);
}

TEST(ServerChat, PrivateUrlsAreRefusedUnlessAllowed) {
  const std::vector<uint8_t> png = test_png();
  ImageHost host(png);
  {
    test::TestServer s(options());
    const Reply r = post(s, chat_body(host.url("/img.png")));
    expect_error(r, 400, "messages[0].content[1].image_url", "url_not_allowed");
    EXPECT_NE(r.body["error"]["message"].get<std::string>().find("127.0.0.1"), std::string::npos);
    EXPECT_NE(r.body["error"]["message"].get<std::string>().find("private"), std::string::npos);
  }
  serve::ServerOptions o = options();
  o.allow_private_urls = true;
  o.max_image_bytes = 100000;
  test::TestServer s(o);
  const Reply ok = post(s, chat_body(host.url("/img.png")));
  EXPECT_EQ(ok.status, 200) << ok.raw;
  const Reply redirected = post(s, chat_body(host.url("/redirect")));
  EXPECT_EQ(redirected.status, 200) << redirected.raw;
  expect_error(post(s, chat_body(host.url("/big"))), 400, "messages[0].content[1].image_url", "image_too_large");
  expect_error(post(s, chat_body(host.url("/text"))), 400, "messages[0].content[1].image_url", "invalid_image");
  expect_error(post(s, chat_body(host.url("/missing"))), 400, "messages[0].content[1].image_url", "url_unreachable");
}

TEST(ServerChat, OversizedImagesAreRefused) {
  serve::ServerOptions o = options();
  o.max_image_bytes = 200;
  test::TestServer s(o);
  expect_error(post(s, chat_body(data_uri(test_png(64, 64)))), 400, "messages[0].content[1].image_url",
               "image_too_large");

  serve::ServerOptions p = options();
  p.max_image_pixels = 100;
  test::TestServer s2(p);
  expect_error(post(s2, chat_body(data_uri(test_png(40, 32)))), 400, "messages[0].content[1].image_url",
               "invalid_image");
}

TEST(ServerChat, StreamingSendsWellFormedChunksEndingInDone) {
  test::TestServer s(options());
  const Reply whole = post(s, chat_body(data_uri(test_png()), 8));
  ASSERT_EQ(whole.status, 200) << whole.raw;

  json body = chat_body(data_uri(test_png()), 8);
  body["stream"] = true;
  body["stream_options"] = {{"include_usage", true}};
  const std::string payload = body.dump();
  auto c = s.client();
  auto res = c.Post("/v1/chat/completions", payload, "application/json");
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200) << res->body << "\nsent: " << payload.substr(0, 200);
  EXPECT_NE(res->get_header_value("Content-Type").find("text/event-stream"), std::string::npos);

  std::vector<std::string> data;
  std::istringstream in(res->body);
  for (std::string line; std::getline(in, line);)
    if (line.rfind("data: ", 0) == 0) data.push_back(line.substr(6));
  ASSERT_GE(data.size(), 4u) << res->body;
  EXPECT_EQ(data.back(), "[DONE]");

  std::string content, id, finish;
  json usage;
  for (size_t k = 0; k + 1 < data.size(); ++k) {
    const json chunk = json::parse(data[k]);
    EXPECT_EQ(chunk["object"], "chat.completion.chunk") << data[k];
    if (id.empty()) id = chunk["id"];
    EXPECT_EQ(chunk["id"], id);
    EXPECT_EQ(chunk["model"], "tiny-vlm");
    if (chunk.contains("usage") && chunk["choices"].empty()) {
      usage = chunk["usage"];
      EXPECT_EQ(k + 2, data.size()) << "the usage chunk comes last";
      continue;
    }
    ASSERT_EQ(chunk["choices"].size(), 1u);
    const json& choice = chunk["choices"][0];
    if (k == 0) {
      EXPECT_EQ(choice["delta"], json({{"role", "assistant"}, {"content", ""}}));
    }
    if (choice["delta"].contains("content")) content += choice["delta"]["content"].get<std::string>();
    if (!choice["finish_reason"].is_null()) {
      EXPECT_TRUE(finish.empty()) << "one final chunk";
      finish = choice["finish_reason"];
    }
  }
  EXPECT_EQ(id.rfind("chatcmpl-", 0), 0u);
  EXPECT_EQ(content, whole.body["choices"][0]["message"]["content"]);
  EXPECT_EQ(finish, whole.body["choices"][0]["finish_reason"]);
  EXPECT_EQ(usage, whole.body["usage"]);
}

TEST(ServerChat, BadRequestsGetOpenAIErrors) {
  test::TestServer s(options());
  auto c = s.client();
  auto res = c.Post("/v1/chat/completions", "{not json", "application/json");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 400);
  EXPECT_TRUE(json::parse(res->body)["error"].is_object());

  json body = chat_body(data_uri(test_png()));
  body.erase("messages");
  expect_error(post(s, body), 400, "messages");
  body = chat_body(data_uri(test_png()));
  body["temperature"] = 3;
  expect_error(post(s, body), 400, "temperature");
  body = chat_body(data_uri(test_png()));
  body["model"] = "no-such-model";
  expect_error(post(s, body), 404, "model");
  expect_error(post(s, chat_body("data:image/png;base64,bm90IGFuIGltYWdl")), 400, "messages[0].content[1].image_url",
               "invalid_image");
  expect_error(post(s, chat_body("data:image/png;base64,%%%")), 400, "messages[0].content[1].image_url");
  expect_error(post(s, chat_body("/etc/passwd")), 403, "messages[0].content[1].image_url");
  body = chat_body(data_uri(test_png()));
  body["messages"][0]["content"].erase(1);
  expect_error(post(s, body), 400, "messages", "image_required");
}

TEST(ServerChat, RunsAsABackgroundJob) {
  test::TestServer s(options());
  const Reply queued =
      post(s, {{"type", "chat.completions"}, {"request", chat_body(data_uri(test_png()))}}, "/v1/jobs");
  ASSERT_EQ(queued.status, 202) << queued.raw;
  const std::string id = queued.body["id"];
  auto c = s.client();
  json job;
  for (int k = 0; k < 600; ++k) {
    auto res = c.Get(("/v1/jobs/" + id).c_str());
    ASSERT_TRUE(res);
    job = json::parse(res->body);
    if (job["state"] != "queued" && job["state"] != "running") break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_EQ(job["state"], "succeeded") << job.dump();
  EXPECT_EQ(job["type"], "chat.completions");
  EXPECT_EQ(job["response"]["object"], "chat.completion");
  EXPECT_EQ(job["response"]["id"], "chatcmpl-" + id.substr(id.find('_') + 1));
  EXPECT_EQ(job["response"]["choices"][0]["message"]["content"], job["result"]["text"]);
  // A bad request is refused when it is submitted, not when it runs.
  json bad = chat_body(data_uri(test_png()));
  bad["top_p"] = 5;
  expect_error(post(s, {{"type", "chat.completions"}, {"request", bad}}, "/v1/jobs"), 400, "top_p");
}
