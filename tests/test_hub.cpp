// `pictor pull` against a mock Hugging Face hub on 127.0.0.1 (never the real hub): listing, file selection,
// redirects, resume with Range, checksum verification, HTTP errors, unreachable and stalled servers.
#include <gtest/gtest.h>
#include <httplib.h>

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>

#include "hub/file_filter.hpp"
#include "hub/hub_client.hpp"
#include "hub/progress_bar.hpp"
#include "hub/pull.hpp"
#include "hub/sha256.hpp"
#include "support.hpp"

namespace fs = std::filesystem;
using json = nlohmann::json;
using namespace pictor::hub;

namespace {

// Tests must only ever talk to loopback: no proxy, no token or endpoint from the developer's shell.
const bool kCleanEnvironment = [] {
  for (const char* v :
       {"http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "all_proxy", "HF_TOKEN", "HF_ENDPOINT"})
    ::unsetenv(v);
  return true;
}();

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void write_file(const fs::path& p, const std::string& data) {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << data;
}

std::string random_bytes(size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(rng() & 0xff);
  return s;
}

// ---------------------------------------------------------------------------------------------------------
// The mock hub: one repository "acme/tiny-sd" (plus "acme/gated", needing token "good-token"), served like
// huggingface.co: the listing API, /resolve/ redirecting LFS files to a "CDN" path with X-Linked-Etag.
class MockHub {
 public:
  struct File {
    std::string content;
    bool lfs = false;
  };
  std::map<std::string, File> files;
  const std::string commit = "4f3c2b1a09e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4";
  const std::string weights = "unet/diffusion_pytorch_model.safetensors";

  // Behaviour switches.
  std::atomic<long> drop_first_download_at{-1};  // the first weights download closes after this many bytes
  std::atomic<bool> ignore_range{false};         // answer Range requests with the whole file (200)
  std::atomic<bool> corrupt_weights{false};      // serve other bytes than the listed sha256
  std::atomic<bool> lfs_in_listing{true};        // false: the listing omits lfs.sha256 (ETag only)
  std::atomic<bool> stall_weights{false};        // send 1 KiB of the weights, then nothing
  std::atomic<bool> stall_listing{false};        // the listing API never answers
  std::atomic<bool> listing_503{false};
  std::atomic<bool> unsafe_listing{false};

  // Observations.
  std::mutex mu;
  std::vector<std::string> ranges;         // Range headers of weights downloads ("" when none)
  std::vector<std::string> resolved;       // paths requested through /resolve/ (with revision)
  std::vector<std::string> authorization;  // Authorization headers of listing requests
  bool listing_asked_blobs = false;

  MockHub() {
    files["model_index.json"] = {
        R"({"_class_name": "StableDiffusionPipeline", "unet": ["diffusers", "UNet2DConditionModel"]})", false};
    files["unet/config.json"] = {R"({"in_channels": 4, "sample_size": 8})", false};
    files[weights] = {random_bytes(6000, 1), true};
    files["unet/diffusion_pytorch_model.bin"] = {random_bytes(3000, 2), true};
    files["unet/diffusion_pytorch_model.fp16.safetensors"] = {random_bytes(3000, 3), true};
    files["tokenizer/vocab.json"] = {R"({"a": 0})", false};
    files["README.md"] = {"# tiny", false};

    server_.Get(R"(/api/models/([^/]+/[^/]+)/revision/([^/]+))",
                [this](const httplib::Request& q, httplib::Response& r) { listing(q, r); });
    server_.Get(R"(/([^/]+/[^/]+)/resolve/([^/]+)/(.+))",
                [this](const httplib::Request& q, httplib::Response& r) { resolve(q, r); });
    server_.Get(R"(/cdn/(.+))", [this](const httplib::Request& q, httplib::Response& r) { cdn(q, r); });
    port_ = server_.bind_to_any_port("127.0.0.1");  // already listening: clients queue until accept
    thread_ = std::thread([this] { server_.listen_after_bind(); });
  }
  ~MockHub() {
    stopping_ = true;  // releases stalled handlers
    server_.stop();
    thread_.join();
  }
  std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(port_); }
  int weights_downloads() {
    std::lock_guard<std::mutex> lock(mu);
    return static_cast<int>(ranges.size());
  }

 private:
  static bool known_repo(const std::string& repo) { return repo == "acme/tiny-sd" || repo == "acme/gated"; }
  bool authorized(const httplib::Request& q, const std::string& repo) {
    return repo != "acme/gated" || q.get_header_value("Authorization") == "Bearer good-token";
  }
  bool known_revision(const std::string& rev) { return rev == "main" || rev == commit; }

  void listing(const httplib::Request& q, httplib::Response& r) {
    std::string repo = q.matches[1], rev = q.matches[2];
    {
      std::lock_guard<std::mutex> lock(mu);
      authorization.push_back(q.get_header_value("Authorization"));
      listing_asked_blobs = q.get_param_value("blobs") == "true";
    }
    if (stall_listing) {
      for (int i = 0; i < 400 && !stopping_; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
      return error(r, 500, "", "gave up");
    }
    if (listing_503) return error(r, 503, "", "Service Unavailable");
    if (!known_repo(repo)) return error(r, 404, "RepoNotFound", "Repository not found");
    if (!authorized(q, repo)) return error(r, 401, "GatedRepo", "Access to model " + repo + " is restricted.");
    if (!known_revision(rev)) return error(r, 404, "RevisionNotFound", "Invalid rev id: " + rev);
    json siblings = json::array();
    for (const auto& [path, f] : files) {
      json s = {{"rfilename", path}, {"size", f.content.size()}, {"blobId", std::string(40, 'b')}};
      if (f.lfs && lfs_in_listing)
        s["lfs"] = {{"sha256", sha256_hex(f.content)}, {"size", f.content.size()}, {"pointerSize", 134}};
      siblings.push_back(s);
    }
    if (unsafe_listing) siblings.push_back({{"rfilename", "../escape.json"}, {"size", 2}});
    json body = {{"id", repo}, {"sha", commit}, {"siblings", siblings}};
    r.set_content(body.dump(), "application/json");
  }

  void resolve(const httplib::Request& q, httplib::Response& r) {
    std::string repo = q.matches[1], rev = q.matches[2], path = q.matches[3];
    {
      std::lock_guard<std::mutex> lock(mu);
      resolved.push_back(rev + ":" + path);
    }
    if (!known_repo(repo)) return error(r, 404, "RepoNotFound", "Repository not found");
    if (!authorized(q, repo)) return error(r, 401, "GatedRepo", "restricted");
    if (!known_revision(rev)) return error(r, 404, "RevisionNotFound", "bad revision");
    auto it = files.find(path);
    if (it == files.end()) return error(r, 404, "EntryNotFound", "Entry not found");
    if (it->second.lfs) {  // like the hub: the sha256 travels on the redirect, the bytes come from a CDN
      r.set_header("X-Linked-Etag", "\"" + sha256_hex(it->second.content) + "\"");
      r.set_header("X-Linked-Size", std::to_string(it->second.content.size()));
      r.set_redirect("/cdn/" + path, 302);
      return;
    }
    r.set_header("ETag", "\"" + std::string(40, 'e') + "\"");  // a git blob id, not a sha256
    r.set_content(it->second.content, "application/octet-stream");
  }

  void cdn(const httplib::Request& q, httplib::Response& r) {
    std::string path = q.matches[1];
    auto it = files.find(path);
    if (it == files.end()) return error(r, 404, "", "no such blob");
    auto content = std::make_shared<std::string>(it->second.content);
    if (path != weights) return r.set_content(*content, "application/octet-stream");

    bool first;
    {
      std::lock_guard<std::mutex> lock(mu);
      first = ranges.empty();
      ranges.push_back(q.get_header_value("Range"));
    }
    if (corrupt_weights) (*content)[100] ^= 0x5a;
    // httplib applies Range itself; a server that ignores Range is emulated by forgetting the request's
    // ranges (the Request object is the server's own, mutable one).
    if (ignore_range) const_cast<httplib::Request&>(q).ranges.clear();
    long drop_at = first ? drop_first_download_at.load() : -1;
    bool stall = stall_weights;
    r.set_content_provider(content->size(), "application/octet-stream",
                           [this, content, drop_at, stall](size_t offset, size_t length, httplib::DataSink& sink) {
                             if (drop_at >= 0 && offset >= static_cast<size_t>(drop_at))
                               return false;  // connection dropped
                             if (stall && offset >= 1024) {
                               for (int i = 0; i < 400 && !stopping_; ++i)
                                 std::this_thread::sleep_for(std::chrono::milliseconds(50));
                               return false;
                             }
                             size_t n = std::min<size_t>(length, 1024);
                             if (drop_at >= 0) n = std::min<size_t>(n, static_cast<size_t>(drop_at) - offset);
                             sink.write(content->data() + offset, n);
                             return true;
                           });
  }

  static void error(httplib::Response& r, int status, const std::string& code, const std::string& message) {
    r.status = status;
    if (!code.empty()) r.set_header("X-Error-Code", code);
    r.set_header("X-Error-Message", message);
    r.set_content(json{{"error", message}}.dump(), "application/json");
  }

  httplib::Server server_;
  int port_ = 0;
  std::thread thread_;
  std::atomic<bool> stopping_{false};
};

PullOptions options_for(const MockHub& hub, const fs::path& models) {
  PullOptions o;
  o.endpoint = hub.endpoint();
  o.models_dir = models.string();
  o.token = "";
  o.quiet = true;
  o.retry_delay_s = 0.01;
  o.connect_timeout_s = 5;
  o.stall_timeout_s = 5;
  return o;
}

std::string pull_error(const std::string& repo, const PullOptions& o) {
  try {
    pull(repo, o);
  } catch (const pictor::Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "pull of " << repo << " did not fail";
  return {};
}

// A loopback port with nothing listening: bind an ephemeral port, then close it.
int closed_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

}  // namespace

// ---------------------------------------------------------------------------------------------------------
TEST(Sha256, StandardVectors) {
  EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  EXPECT_EQ(
      sha256_hex("abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrs"
                 "mnopqrstnopqrstu"),
      "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1");
  EXPECT_EQ(sha256_hex(std::string(1000000, 'a')), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(Sha256, IncrementalUpdatesMatchOneShot) {
  std::string data = random_bytes(1000, 7);
  for (size_t split : {0, 1, 55, 56, 63, 64, 65, 500, 999}) {
    Sha256 h;
    h.update(data.substr(0, split));
    h.update(data.substr(split));
    EXPECT_EQ(h.hex_digest(), sha256_hex(data)) << "split at " << split;
  }
  fs::path f = pictor::test::temp_dir("sha") / "f.bin";
  write_file(f, data);
  EXPECT_EQ(sha256_file(f), sha256_hex(data));
  EXPECT_TRUE(is_sha256_hex(sha256_hex(data)));
  EXPECT_FALSE(is_sha256_hex(std::string(40, 'a')));
}

TEST(FileFilter, DefaultRuleKeepsWhatPictorLoads) {
  std::vector<std::string> repo = {
      ".gitattributes",
      "README.md",
      "model_index.json",
      "v1-5-pruned-emaonly.safetensors",  // root single-file checkpoint of a diffusers repo
      "v1-5-pruned.ckpt",
      "unet/config.json",
      "unet/diffusion_pytorch_model.safetensors",
      "unet/diffusion_pytorch_model.fp16.safetensors",
      "unet/diffusion_pytorch_model.non_ema.safetensors",
      "unet/diffusion_pytorch_model.bin",
      "unet/diffusion_flax_model.msgpack",
      "text_encoder/model.safetensors.index.json",
      "text_encoder/model-00001-of-00002.safetensors",
      "text_encoder/model-00002-of-00002.safetensors",
      "text_encoder/model.fp16-00001-of-00001.safetensors",
      "text_encoder/model.fp16.safetensors.index.json",
      "text_encoder/pytorch_model.bin",
      "tokenizer/merges.txt",
      "tokenizer/vocab.json",
      "tokenizer/spiece.model",
      "safety_checker/model.fp16.safetensors",  // variant only: kept
      "vae/diffusion_pytorch_model.safetensors",
      "vae_decoder/model.onnx",
      "tf_model.h5",
  };
  std::vector<std::string> expect = {
      "model_index.json",
      "unet/config.json",
      "unet/diffusion_pytorch_model.safetensors",
      "text_encoder/model.safetensors.index.json",
      "text_encoder/model-00001-of-00002.safetensors",
      "text_encoder/model-00002-of-00002.safetensors",
      "tokenizer/merges.txt",
      "tokenizer/vocab.json",
      "tokenizer/spiece.model",
      "safety_checker/model.fp16.safetensors",
      "vae/diffusion_pytorch_model.safetensors",
  };
  EXPECT_EQ(select_files(repo, {}), expect);

  // Outside a diffusers repo, root weights are the model itself.
  EXPECT_EQ(select_files({"config.json", "model.safetensors", "pytorch_model.bin"}, {}),
            (std::vector<std::string>{"config.json", "model.safetensors"}));
}

TEST(FileFilter, IncludeReplacesDefaultExcludeRemoves) {
  std::vector<std::string> repo = {"model_index.json", "unet/config.json", "unet/diffusion_pytorch_model.bin",
                                   "unet/diffusion_pytorch_model.safetensors", "vae/config.json"};
  EXPECT_EQ(select_files(repo, {{"unet/*"}, {}}),
            (std::vector<std::string>{"unet/config.json", "unet/diffusion_pytorch_model.bin",
                                      "unet/diffusion_pytorch_model.safetensors"}));
  EXPECT_EQ(select_files(repo, {{"unet/*"}, {"*.bin"}}),
            (std::vector<std::string>{"unet/config.json", "unet/diffusion_pytorch_model.safetensors"}));
  EXPECT_EQ(select_files(repo, {{}, {"vae/*", "model_index.json"}}),
            (std::vector<std::string>{"unet/config.json", "unet/diffusion_pytorch_model.safetensors"}));
  EXPECT_TRUE(glob_match("*.json", "unet/config.json"));  // '*' crosses folders, like huggingface-cli
  EXPECT_FALSE(glob_match("unet/*", "vae/config.json"));
}

TEST(Progress, FormatsBytesRateAndEta) {
  EXPECT_EQ(format_bytes(512), "512 B");
  EXPECT_EQ(format_bytes(1536), "1.50 KiB");
  EXPECT_EQ(format_bytes(uint64_t(3) << 30), "3.00 GiB");
  EXPECT_EQ(format_duration(45), "45s");
  EXPECT_EQ(format_duration(187), "3m07s");
  EXPECT_EQ(format_duration(3720), "1h02m");
  ProgressBar bar("unet.safetensors", uint64_t(4) << 20, uint64_t(1) << 20, ProgressBar::Mode::Silent);
  // 1 MiB already there, 1 more MiB in 2 s: 50%, 512 KiB/s, 2 MiB left -> 4 s.
  std::string line = bar.render(uint64_t(2) << 20, 2.0);
  EXPECT_NE(line.find("unet.safetensors"), std::string::npos) << line;
  EXPECT_NE(line.find("50%"), std::string::npos) << line;
  EXPECT_NE(line.find("2.00 MiB / 4.00 MiB"), std::string::npos) << line;
  EXPECT_NE(line.find("512 KiB/s"), std::string::npos) << line;
  EXPECT_NE(line.find("ETA 4s"), std::string::npos) << line;
}

TEST(RepoId, ValidatesOwnerAndName) {
  EXPECT_NO_THROW(validate_repo_id("stabilityai/sd-turbo"));
  EXPECT_NO_THROW(validate_repo_id("gpt2"));
  for (std::string bad : {"", "a/b/c", "../x", "a/..", "owner/", "/name", "a b/c", "a/b?x", "a/.hidden"})
    EXPECT_THROW(validate_repo_id(bad), pictor::Error) << bad;
  EXPECT_EQ(local_dir("acme/tiny", "/m"), fs::path("/m/acme/tiny"));
}

// ---------------------------------------------------------------------------------------------------------
TEST(Pull, DownloadsSelectedFilesVerifiedWithMarker) {
  MockHub hub;
  fs::path models = pictor::test::temp_dir("pull");
  EXPECT_FALSE(find_local("acme/tiny-sd", models.string()));
  fs::path dir = pull("acme/tiny-sd", options_for(hub, models));
  EXPECT_EQ(dir, models / "acme" / "tiny-sd");
  for (const char* p :
       {"model_index.json", "unet/config.json", "unet/diffusion_pytorch_model.safetensors", "tokenizer/vocab.json"})
    EXPECT_EQ(read_file(dir / p), hub.files[p].content) << p;
  // Skipped: other weight formats, the fp16 variant next to fp32 weights, docs.
  EXPECT_FALSE(fs::exists(dir / "unet/diffusion_pytorch_model.bin"));
  EXPECT_FALSE(fs::exists(dir / "unet/diffusion_pytorch_model.fp16.safetensors"));
  EXPECT_FALSE(fs::exists(dir / "README.md"));
  EXPECT_FALSE(fs::exists(dir / "unet/diffusion_pytorch_model.safetensors.part"));

  json marker = json::parse(read_file(dir / kCompleteMarker));
  EXPECT_EQ(marker["sha"], hub.commit);
  EXPECT_EQ(marker["repo_id"], "acme/tiny-sd");
  EXPECT_EQ(marker["files"].size(), 4u);
  EXPECT_EQ(find_local("acme/tiny-sd", models.string()), dir);
  {
    std::lock_guard<std::mutex> lock(hub.mu);
    EXPECT_TRUE(hub.listing_asked_blobs);
    EXPECT_EQ(hub.resolved.size(), 4u);
    for (const auto& r : hub.resolved) EXPECT_EQ(r.rfind(hub.commit + ":", 0), 0u) << "fetched at the commit: " << r;
    EXPECT_EQ(hub.ranges, std::vector<std::string>{""});
  }

  // Pulling again: up to date, nothing downloaded.
  pull("acme/tiny-sd", options_for(hub, models));
  std::lock_guard<std::mutex> lock(hub.mu);
  EXPECT_EQ(hub.resolved.size(), 4u);
}

TEST(Pull, UpdateKeepsVerifiedWeightsAndFindLocalNeedsMarker) {
  MockHub hub;
  fs::path models = pictor::test::temp_dir("update");
  fs::path dir = pull("acme/tiny-sd", options_for(hub, models));
  fs::remove(dir / kCompleteMarker);
  EXPECT_FALSE(find_local("acme/tiny-sd", models.string()));  // an unfinished folder is never used
  pull("acme/tiny-sd", options_for(hub, models));
  EXPECT_EQ(hub.weights_downloads(), 1) << "weights whose sha256 matches are not downloaded again";
  EXPECT_TRUE(find_local("acme/tiny-sd", models.string()));
}

TEST(Pull, IncludeAndExcludeGlobs) {
  MockHub hub;
  fs::path models = pictor::test::temp_dir("globs");
  PullOptions o = options_for(hub, models);
  o.include = {"unet/*"};
  o.exclude = {"*.fp16.*"};
  fs::path dir = pull("acme/tiny-sd", o);
  EXPECT_TRUE(fs::exists(dir / "unet/diffusion_pytorch_model.bin"));
  EXPECT_TRUE(fs::exists(dir / "unet/diffusion_pytorch_model.safetensors"));
  EXPECT_FALSE(fs::exists(dir / "unet/diffusion_pytorch_model.fp16.safetensors"));
  EXPECT_FALSE(fs::exists(dir / "model_index.json"));

  o.include = {"*.onnx"};
  EXPECT_NE(pull_error("acme/tiny-sd", o).find("no file of 'acme/tiny-sd'"), std::string::npos);
}

TEST(Pull, ResumesAfterDroppedConnection) {
  MockHub hub;
  hub.drop_first_download_at = 2048;
  fs::path models = pictor::test::temp_dir("drop");
  PullOptions o = options_for(hub, models);
  o.max_retries = 2;
  fs::path dir = pull("acme/tiny-sd", o);
  EXPECT_EQ(read_file(dir / hub.weights), hub.files[hub.weights].content);
  std::lock_guard<std::mutex> lock(hub.mu);
  ASSERT_EQ(hub.ranges.size(), 2u);
  EXPECT_EQ(hub.ranges[0], "");
  EXPECT_EQ(hub.ranges[1], "bytes=2048-") << "the second attempt resumes where the connection dropped";
}

TEST(Pull, DroppedConnectionWithoutRetriesFailsThenResumes) {
  MockHub hub;
  hub.drop_first_download_at = 3072;
  fs::path models = pictor::test::temp_dir("drop0");
  PullOptions o = options_for(hub, models);
  o.max_retries = 0;
  std::string err = pull_error("acme/tiny-sd", o);
  EXPECT_NE(err.find("dropped"), std::string::npos) << err;
  fs::path dir = models / "acme/tiny-sd";
  EXPECT_EQ(fs::file_size(dir / (hub.weights + ".part")), 3072u);
  EXPECT_FALSE(fs::exists(dir / kCompleteMarker));
  pull("acme/tiny-sd", o);
  EXPECT_EQ(read_file(dir / hub.weights), hub.files[hub.weights].content);
  std::lock_guard<std::mutex> lock(hub.mu);
  EXPECT_EQ(hub.ranges.back(), "bytes=3072-");
}

TEST(Pull, ResumesExistingPartFile) {
  MockHub hub;
  fs::path models = pictor::test::temp_dir("part");
  fs::path dir = models / "acme/tiny-sd";
  write_file(dir / (hub.weights + ".part"), hub.files[hub.weights].content.substr(0, 1000));
  pull("acme/tiny-sd", options_for(hub, models));
  EXPECT_EQ(read_file(dir / hub.weights), hub.files[hub.weights].content);
  EXPECT_FALSE(fs::exists(dir / (hub.weights + ".part")));
  std::lock_guard<std::mutex> lock(hub.mu);
  EXPECT_EQ(hub.ranges, std::vector<std::string>{"bytes=1000-"});
}

TEST(Pull, ServerIgnoringRangeRestartsFromZero) {
  MockHub hub;
  hub.ignore_range = true;
  fs::path models = pictor::test::temp_dir("norange");
  fs::path dir = models / "acme/tiny-sd";
  write_file(dir / (hub.weights + ".part"), std::string(1000, 'Z'));  // not even a real prefix
  pull("acme/tiny-sd", options_for(hub, models));
  EXPECT_EQ(read_file(dir / hub.weights), hub.files[hub.weights].content);
  std::lock_guard<std::mutex> lock(hub.mu);
  EXPECT_EQ(hub.ranges, std::vector<std::string>{"bytes=1000-"});  // asked, got 200, rewrote the file
}

TEST(Pull, ChecksumMismatchDeletesPartAndLeavesNoMarker) {
  MockHub hub;
  hub.corrupt_weights = true;
  fs::path models = pictor::test::temp_dir("corrupt");
  std::string err = pull_error("acme/tiny-sd", options_for(hub, models));
  EXPECT_NE(err.find("checksum mismatch"), std::string::npos) << err;
  EXPECT_NE(err.find(hub.weights), std::string::npos) << err;
  fs::path dir = models / "acme/tiny-sd";
  EXPECT_FALSE(fs::exists(dir / hub.weights));
  EXPECT_FALSE(fs::exists(dir / (hub.weights + ".part")));
  EXPECT_FALSE(fs::exists(dir / kCompleteMarker));
  EXPECT_FALSE(find_local("acme/tiny-sd", models.string()));
}

TEST(Pull, ChecksumFromEtagWhenListingHasNone) {
  MockHub hub;
  hub.lfs_in_listing = false;
  hub.corrupt_weights = true;
  fs::path models = pictor::test::temp_dir("etag");
  std::string err = pull_error("acme/tiny-sd", options_for(hub, models));
  EXPECT_NE(err.find("checksum mismatch"), std::string::npos) << err;
  hub.corrupt_weights = false;
  fs::path dir = pull("acme/tiny-sd", options_for(hub, models));
  EXPECT_EQ(read_file(dir / hub.weights), hub.files[hub.weights].content);
}

TEST(Pull, UnknownRepoOrRevisionIsAClearError) {
  MockHub hub;
  fs::path models = pictor::test::temp_dir("404");
  std::string err = pull_error("acme/missing", options_for(hub, models));
  EXPECT_NE(err.find("repository 'acme/missing' not found"), std::string::npos) << err;
  EXPECT_NE(err.find("404"), std::string::npos) << err;
  PullOptions o = options_for(hub, models);
  o.revision = "v9";
  err = pull_error("acme/tiny-sd", o);
  EXPECT_NE(err.find("revision 'v9' not found"), std::string::npos) << err;
  EXPECT_FALSE(fs::exists(models / "acme/missing"));
}

TEST(Pull, GatedRepoNeedsToken) {
  MockHub hub;
  fs::path models = pictor::test::temp_dir("gated");
  PullOptions o = options_for(hub, models);
  std::string err = pull_error("acme/gated", o);
  EXPECT_NE(err.find("gated"), std::string::npos) << err;
  EXPECT_NE(err.find("HF_TOKEN"), std::string::npos) << err;
  o.token = "good-token";
  fs::path dir = pull("acme/gated", o);
  EXPECT_TRUE(find_local("acme/gated", models.string()));
  std::lock_guard<std::mutex> lock(hub.mu);
  EXPECT_EQ(hub.authorization.back(), "Bearer good-token");
}

TEST(Pull, ServerErrorIsReported) {
  MockHub hub;
  hub.listing_503 = true;
  std::string err = pull_error("acme/tiny-sd", options_for(hub, pictor::test::temp_dir("503")));
  EXPECT_NE(err.find("server error (HTTP 503)"), std::string::npos) << err;
}

TEST(Pull, UnsafePathInListingIsRefused) {
  MockHub hub;
  hub.unsafe_listing = true;
  fs::path models = pictor::test::temp_dir("unsafe");
  std::string err = pull_error("acme/tiny-sd", options_for(hub, models));
  EXPECT_NE(err.find("unsafe file path '../escape.json'"), std::string::npos) << err;
  EXPECT_FALSE(fs::exists(models / "acme/escape.json"));
}

TEST(Pull, UnreachableHubGivesOfflineMessage) {
  PullOptions o;
  o.endpoint = "http://127.0.0.1:" + std::to_string(closed_port());
  o.models_dir = pictor::test::temp_dir("offline").string();
  o.quiet = true;
  o.connect_timeout_s = 5;
  std::string err = pull_error("acme/tiny-sd", o);
  EXPECT_NE(err.find("cannot reach the Hugging Face hub at " + o.endpoint), std::string::npos) << err;
  EXPECT_NE(err.find("set HF_ENDPOINT, or pass --model DIR"), std::string::npos) << err;
}

TEST(Pull, StalledServerTimesOut) {
  MockHub hub;
  hub.stall_weights = true;
  fs::path models = pictor::test::temp_dir("stall");
  PullOptions o = options_for(hub, models);
  o.stall_timeout_s = 1;
  o.max_retries = 0;
  auto start = std::chrono::steady_clock::now();
  std::string err = pull_error("acme/tiny-sd", o);
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_NE(err.find("timed out"), std::string::npos) << err;
  EXPECT_LT(seconds, 8.0);
  EXPECT_FALSE(find_local("acme/tiny-sd", models.string()));
  // What arrived is kept for the next attempt.
  EXPECT_EQ(fs::file_size(models / "acme/tiny-sd" / (hub.weights + ".part")), 1024u);
}

TEST(Pull, SilentServerTimesOutBeforeAnswering) {
  MockHub hub;
  hub.stall_listing = true;
  PullOptions o = options_for(hub, pictor::test::temp_dir("silent"));
  o.stall_timeout_s = 1;
  auto start = std::chrono::steady_clock::now();
  std::string err = pull_error("acme/tiny-sd", o);
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_NE(err.find("timed out"), std::string::npos) << err;
  EXPECT_LT(seconds, 8.0);
}

TEST(PullCli, PullsFromHfEndpoint) {
  MockHub hub;
  fs::path models = pictor::test::temp_dir("cli");
  ::setenv("HF_ENDPOINT", hub.endpoint().c_str(), 1);
  std::string out;
  int rc = pictor::test::run_cli("pull acme/tiny-sd --models " + models.string(), &out);
  EXPECT_EQ(rc, 0) << out;
  fs::path dir = models / "acme/tiny-sd";
  EXPECT_NE(out.find(dir.string()), std::string::npos) << out;
  EXPECT_NE(out.find("unet/diffusion_pytorch_model.safetensors"), std::string::npos) << "final progress line: " << out;
  EXPECT_EQ(read_file(dir / hub.weights), hub.files[hub.weights].content);
  EXPECT_TRUE(find_local("acme/tiny-sd", models.string()));

  rc = pictor::test::run_cli(
      "pull --include 'unet/*' --include model_index.json --exclude '*.fp16.*' acme/tiny-sd --models " +
          (models / "g").string(),
      &out);
  EXPECT_EQ(rc, 0) << out;
  EXPECT_TRUE(fs::exists(models / "g/acme/tiny-sd/unet/diffusion_pytorch_model.bin"));
  EXPECT_TRUE(fs::exists(models / "g/acme/tiny-sd/model_index.json"));  // both --include globs count
  EXPECT_FALSE(fs::exists(models / "g/acme/tiny-sd/tokenizer/vocab.json"));
  EXPECT_FALSE(fs::exists(models / "g/acme/tiny-sd/unet/diffusion_pytorch_model.fp16.safetensors"));

  rc = pictor::test::run_cli("pull acme/nope --models " + models.string(), &out);
  EXPECT_EQ(rc, 1) << out;
  EXPECT_NE(out.find("pictor: error: repository 'acme/nope' not found"), std::string::npos) << out;

  ::setenv("HF_ENDPOINT", ("http://127.0.0.1:" + std::to_string(closed_port())).c_str(), 1);
  rc = pictor::test::run_cli("pull acme/tiny-sd --models " + models.string(), &out);
  EXPECT_EQ(rc, 1) << out;
  EXPECT_NE(out.find("cannot reach the Hugging Face hub"), std::string::npos) << out;
  ::unsetenv("HF_ENDPOINT");
}
