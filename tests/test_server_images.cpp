// The image endpoints over HTTP: a real Server in-process on a free port with a tiny random-weight model,
// talked to with httplib::Client. OpenAI generations / edits / variations, AUTOMATIC1111 txt2img /
// img2img / progress / samplers, background job types, and the error shape of every refusal.
#include <gtest/gtest.h>
#include <httplib.h>

#include <chrono>
#include <thread>

#include <nlohmann/json.hpp>

#include "dev/make_tiny_sd.hpp"
#include "formats/image.hpp"
#include "serve/base64.hpp"
#include "serve/server.hpp"
#include "support.hpp"

using namespace pictor;
using namespace pictor::serve;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

// One server for the whole file: loading the model once keeps each test at a few seconds.
struct TestServer {
  fs::path dir;
  std::unique_ptr<Server> server;
  std::thread thread;
  int port = 0;

  TestServer() {
    dir = test::temp_dir("server-images");
    dev::make_tiny_sd(dir / "models" / "tiny-sd");
    ServerOptions o;
    o.port = 0;
    o.models_dir = dir / "models";
    o.data_dir = dir / "data";
    o.workers = 1;
    o.max_images_per_request = 4;
    server = std::make_unique<Server>(o);
    port = server->bind();
    thread = std::thread([this] { server->run(); });
  }
  ~TestServer() {
    server->stop();
    thread.join();
  }
};

TestServer& srv() {
  static TestServer s;
  return s;
}

httplib::Client client() {
  httplib::Client c("127.0.0.1", srv().port);
  c.set_read_timeout(300, 0);
  c.set_write_timeout(60, 0);
  return c;
}

json post_json(const std::string& path, const json& body, int expected_status = 200) {
  auto res = client().Post(path.c_str(), body.dump(), "application/json");
  EXPECT_TRUE(res) << path;
  if (!res) return json();
  EXPECT_EQ(res->status, expected_status) << path << " " << body.dump().substr(0, 300) << " -> " << res->body;
  return json::parse(res->body, nullptr, false);
}

json post_form(const std::string& path, const httplib::MultipartFormDataItems& items, int expected_status = 200) {
  auto res = client().Post(path.c_str(), items);
  EXPECT_TRUE(res) << path;
  if (!res) return json();
  EXPECT_EQ(res->status, expected_status) << path << " -> " << res->body;
  return json::parse(res->body, nullptr, false);
}

// The OpenAI error shape with its `param`.
void expect_error(const json& body, const std::string& param) {
  ASSERT_TRUE(body.contains("error")) << body.dump();
  const json& e = body["error"];
  EXPECT_TRUE(e["message"].is_string()) << body.dump();
  EXPECT_EQ(e["type"], "invalid_request_error") << body.dump();
  EXPECT_EQ(e["param"], param) << body.dump();
  EXPECT_TRUE(e.contains("code")) << body.dump();
}

std::vector<uint8_t> b64(const json& v) {
  auto bytes = base64_decode(v.get<std::string>());
  EXPECT_TRUE(bytes);
  return bytes ? *bytes : std::vector<uint8_t>{};
}

Image decode(const std::vector<uint8_t>& bytes) {
  return decode_image(bytes.data(), bytes.size(), "response");
}

std::string parameters_text(const std::vector<uint8_t>& png) {
  for (const auto& [k, v] : read_png_text(png.data(), png.size(), "response"))
    if (k == "parameters") return v;
  return "";
}

Image gradient(int w, int h, int channels) {
  Image img(w, h, channels);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      uint8_t* p = img.at(x, y);
      p[0] = uint8_t(x * 4), p[1] = uint8_t(y * 4), p[2] = 128;
      if (channels == 4) p[3] = 255;
    }
  return img;
}

std::string png_text(const Image& img) {
  auto bytes = encode_png(img);
  return std::string(bytes.begin(), bytes.end());
}

json generation(json extra) {
  json body = {{"prompt", "a small red cube"}, {"size", "64x64"}, {"steps", 2}};
  body.update(extra);
  return body;
}

}  // namespace

TEST(ServerImages, GenerationB64WithParametersAndSeeds) {
  json r = post_json("/v1/images/generations", generation({{"seed", 7}, {"n", 2}}));
  ASSERT_EQ(r["data"].size(), 2u) << r.dump().substr(0, 300);
  EXPECT_GT(r["created"].get<int64_t>(), 1600000000);
  EXPECT_EQ(r["data"][0]["seed"], 7);
  EXPECT_EQ(r["data"][1]["seed"], 8);
  auto png = b64(r["data"][0]["b64_json"]);
  EXPECT_EQ(detect_image_format(png.data(), png.size()), ImageFormat::Png);
  Image img = decode(png);
  EXPECT_EQ(img.width, 64);
  EXPECT_EQ(img.height, 64);
  std::string params = parameters_text(png);
  EXPECT_NE(params.find("a small red cube"), std::string::npos) << params;
  EXPECT_NE(params.find("Seed: 7"), std::string::npos) << params;
  EXPECT_NE(params.find("Steps: 2"), std::string::npos) << params;

  // The same seed gives the same bytes.
  json again = post_json("/v1/images/generations", generation({{"seed", 7}}));
  EXPECT_EQ(again["data"][0]["b64_json"], r["data"][0]["b64_json"]);
}

