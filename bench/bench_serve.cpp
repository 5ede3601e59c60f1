// Load run of `pictor serve` on loopback against tiny models: requests/s and p50/p99 latency for queued
// tiny generations and chat descriptions, with more concurrent clients than workers (default 4×), and
// the proof that every request either finishes or is refused with 429/503 — none lost, none hanging.
//
//   build/bench/bench_serve [--workers 2] [--clients 8] [--requests 48] [--max-queue 64] [--steps 2]
// With the default queue every request is accepted (throughput and latency under 4x load); with
// --max-queue 2 most are refused at once with 503, which shows refusals are clean.
#include <httplib.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "bench_common.hpp"
#include "dev/make_tiny_sd.hpp"
#include "dev/make_tiny_vlm.hpp"
#include "formats/image.hpp"
#include "serve/base64.hpp"
#include "serve/server.hpp"

namespace fs = std::filesystem;
using nlohmann::json;
using pictor::bench::Clock;
using pictor::bench::seconds_since;

namespace {

struct Outcome {
  int status = 0;  // 0: no response at all (lost)
  double seconds = 0;
  bool valid = false;  // a 200 whose body holds what was asked (an image / a text)
};

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t k = std::min(v.size() - 1, size_t(p * double(v.size() - 1) + 0.5));
  return v[k];
}

void report(const char* name, const std::vector<Outcome>& outs, double wall) {
  std::map<int, int> by_status;
  std::vector<double> ok_lat;
  int valid = 0;
  for (auto& o : outs) {
    by_status[o.status]++;
    if (o.status == 200) ok_lat.push_back(o.seconds);
    valid += o.valid;
  }
  int ok = by_status[200], refused = by_status[429] + by_status[503], lost = int(outs.size()) - ok - refused;
  std::printf(
      "%-12s sent %3zu  ok %3d (valid %3d)  refused 429/503 %3d  lost/other %d  | %.2f ok req/s  p50 %.2f s  p99 %.2f "
      "s\n",
      name, outs.size(), ok, valid, refused, lost, double(ok) / wall, percentile(ok_lat, 0.5),
      percentile(ok_lat, 0.99));
  for (auto& [status, n] : by_status)
    if (status != 200 && status != 429 && status != 503) std::printf("             status %d: %d\n", status, n);
  std::printf("%-12s none lost: %s\n", name, lost == 0 && valid == ok ? "yes" : "NO");
}

template <class Request>
std::vector<Outcome> load(int port, int clients, int requests, Request make_request) {
  std::vector<Outcome> outs(static_cast<size_t>(requests));
  std::atomic<int> next{0};
  std::vector<std::thread> threads;
  for (int c = 0; c < clients; ++c)
    threads.emplace_back([&] {
      httplib::Client cli("127.0.0.1", port);
      cli.set_read_timeout(600, 0);
      for (int k; (k = next++) < requests;) {
        auto t = Clock::now();
        auto [path, body, check] = make_request(k);
        auto r = cli.Post(path, body, "application/json");
        Outcome& o = outs[size_t(k)];
        o.seconds = seconds_since(t);
        if (!r) continue;
        o.status = r->status;
        if (r->status == 200) o.valid = check(json::parse(r->body, nullptr, false));
      }
    });
  for (auto& t : threads) t.join();
  return outs;
}

}  // namespace

int main(int argc, char** argv) {
  int workers = 2, clients = 8, requests = 48, max_queue = 64, steps = 2;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    int v = std::atoi(argv[i + 1]);
    if (a == "--workers")
      workers = v;
    else if (a == "--clients")
      clients = v;
    else if (a == "--requests")
      requests = v;
    else if (a == "--max-queue")
      max_queue = v;
    else if (a == "--steps")
      steps = v;
    else {
      std::fprintf(stderr, "unknown flag %s\n", argv[i]);
      return 2;
    }
  }
  auto root = fs::temp_directory_path() / ("pictor-bench-serve-" + std::to_string(getpid()));
  fs::remove_all(root);
  pictor::dev::make_tiny_sd(root / "models" / "tiny-sd");
  pictor::dev::make_tiny_vlm(root / "models" / "tiny-vlm");

  pictor::serve::ServerOptions o;
  o.port = 0;
  o.models_dir = root / "models";
  o.data_dir = root / "data";
  o.workers = workers;
  o.max_queued = max_queue;
  pictor::serve::Server server(o);
  int port = server.bind();
  std::thread run([&] { server.run(); });
  while (!server.running()) std::this_thread::sleep_for(std::chrono::milliseconds(2));

  pictor::Image img(32, 32, 3);
  for (size_t i = 0; i < img.pixels.size(); ++i) img.pixels[i] = uint8_t(i * 7);
  std::string data_uri = "data:image/png;base64," + pictor::serve::base64_encode(pictor::encode_png(img));

  std::printf(
      "pictor serve load run: %d workers, %d concurrent clients (%.0fx), queue limit %d, %d requests each kind\n",
      workers, clients, double(clients) / workers, max_queue, requests);
  auto gen = [&](int k) {
    json body = {{"model", "tiny-sd"},
                 {"prompt", "bench " + std::to_string(k)},
                 {"size", "64x64"},
                 {"steps", steps},
                 {"seed", k}};
    return std::tuple{
        std::string("/v1/images/generations"), body.dump(), std::function<bool(const json&)>([](const json& j) {
          return j.is_object() && j.contains("data") && !j["data"].empty() && j["data"][0].contains("b64_json");
        })};
  };
  auto chat = [&](int k) {
    json body = {
        {"model", "tiny-vlm"},
        {"max_tokens", 8},
        {"seed", k},
        {"messages",
         json::array({{{"role", "user"},
                       {"content", json::array({{{"type", "text"}, {"text", "Describe."}},
                                                {{"type", "image_url"}, {"image_url", {{"url", data_uri}}}}})}}})}};
    return std::tuple{std::string("/v1/chat/completions"), body.dump(),
                      std::function<bool(const json&)>([](const json& j) {
                        return j.is_object() && j.contains("choices") && !j["choices"].empty();
                      })};
  };
  // Warm-up: load both models once so the run measures serving, not loading.
  load(port, 1, 1, gen);
  load(port, 1, 1, chat);

  auto t = Clock::now();
  auto g = load(port, clients, requests, gen);
  report("generations", g, seconds_since(t));
  t = Clock::now();
  auto c = load(port, clients, requests, chat);
  report("chat", c, seconds_since(t));
  t = Clock::now();
  // Both kinds at once: they run side by side (different models), each model one job at a time.
  std::vector<Outcome> g2, c2;
  std::thread a([&] { g2 = load(port, clients, requests / 2, gen); });
  std::thread b([&] { c2 = load(port, clients, requests / 2, chat); });
  a.join();
  b.join();
  double wall = seconds_since(t);
  report("mixed gen", g2, wall);
  report("mixed chat", c2, wall);

  server.stop();
  run.join();
  fs::remove_all(root);
  return 0;
}
