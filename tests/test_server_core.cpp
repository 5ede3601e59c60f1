// The server's core: health/models/metrics, the OpenAI error shape, API keys, rate limits, body limits,
// CORS, the job queue (status, events, cancel, previews, queue limit, restart resume) and file serving.
#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include <nlohmann/json.hpp>

#include "jobs/job_queue.hpp"
#include "serve/api_error.hpp"
#include "serve/routes.hpp"
#include "serve/server_context.hpp"
#include "server_fixture.hpp"

namespace fs = std::filesystem;
using nlohmann::json;
using pictor::test::TestServer;

namespace {

// A job type for these tests only: the params are passed through as a "generate" job.
void register_test_type() {
  static bool done = [] {
    pictor::serve::JobType t;
    t.parse = [](pictor::serve::ServerContext& ctx, const json& request, const std::string& caller) {
      pictor::jobs::JobSpec s;
      s.kind = "generate";
      s.model = ctx.pick_model(request.value("model", ""), pictor::jobs::ModelKind::TextToImage).id;
      s.params = request;
      s.owner = caller;
      return s;
    };
    t.format = [](pictor::serve::ServerContext&, const pictor::storage::JobRecord& job) {
      return json{{"images", job.result["images"].size()}};
    };
    pictor::serve::register_job_type("test.generate", t);
    return true;
  }();
  (void)done;
}

json tiny_request(int steps = 2, uint64_t seed = 7) {
  return {{"prompt", "a red cube"}, {"width", 64}, {"height", 64}, {"steps", steps}, {"seed", seed}};
}

json body_of(const httplib::Result& r) {
  EXPECT_TRUE(r) << "no response";
  if (!r) return {};
  return json::parse(r->body, nullptr, false);
}

void expect_openai_error(const httplib::Result& r, int status, const std::string& param = "") {
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, status) << r->body;
  auto j = json::parse(r->body, nullptr, false);
  ASSERT_TRUE(j.is_object() && j.contains("error")) << r->body;
  EXPECT_TRUE(j["error"]["message"].is_string());
  EXPECT_FALSE(j["error"]["message"].get<std::string>().empty());
  EXPECT_TRUE(j["error"]["type"].is_string());
  EXPECT_TRUE(j["error"].contains("param"));
  EXPECT_TRUE(j["error"].contains("code"));
  if (!param.empty()) {
    EXPECT_EQ(j["error"]["param"], param) << r->body;
  }
}

std::string submit(httplib::Client& c, const json& request, const httplib::Headers& h = {}) {
  auto r = c.Post("/v1/jobs", h, json{{"type", "test.generate"}, {"request", request}}.dump(), "application/json");
  EXPECT_TRUE(r);
  if (!r) return "";
  EXPECT_EQ(r->status, 202) << r->body;
  return json::parse(r->body)["id"];
}

json wait_job(httplib::Client& c, const std::string& id) {
  for (int i = 0; i < 3000; ++i) {
    auto j = body_of(c.Get("/v1/jobs/" + id));
    std::string state = j.value("state", "");
    if (state == "succeeded" || state == "failed" || state == "cancelled") return j;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ADD_FAILURE() << "job " << id << " did not finish";
  return {};
}

}  // namespace