TEST(ServerImages, GenerationUrlServesTheImage) {
  auto c = client();
  json body = generation({{"seed", 3}, {"response_format", "url"}});
  auto res = c.Post("/v1/images/generations", body.dump(), "application/json");
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200) << res->body;
  json r = json::parse(res->body);
  std::string url = r["data"][0]["url"];
  const std::string prefix = "http://127.0.0.1:" + std::to_string(srv().port) + "/v1/files/images/img_";
  ASSERT_EQ(url.rfind(prefix, 0), 0u) << url;
  EXPECT_EQ(url.substr(url.size() - 4), ".png");
  auto file = c.Get(url.substr(url.find("/v1/")).c_str());
  ASSERT_TRUE(file);
  ASSERT_EQ(file->status, 200);
  std::vector<uint8_t> bytes(file->body.begin(), file->body.end());
  EXPECT_EQ(decode(bytes).width, 64);
  EXPECT_NE(parameters_text(bytes).find("Seed: 3"), std::string::npos);
}

TEST(ServerImages, JpegAndWebpOutput) {
  json jpeg = post_json("/v1/images/generations", generation({{"seed", 1}, {"output_format", "jpeg"}}));
  auto jb = b64(jpeg["data"][0]["b64_json"]);
  EXPECT_EQ(detect_image_format(jb.data(), jb.size()), ImageFormat::Jpeg);
  EXPECT_EQ(decode(jb).width, 64);
  EXPECT_EQ(jpeg["output_format"], "jpeg");
  json webp = post_json("/v1/images/generations", generation({{"seed", 1}, {"output_format", "webp"}}));
  auto wb = b64(webp["data"][0]["b64_json"]);
  EXPECT_EQ(detect_image_format(wb.data(), wb.size()), ImageFormat::Webp);
  EXPECT_EQ(decode(wb).height, 64);
}

TEST(ServerImages, GenerationErrorsUseTheOpenAiShape) {
  expect_error(post_json("/v1/images/generations", generation({{"n", "two"}}), 400), "n");
  expect_error(post_json("/v1/images/generations", generation({{"n", 5}}), 400), "n");  // server limit 4
  expect_error(post_json("/v1/images/generations", generation({{"size", "100x100"}}), 400), "size");
  expect_error(post_json("/v1/images/generations", generation({{"steps", 500}}), 400), "steps");
  expect_error(post_json("/v1/images/generations", generation({{"output_format", "gif"}}), 400), "output_format");
  expect_error(post_json("/v1/images/generations", {{"size", "64x64"}}, 400), "prompt");
  expect_error(post_json("/v1/images/generations", generation({{"model", "no-such-model"}}), 404), "model");
  // OpenAI's own model names use the default model.
  json r = post_json("/v1/images/generations", generation({{"model", "dall-e-3"}, {"seed", 1}}));
  EXPECT_EQ(r["data"].size(), 1u);
  auto res = client().Post("/v1/images/generations", "{not json", "application/json");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 400);
  EXPECT_TRUE(json::parse(res->body).contains("error"));
}

TEST(ServerImages, EditWithMask) {
  Image mask = gradient(64, 64, 4);
  for (int y = 0; y < 64; ++y)
    for (int x = 0; x < 32; ++x) mask.at(x, y)[3] = 0;  // repaint the left half
  json r = post_form("/v1/images/edits", {{"image", png_text(gradient(64, 64, 3)), "in.png", "image/png"},
                                          {"mask", png_text(mask), "mask.png", "image/png"},
                                          {"prompt", "a blue sphere", "", ""},
                                          {"steps", "2", "", ""},
                                          {"seed", "5", "", ""},
                                          {"n", "1", "", ""}});
  ASSERT_EQ(r["data"].size(), 1u) << r.dump().substr(0, 300);
  Image out = decode(b64(r["data"][0]["b64_json"]));
  EXPECT_EQ(out.width, 64);
  EXPECT_EQ(out.height, 64);
  // Opaque mask pixels are kept exactly; transparent ones are repainted.
  const Image in = gradient(64, 64, 3);
  int kept_differences = 0, repainted_differences = 0;
  for (int y = 0; y < 64; ++y)
    for (int x = 0; x < 64; ++x)
      for (int ch = 0; ch < 3; ++ch)
        (x < 32 ? repainted_differences : kept_differences) += out.at(x, y)[ch] != in.at(x, y)[ch];
  EXPECT_EQ(kept_differences, 0);
  EXPECT_GT(repainted_differences, 32 * 64);
  EXPECT_NE(parameters_text(b64(r["data"][0]["b64_json"])).find("Denoising strength: 1"), std::string::npos);

  // A mask of another size, a mask without alpha, no image, an undecodable image: 400 naming the field.
  expect_error(post_form("/v1/images/edits",
                         {{"image", png_text(gradient(64, 64, 3)), "in.png", "image/png"},
                          {"mask", png_text(gradient(64, 48, 4)), "m.png", "image/png"},
                          {"prompt", "x", "", ""}},
                         400),
               "mask");
  expect_error(post_form("/v1/images/edits",
                         {{"image", png_text(gradient(64, 64, 3)), "in.png", "image/png"},
                          {"mask", png_text(gradient(64, 64, 3)), "m.png", "image/png"},
                          {"prompt", "x", "", ""}},
                         400),
               "mask");
  expect_error(post_form("/v1/images/edits", {{"prompt", "x", "", ""}}, 400), "image");
  expect_error(
      post_form("/v1/images/edits", {{"image", "not an image", "in.png", "image/png"}, {"prompt", "x", "", ""}}, 400),
      "image");
  expect_error(post_form("/v1/images/edits",
                         {{"image", png_text(gradient(64, 64, 3)), "in.png", "image/png"},
                          {"prompt", "x", "", ""},
                          {"n", "two", "", ""}},
                         400),
               "n");
}

TEST(ServerImages, EditWithoutMaskAndVariation) {
  json edit = post_form("/v1/images/edits", {{"image[]", png_text(gradient(64, 64, 3)), "a.png", "image/png"},
                                             {"prompt", "snow", "", ""},
                                             {"steps", "2", "", ""},
                                             {"response_format", "url", "", ""}});
  ASSERT_EQ(edit["data"].size(), 1u) << edit.dump();
  EXPECT_TRUE(edit["data"][0].contains("url"));

  json v = post_form("/v1/images/variations", {{"image", png_text(gradient(64, 64, 3)), "a.png", "image/png"},
                                               {"n", "2", "", ""},
                                               {"steps", "2", "", ""},
                                               {"seed", "11", "", ""}});
  ASSERT_EQ(v["data"].size(), 2u) << v.dump().substr(0, 300);
  auto png = b64(v["data"][1]["b64_json"]);
  EXPECT_EQ(decode(png).width, 64);
  EXPECT_EQ(v["data"][1]["seed"], 12);
  EXPECT_NE(parameters_text(png).find("Denoising strength: 0.6"), std::string::npos) << parameters_text(png);
  expect_error(post_form("/v1/images/variations", {{"n", "1", "", ""}}, 400), "image");
}

TEST(ServerImages, A1111Txt2ImgImg2ImgAndDiscovery) {
  auto c = client();
  auto samplers = c.Get("/sdapi/v1/samplers");
  ASSERT_TRUE(samplers);
  ASSERT_EQ(samplers->status, 200);
  EXPECT_NE(samplers->body.find("\"Euler a\""), std::string::npos);
  auto models = c.Get("/sdapi/v1/sd-models");
  ASSERT_TRUE(models);
  json m = json::parse(models->body);
  ASSERT_EQ(m.size(), 1u);
  EXPECT_EQ(m[0]["title"], "tiny-sd");

  json t = post_json("/sdapi/v1/txt2img", {{"prompt", "a cat"},
                                           {"steps", 2},
                                           {"width", 64},
                                           {"height", 64},
                                           {"seed", 5},
                                           {"batch_size", 2},
                                           {"cfg_scale", 7},
                                           {"sampler_name", "Euler a"},
                                           {"override_settings", {{"sd_model_checkpoint", "tiny-sd"}}}});
  ASSERT_EQ(t["images"].size(), 2u) << t.dump().substr(0, 300);
  EXPECT_EQ(decode(b64(t["images"][0])).width, 64);
  EXPECT_EQ(t["parameters"]["prompt"], "a cat");
  json info = json::parse(t["info"].get<std::string>());
  EXPECT_EQ(info["all_seeds"], json::array({5, 6}));
  EXPECT_EQ(info["sampler_name"], "Euler a");
  EXPECT_NE(info["infotexts"][0].get<std::string>().find("Sampler: Euler a"), std::string::npos);

  json i = post_json("/sdapi/v1/img2img",
                     {{"prompt", "a dog"},
                      {"steps", 2},
                      {"seed", 9},
                      {"denoising_strength", 0.5},
                      {"init_images", {"data:image/png;base64," + base64_encode(encode_png(gradient(64, 64, 3)))}}});
  ASSERT_EQ(i["images"].size(), 1u) << i.dump().substr(0, 300);
  EXPECT_EQ(decode(b64(i["images"][0])).width, 64);
  EXPECT_TRUE(i["parameters"]["init_images"].is_null());
  EXPECT_EQ(json::parse(i["info"].get<std::string>())["denoising_strength"], 0.5);

  // Idle progress after the jobs ended.
  auto progress = c.Get("/sdapi/v1/progress");
  ASSERT_TRUE(progress);
  json p = json::parse(progress->body);
  EXPECT_EQ(p["state"]["job_count"], 0);
  EXPECT_EQ(p["progress"], 0.0);
  EXPECT_TRUE(p["current_image"].is_null());

  expect_error(post_json("/sdapi/v1/txt2img", {{"width", 65}}, 400), "width");
  expect_error(post_json("/sdapi/v1/txt2img", {{"sampler_name", "Heun"}}, 400), "sampler_name");
  expect_error(post_json("/sdapi/v1/img2img", {{"prompt", "x"}}, 400), "init_images");
}