TEST(ServerCore, HealthModelsAndMetrics) {
  TestServer s;
  auto c = s.client();
  auto h = body_of(c.Get("/health"));
  EXPECT_EQ(h["status"], "ok");
  auto m = body_of(c.Get("/v1/models"));
  ASSERT_EQ(m["object"], "list");
  ASSERT_EQ(m["data"].size(), 1u);
  EXPECT_EQ(m["data"][0]["id"], "tiny-sd");
  EXPECT_EQ(m["data"][0]["kind"], "text-to-image");
  EXPECT_EQ(m["data"][0]["output_modalities"], json::array({"image"}));
  EXPECT_GT(m["data"][0]["weight_bytes"].get<uint64_t>(), 0u);
  expect_openai_error(c.Get("/v1/models/nope"), 404, "model");
  // Requests are counted by the server's logger, which runs after the response is sent (on that
  // connection's thread), so the count may land a moment after the client has its answer.
  const std::string counted = "pictor_http_requests_total{route=\"/v1/models\",status=\"200\"} 1";
  std::string body;
  for (int attempt = 0; attempt < 50; ++attempt) {
    auto metrics = c.Get("/metrics");
    ASSERT_TRUE(metrics);
    body = metrics->body;
    if (body.find(counted) != std::string::npos) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_NE(body.find("# TYPE pictor_queue_length gauge"), std::string::npos);
  EXPECT_NE(body.find(counted), std::string::npos) << body;
}

TEST(ServerCore, ErrorsHaveTheOpenAIShape) {
  TestServer s;
  auto c = s.client();
  expect_openai_error(c.Get("/v1/nothing-here"), 404);
  expect_openai_error(c.Post("/v1/jobs", "{not json", "application/json"), 400);
  expect_openai_error(c.Post("/v1/jobs", "[1,2]", "application/json"), 400);
  expect_openai_error(
      c.Post("/v1/jobs", json{{"type", "nope"}, {"request", json::object()}}.dump(), "application/json"), 400, "type");
  expect_openai_error(c.Post("/v1/jobs", json{{"type", 3}}.dump(), "application/json"), 400, "type");
  expect_openai_error(c.Get("/v1/jobs/job_000000000000000000000000"), 404);
  expect_openai_error(c.Get("/v1/jobs/../../etc/passwd"), 404);
}

TEST(ServerCore, BodyLimit) {
  pictor::serve::ServerOptions o;
  o.max_body_bytes = 1000;
  TestServer s(o);
  auto c = s.client();
  std::string big(5000, 'x');
  auto r = c.Post("/v1/jobs", big, "application/json");
  expect_openai_error(r, 413);
}

TEST(ServerCore, ApiKeysAreRequiredWhenConfigured) {
  pictor::serve::ServerOptions o;
  o.api_keys = {"alice:secret-key-1", "secret-key-2"};
  TestServer s(o);
  auto c = s.client();
  expect_openai_error(c.Get("/v1/models"), 401);
  expect_openai_error(c.Get("/v1/models", {{"Authorization", "Bearer wrong-key-123"}}), 401);
  EXPECT_EQ(c.Get("/v1/models", {{"Authorization", "Bearer secret-key-1"}})->status, 200);
  EXPECT_EQ(c.Get("/v1/models", {{"Authorization", "Bearer secret-key-2"}})->status, 200);
  EXPECT_EQ(c.Get("/v1/models?access_token=secret-key-1")->status, 200);
  expect_openai_error(c.Get("/metrics"), 401);
  EXPECT_EQ(c.Get("/health")->status, 200);  // health stays open for load balancers
}

TEST(ServerCore, NonLoopbackNeedsAKey) {
  pictor::serve::ServerOptions o;
  o.host = "0.0.0.0";
  o.models_dir = pictor::test::tiny_models_dir();
  o.data_dir = pictor::test::temp_dir("nonloop");
  try {
    pictor::serve::Server srv(o);
    FAIL() << "a server on 0.0.0.0 without --api-key must be refused";
  } catch (const pictor::Error& e) {
    EXPECT_NE(std::string(e.what()).find("--api-key"), std::string::npos) << e.what();
  }
  EXPECT_TRUE(pictor::serve::is_loopback_host("127.0.0.1"));
  EXPECT_TRUE(pictor::serve::is_loopback_host("::1"));
  EXPECT_TRUE(pictor::serve::is_loopback_host("localhost"));
  EXPECT_FALSE(pictor::serve::is_loopback_host("192.168.1.4"));
}

TEST(ServerCore, RateLimitPerKey) {
  pictor::serve::ServerOptions o;
  o.api_keys = {"a:key-aaaaaaaa", "b:key-bbbbbbbb"};
  o.rate_limit_per_minute = 3;
  TestServer s(o);
  auto c = s.client();
  httplib::Headers a{{"Authorization", "Bearer key-aaaaaaaa"}}, b{{"Authorization", "Bearer key-bbbbbbbb"}};
  for (int i = 0; i < 3; ++i) EXPECT_EQ(c.Get("/v1/models", a)->status, 200);
  auto r = c.Get("/v1/models", a);
  expect_openai_error(r, 429);
  EXPECT_FALSE(r->get_header_value("Retry-After").empty());
  EXPECT_EQ(c.Get("/v1/models", b)->status, 200);  // the other key has its own budget
}

TEST(ServerCore, CorsIsOffByDefaultAndOnWhenConfigured) {
  {
    TestServer s;
    auto c = s.client();
    auto r = c.Get("/v1/models", {{"Origin", "https://evil.example"}});
    EXPECT_TRUE(r->get_header_value("Access-Control-Allow-Origin").empty());
  }
  pictor::serve::ServerOptions o;
  o.cors_origin = "https://app.example";
  TestServer s(o);
  auto c = s.client();
  auto r = c.Get("/v1/models", {{"Origin", "https://app.example"}});
  EXPECT_EQ(r->get_header_value("Access-Control-Allow-Origin"), "https://app.example");
  auto pre = c.Options("/v1/images/generations", {{"Origin", "https://app.example"}});
  ASSERT_TRUE(pre);
  EXPECT_EQ(pre->status, 204);
  EXPECT_NE(pre->get_header_value("Access-Control-Allow-Headers").find("Authorization"), std::string::npos);
}

TEST(ServerCore, JobRunsAndReportsProgressEventsAndFiles) {
  register_test_type();
  pictor::serve::ServerOptions o;
  o.taesd_dir = pictor::test::tiny_taesd_dir();
  TestServer s(o);
  auto c = s.client();
  auto id = submit(c, tiny_request(3));
  ASSERT_FALSE(id.empty());

  // The event stream reports progress with previews and ends with "done".
  std::string events;
  auto r = c.Get("/v1/jobs/" + id + "/events", [&](const char* data, size_t n) {
    events.append(data, n);
    return true;
  });
  ASSERT_TRUE(r);
  EXPECT_EQ(r->get_header_value("Content-Type"), "text/event-stream");
  EXPECT_NE(events.find("event: state"), std::string::npos) << events;
  EXPECT_NE(events.find("event: progress"), std::string::npos) << events;
  EXPECT_NE(events.find("event: done"), std::string::npos) << events;
  EXPECT_NE(events.find("/preview?step="), std::string::npos) << events;

  auto job = wait_job(c, id);
  ASSERT_EQ(job["state"], "succeeded") << job.dump();
  EXPECT_EQ(job["response"]["images"], 1);
  auto url = job["result"]["images"][0]["url"].get<std::string>();
  auto img = c.Get(url);
  ASSERT_EQ(img->status, 200);
  EXPECT_EQ(img->get_header_value("Content-Type"), "image/png");
  auto decoded = pictor::decode_image(reinterpret_cast<const uint8_t*>(img->body.data()), img->body.size(), "http");
  EXPECT_EQ(decoded.width, 64);
  auto text = pictor::read_png_text(reinterpret_cast<const uint8_t*>(img->body.data()), img->body.size(), "http");
  ASSERT_FALSE(text.empty());
  EXPECT_EQ(text[0].first, "parameters");
  EXPECT_NE(text[0].second.find("Seed: 7"), std::string::npos) << text[0].second;
  auto preview = c.Get("/v1/jobs/" + id + "/preview");
  EXPECT_EQ(preview->status, 200);

  // Files: only valid ids with their real extension are served.
  expect_openai_error(c.Get(url.substr(0, url.size() - 4) + ".jpg"), 404);
  expect_openai_error(c.Get("/v1/files/images/..%2f..%2fpictor.db"), 404);
  expect_openai_error(c.Get("/v1/files/images/img_zz.png"), 404);

  // Same seed → same image bytes.
  auto job2 = wait_job(c, submit(c, tiny_request(3)));
  auto img2 = c.Get(job2["result"]["images"][0]["url"].get<std::string>());
  EXPECT_EQ(img->body, img2->body);
  // Listing shows the caller's jobs.
  auto list = body_of(c.Get("/v1/jobs"));
  EXPECT_EQ(list["data"].size(), 2u);
}

TEST(ServerCore, CancelQueuedAndRunningJobs) {
  register_test_type();
  pictor::serve::ServerOptions o;
  o.workers = 1;
  TestServer s(o);
  auto c = s.client();
  auto long_job = submit(c, tiny_request(200));
  auto queued = submit(c, tiny_request(2));
  auto q = body_of(c.Get("/v1/jobs/" + queued));
  EXPECT_EQ(q["state"], "queued");
  EXPECT_EQ(q["queue_position"], 1);
  EXPECT_EQ(body_of(c.Delete("/v1/jobs/" + queued))["state"], "cancelled");
  // Wait until the long job runs, then cancel it mid-way.
  for (int i = 0; i < 2000 && body_of(c.Get("/v1/jobs/" + long_job))["step"].get<int>() < 1; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  c.Delete("/v1/jobs/" + long_job);
  auto j = wait_job(c, long_job);
  EXPECT_EQ(j["state"], "cancelled");
  EXPECT_LT(j["step"].get<int>(), 200);
}

TEST(ServerCore, OneJobPerModelAtATimeEvenWithFreeWorkers) {
  register_test_type();
  pictor::serve::ServerOptions o;
  o.workers = 2;
  TestServer s(o);
  auto c = s.client();
  auto first = submit(c, tiny_request(60));
  auto second = submit(c, tiny_request(2));
  for (int i = 0; i < 2000 && body_of(c.Get("/v1/jobs/" + first))["step"].get<int>() < 1; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  // A worker is free, but the only model is busy: the second job waits.
  EXPECT_EQ(body_of(c.Get("/v1/jobs/" + second))["state"], "queued");
  c.Delete("/v1/jobs/" + first);
  EXPECT_EQ(wait_job(c, second)["state"], "succeeded");
}

TEST(ServerCore, FullQueueIsRefusedWith503AndNothingIsLost) {
  register_test_type();
  pictor::serve::ServerOptions o;
  o.workers = 1;
  o.max_queued = 2;
  TestServer s(o);
  auto c = s.client();
  std::vector<std::string> accepted;
  int refused = 0;
  for (int i = 0; i < 6; ++i) {
    auto r = c.Post("/v1/jobs", json{{"type", "test.generate"}, {"request", tiny_request(2, 100 + i)}}.dump(),
                    "application/json");
    ASSERT_TRUE(r);
    if (r->status == 202) {
      accepted.push_back(json::parse(r->body)["id"]);
    } else {
      expect_openai_error(r, 503);
      EXPECT_FALSE(r->get_header_value("Retry-After").empty());
      ++refused;
    }
  }
  EXPECT_GE(refused, 1);
  for (auto& id : accepted) {
    auto j = wait_job(c, id);
    EXPECT_EQ(j["state"], "succeeded") << j.dump();
  }
}

TEST(ServerCore, QueuedJobsSurviveARestart) {
  register_test_type();
  pictor::serve::ServerOptions o;
  o.workers = 1;
  o.models_dir = pictor::test::tiny_models_dir();
  o.data_dir = pictor::test::temp_dir("restart-data");
  std::vector<std::string> ids;
  std::string finished_url;
  {
    TestServer s(o, false);
    auto c = s.client();
    auto first = submit(c, tiny_request(2, 1));
    auto done = wait_job(c, first);
    finished_url = done["result"]["images"][0]["url"];
    for (int i = 0; i < 3; ++i) ids.push_back(submit(c, tiny_request(8, 10 + i)));
    ids.insert(ids.begin(), first);
  }  // stopped with jobs running and queued
  TestServer s(o, false);
  auto c = s.client();
  EXPECT_EQ(c.Get(finished_url)->status, 200) << "a finished result was lost";
  for (auto& id : ids) {
    auto j = wait_job(c, id);
    EXPECT_EQ(j["state"], "succeeded") << j.dump();
  }
}