TEST(ServerImages, A1111ProgressWhileRunning) {
  // A longer job in the background; progress reports it (or, on a very fast machine, its end).
  std::thread t([] {
    post_json("/sdapi/v1/txt2img", {{"prompt", "slow"}, {"steps", 40}, {"width", 64}, {"height", 64}, {"seed", 1}});
  });
  bool saw_running = false;
  for (int k = 0; k < 400 && !saw_running; ++k) {
    auto res = client().Get("/sdapi/v1/progress?skip_current_image=true");
    ASSERT_TRUE(res);
    json p = json::parse(res->body);
    ASSERT_TRUE(p.contains("state"));
    if (p["state"]["job_count"] == 1) {
      saw_running = true;
      EXPECT_GE(p["progress"].get<double>(), 0.0);
      EXPECT_LE(p["progress"].get<double>(), 1.0);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  t.join();
  EXPECT_TRUE(saw_running);
  auto interrupt = client().Post("/sdapi/v1/interrupt", "", "application/json");
  ASSERT_TRUE(interrupt);
  EXPECT_EQ(interrupt->status, 200);
}

TEST(ServerImages, JobTypes) {
  auto c = client();
  // POST /v1/jobs answers 202 with the job; this waits for its end.
  auto wait_for = [&](const json& request) {
    json submitted = post_json("/v1/jobs", request, 202);
    std::string id = submitted.value("id", "");
    EXPECT_FALSE(id.empty()) << submitted.dump();
    json job;
    for (int k = 0; k < 600; ++k) {
      auto res = c.Get(("/v1/jobs/" + id).c_str());
      if (!res) break;
      job = json::parse(res->body);
      std::string state = job.value("state", "");
      if (state == "succeeded" || state == "failed" || state == "cancelled") break;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    EXPECT_EQ(job.value("state", ""), "succeeded") << job.dump().substr(0, 500);
    return job;
  };

  json gen =
      wait_for({{"type", "images.generations"}, {"request", generation({{"seed", 7}, {"response_format", "url"}})}});
  std::string url = gen["response"]["data"][0]["url"];
  EXPECT_EQ(url.rfind("/v1/files/images/img_", 0), 0u) << url;

  std::string image = "data:image/png;base64," + base64_encode(encode_png(gradient(64, 64, 3)));
  json edit = wait_for({{"type", "images.edits"}, {"request", {{"prompt", "x"}, {"image", image}, {"steps", 2}}}});
  EXPECT_EQ(decode(b64(edit["response"]["data"][0]["b64_json"])).width, 64);

  json var = wait_for({{"type", "images.variations"}, {"request", {{"image", image}, {"steps", 2}}}});
  EXPECT_EQ(var["response"]["data"].size(), 1u);

  json a1111 = wait_for(
      {{"type", "sdapi.txt2img"}, {"request", {{"prompt", "x"}, {"steps", 2}, {"width", 64}, {"height", 64}}}});
  EXPECT_EQ(a1111["response"]["images"].size(), 1u);
  json img2img =
      wait_for({{"type", "sdapi.img2img"}, {"request", {{"prompt", "x"}, {"steps", 2}, {"init_images", {image}}}}});
  EXPECT_EQ(img2img["response"]["images"].size(), 1u);

  // A bad request is refused when submitted, with the field named.
  auto bad = c.Post("/v1/jobs", json{{"type", "images.generations"}, {"request", {{"prompt", "x"}, {"n", 0}}}}.dump(),
                    "application/json");
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->status, 400);
  expect_error(json::parse(bad->body), "n");
}
