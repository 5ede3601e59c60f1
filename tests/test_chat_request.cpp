// /v1/chat/completions without a server: request parsing and validation (field paths in errors),
// response shapes, data: URIs, the SSRF address checks and the local-files folder confinement.
#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "formats/image.hpp"
#include "serve/api_error.hpp"
#include "serve/base64.hpp"
#include "serve/chat_request.hpp"
#include "serve/image_source.hpp"
#include "support.hpp"

using namespace pictor;
using namespace pictor::serve;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

std::string base64(const std::vector<uint8_t>& data) {
  return pictor::serve::base64_encode(data);
}

std::vector<uint8_t> small_png() {
  Image im(8, 6, 3);
  for (size_t k = 0; k < im.pixels.size(); ++k) im.pixels[k] = uint8_t(k * 7);
  return encode_png(im);
}

json image_part(const std::string& url) {
  return {{"type", "image_url"}, {"image_url", {{"url", url}}}};
}

json valid_body() {
  return {
      {"model", "tiny"},
      {"messages",
       {{{"role", "system"}, {"content", "Be brief."}},
        {{"role", "user"}, {"content", {{{"type", "text"}, {"text", "What is it?"}}, image_part("https://x/a.png")}}},
        {{"role", "assistant"}, {"content", "A square."}},
        {{"role", "user"}, {"content", "Colour?"}}}}};
}

// The ApiError of parsing `body`, or fails.
ApiError error_of(const json& body) {
  try {
    parse_chat_request(body);
  } catch (const ApiError& e) {
    return e;
  }
  ADD_FAILURE() << "no error for " << body.dump();
  return ApiError(0, "", "");
}

}  // namespace

TEST(ChatRequest, ParsesMessagesIntoDescribeParams) {
  json body = valid_body();
  body["max_completion_tokens"] = 40;
  body["temperature"] = 0.7;
  body["top_p"] = 0.9;
  body["seed"] = 5;
  body["stop"] = "END";
  body["user"] = "ann";
  body["n"] = 1;
  body["messages"][0]["role"] = "developer";
  ChatRequest r = parse_chat_request(body);
  EXPECT_EQ(r.model, "tiny");
  EXPECT_FALSE(r.stream);
  EXPECT_EQ(r.user, "ann");
  ASSERT_EQ(r.images.size(), 1u);
  EXPECT_EQ(r.images[0].url, "https://x/a.png");
  EXPECT_EQ(r.images[0].detail, "auto");
  EXPECT_EQ(r.images[0].param, "messages[1].content[1].image_url");

  attach_image_ids(r, {"img_0123"});
  const json& m = r.params["messages"];
  ASSERT_EQ(m.size(), 4u);
  EXPECT_EQ(m[0], json({{"role", "system"}, {"content", {{{"type", "text"}, {"text", "Be brief."}}}}}));
  EXPECT_EQ(m[1]["content"][1], json({{"type", "image"}, {"image_id", "img_0123"}}));
  EXPECT_EQ(m[2]["role"], "assistant");
  EXPECT_EQ(m[3]["content"][0]["text"], "Colour?");
  EXPECT_EQ(r.params["max_tokens"], 40);
  EXPECT_DOUBLE_EQ(r.params["temperature"].get<double>(), 0.7);
  EXPECT_DOUBLE_EQ(r.params["top_p"].get<double>(), 0.9);
  EXPECT_EQ(r.params["seed"], 5u);
  EXPECT_EQ(r.params["stop"], json::array({"END"}));

  // Defaults: greedy, no seed, no stop; max_tokens when max_completion_tokens is absent.
  body = valid_body();
  body["max_tokens"] = 12;
  body["stream"] = true;
  body["stream_options"] = {{"include_usage", true}};
  body["image_url_detail_is_ignored"] = 1;  // unknown fields are ignored, as OpenAI does for most
  r = parse_chat_request(body);
  EXPECT_EQ(r.params["max_tokens"], 12);
  EXPECT_EQ(r.params["temperature"], 0.0);
  EXPECT_FALSE(r.params.contains("seed"));
  EXPECT_TRUE(r.stream);
  EXPECT_TRUE(r.include_usage);
}

TEST(ChatRequest, ErrorsNameTheExactField) {
  struct Case {
    std::function<void(json&)> edit;
    std::string param;
  };
  const std::vector<Case> cases = {
      {[](json& b) { b.erase("messages"); }, "messages"},
      {[](json& b) { b["messages"] = json::array(); }, "messages"},
      {[](json& b) { b["messages"][1]["role"] = "robot"; }, "messages[1].role"},
      {[](json& b) { b["messages"][1]["role"] = "tool"; }, "messages[1].role"},
      {[](json& b) { b["messages"][3].erase("content"); }, "messages[3].content"},
      {[](json& b) { b["messages"][3]["content"] = 5; }, "messages[3].content"},
      {[](json& b) { b["messages"][1]["content"][0]["type"] = "input_audio"; }, "messages[1].content[0].type"},
      {[](json& b) { b["messages"][1]["content"][0].erase("text"); }, "messages[1].content[0].text"},
      {[](json& b) { b["messages"][1]["content"][1]["image_url"] = 3; }, "messages[1].content[1].image_url"},
      {[](json& b) { b["messages"][1]["content"][1]["image_url"].erase("url"); },
       "messages[1].content[1].image_url.url"},
      {[](json& b) { b["messages"][1]["content"][1]["image_url"]["detail"] = "ultra"; },
       "messages[1].content[1].image_url.detail"},
      {[](json& b) { b["messages"][2]["content"] = json::array({image_part("https://x/b.png")}); },
       "messages[2].content[0].image_url"},
      {[](json& b) { b["messages"][1]["content"].erase(1); }, "messages"},  // no image at all
      {[](json& b) { b["max_tokens"] = 0; }, "max_tokens"},
      {[](json& b) { b["max_completion_tokens"] = "many"; }, "max_completion_tokens"},
      {[](json& b) { b["temperature"] = 2.5; }, "temperature"},
      {[](json& b) { b["top_p"] = 0; }, "top_p"},
      {[](json& b) { b["seed"] = -1; }, "seed"},
      {[](json& b) { b["seed"] = 1.5; }, "seed"},
      {[](json& b) {
         b["stop"] = json::array({"a", "b", "c", "d", "e"});
       },
       "stop"},
      {[](json& b) {
         b["stop"] = json::array({"a", 3});
       },
       "stop[1]"},
      {[](json& b) { b["stop"] = 7; }, "stop"},
      {[](json& b) { b["n"] = 2; }, "n"},
      {[](json& b) { b["stream"] = "yes"; }, "stream"},
      {[](json& b) {
         b["stream_options"] = {{"include_usage", true}};
       },
       "stream_options"},
      {[](json& b) { b["model"] = 3; }, "model"},
      {[](json& b) { b["logprobs"] = true; }, "logprobs"},
      {[](json& b) {
         b["tools"] = json::array({{{"type", "function"}}});
       },
       "tools"},
  };
  for (size_t k = 0; k < cases.size(); ++k) {
    json body = valid_body();
    cases[k].edit(body);
    const ApiError e = error_of(body);
    EXPECT_EQ(e.status, 400) << k;
    EXPECT_EQ(e.type, "invalid_request_error") << k;
    EXPECT_EQ(e.param, cases[k].param) << "case " << k << ": " << e.what();
    EXPECT_NE(std::string(e.what()).size(), 0u);
  }
  ChatLimits few;
  few.max_images = 0;
  try {
    parse_chat_request(valid_body(), few);
    FAIL();
  } catch (const ApiError& e) {
    EXPECT_EQ(e.code, "too_many_images");
  }
}

TEST(ChatRequest, ResponseShapesFollowOpenAI) {
  EXPECT_EQ(chat_completion_id("job_abc123"), "chatcmpl-abc123");
  const json result = {
      {"text", "A red square."}, {"finish_reason", "length"}, {"prompt_tokens", 30}, {"completion_tokens", 4}};
  const json c = chat_completion("chatcmpl-1", 1700000000, "tiny", result);
  EXPECT_EQ(c["object"], "chat.completion");
  EXPECT_EQ(c["created"], 1700000000);
  EXPECT_EQ(c["model"], "tiny");
  ASSERT_EQ(c["choices"].size(), 1u);
  EXPECT_EQ(c["choices"][0]["index"], 0);
  EXPECT_EQ(c["choices"][0]["message"]["role"], "assistant");
  EXPECT_EQ(c["choices"][0]["message"]["content"], "A red square.");
  EXPECT_EQ(c["choices"][0]["finish_reason"], "length");
  EXPECT_TRUE(c["choices"][0]["logprobs"].is_null());
  EXPECT_EQ(c["usage"], json({{"prompt_tokens", 30}, {"completion_tokens", 4}, {"total_tokens", 34}}));
  EXPECT_TRUE(c["system_fingerprint"].is_string());

  const json first = chat_chunk("chatcmpl-1", 1, "tiny", {{"role", "assistant"}, {"content", ""}});
  EXPECT_EQ(first["object"], "chat.completion.chunk");
  EXPECT_TRUE(first["choices"][0]["finish_reason"].is_null());
  EXPECT_EQ(first["choices"][0]["delta"]["role"], "assistant");
  const json last = chat_chunk("chatcmpl-1", 1, "tiny", json::object(), "stop");
  EXPECT_EQ(last["choices"][0]["finish_reason"], "stop");
  const json usage = chat_usage_chunk("chatcmpl-1", 1, "tiny", chat_usage(result));
  EXPECT_TRUE(usage["choices"].empty());
  EXPECT_EQ(usage["usage"]["total_tokens"], 34);
}

TEST(ImageSource, DataUrisDecodeAndBadOnesNameTheField) {
  const std::vector<uint8_t> png = small_png();
  const std::string p = "messages[0].content[1].image_url";
  EXPECT_EQ(decode_data_uri("data:image/png;base64," + base64(png), 1 << 20, p), png);
  // Line breaks inside the data are tolerated; every padding length decodes.
  std::string wrapped = base64(png);
  wrapped.insert(10, "\n");
  EXPECT_EQ(decode_data_uri("data:image/png;base64," + wrapped, 1 << 20, p), png);
  for (size_t n : {1, 2, 3, 4})
    EXPECT_EQ(decode_data_uri("data:image/png;base64," + base64(std::vector<uint8_t>(png.begin(), png.begin() + n)),
                              1 << 20, p)
                  .size(),
              n);

  for (const char* bad : {"data:image/png;base64,@@@@", "data:text/plain;base64,aGVsbG8=", "data:image/png,rawbytes",
                          "data:image/png;base64,", "data:image/png;base64,QQ=A", "data:image/png;base64,Q"}) {
    try {
      decode_data_uri(bad, 1 << 20, p);
      ADD_FAILURE() << bad;
    } catch (const ApiError& e) {
      EXPECT_EQ(e.status, 400) << bad;
      EXPECT_EQ(e.param, p) << bad;
    }
  }
  try {
    decode_data_uri("data:image/png;base64," + base64(png), png.size() - 1, p);
    FAIL();
  } catch (const ApiError& e) {
    EXPECT_EQ(e.code, "image_too_large");
  }

  // read_image_source routes data: URIs; other schemes are refused with the field named.
  ServerOptions o;
  EXPECT_EQ(read_image_source("data:image/png;base64," + base64(png), o, p), png);
  try {
    read_image_source("ftp://example.com/a.png", o, p);
    FAIL();
  } catch (const ApiError& e) {
    EXPECT_EQ(e.param, p);
    EXPECT_NE(std::string(e.what()).find("ftp"), std::string::npos);
  }
}

TEST(ImageSource, NonPublicAddressesAreRefused) {
  for (const char* ip : {"127.0.0.1",
                         "127.1.2.3",
                         "10.0.0.1",
                         "10.255.255.255",
                         "172.16.0.1",
                         "172.31.255.1",
                         "192.168.1.1",
                         "169.254.169.254",
                         "0.0.0.0",
                         "100.64.0.1",
                         "224.0.0.1",
                         "255.255.255.255",
                         "::1",
                         "::",
                         "fc00::1",
                         "fd12:3456::1",
                         "fe80::1",
                         "fe80::1%eth0",
                         "ff02::1",
                         "::ffff:127.0.0.1",
                         "::ffff:10.1.2.3",
                         "::ffff:169.254.169.254",
                         "::127.0.0.1",
                         "64:ff9b::7f00:1",
                         "2002:7f00:1::",
                         "[::1]",
                         "not-an-ip",
                         ""})
    EXPECT_TRUE(is_non_public_address(ip)) << ip;
  for (const char* ip : {"8.8.8.8", "1.1.1.1", "172.32.0.1", "172.15.255.255", "192.169.0.1", "100.128.0.1",
                         "2606:4700:4700::1111", "2a00:1450:4001::200e", "::ffff:8.8.8.8", "2002:0808:0808::"})
    EXPECT_FALSE(is_non_public_address(ip)) << ip;
}

TEST(ImageSource, LoopbackUrlsAreRefusedBeforeAnyConnection) {
  ServerOptions o;
  o.url_timeout_s = 2;
  // Port 9 (discard) on loopback: the check must refuse before trying to connect.
  for (const char* url : {"http://127.0.0.1:9/a.png", "http://[::1]:9/a.png", "http://localhost:9/a.png",
                          "http://[::ffff:127.0.0.1]:9/a.png", "http://0.0.0.0:9/x", "http://2130706433:9/x"}) {
    try {
      read_image_source(url, o, "messages[0].content[0].image_url");
      ADD_FAILURE() << url;
    } catch (const ApiError& e) {
      EXPECT_EQ(e.status, 400) << url;
      EXPECT_EQ(e.code, "url_not_allowed") << url << ": " << e.what();
      EXPECT_EQ(e.param, "messages[0].content[0].image_url");
    }
  }
  try {
    read_image_source("http://user:pw@example.com/a.png", o, "p");
    FAIL();
  } catch (const ApiError& e) {
    EXPECT_EQ(e.code, "invalid_url");
  }
}

TEST(ImageSource, LocalFilesStayInsideTheirFolder) {
  const fs::path base = test::temp_dir("chat-local");
  const fs::path dir = base / "allowed";
  fs::create_directories(dir / "sub");
  const std::vector<uint8_t> png = small_png();
  for (const fs::path& f : {dir / "a.png", dir / "sub" / "b.png", base / "secret.png"}) {
    std::ofstream out(f, std::ios::binary);
    out.write(reinterpret_cast<const char*>(png.data()), std::streamsize(png.size()));
  }
  fs::create_symlink(base / "secret.png", dir / "link.png");
  fs::create_directory_symlink(base, dir / "up");
  const std::string p = "messages[0].content[0].image_url";
  const fs::path root = fs::canonical(dir);

  EXPECT_EQ(resolve_local_image_path("a.png", dir, p), root / "a.png");
  EXPECT_EQ(resolve_local_image_path("sub/../sub/b.png", dir, p), root / "sub" / "b.png");
  EXPECT_EQ(resolve_local_image_path((dir / "a.png").string(), dir, p), root / "a.png");
  EXPECT_EQ(resolve_local_image_path("file://" + (root / "sub" / "b.png").string(), dir, p), root / "sub" / "b.png");

  for (const std::string& escape :
       {std::string("../secret.png"), std::string("sub/../../secret.png"), (base / "secret.png").string(),
        std::string("link.png"), std::string("up/secret.png"), "file://" + (base / "secret.png").string(),
        std::string("/etc/passwd"), std::string("file:///etc/passwd")}) {
    try {
      resolve_local_image_path(escape, dir, p);
      ADD_FAILURE() << escape;
    } catch (const ApiError& e) {
      EXPECT_EQ(e.status, 403) << escape;
      EXPECT_EQ(e.param, p);
      EXPECT_NE(std::string(e.what()).find("outside"), std::string::npos) << e.what();
    }
  }
  try {
    resolve_local_image_path("missing.png", dir, p);
    FAIL();
  } catch (const ApiError& e) {
    EXPECT_EQ(e.status, 400);
  }
  // No folder configured: no local files at all.
  try {
    resolve_local_image_path("a.png", fs::path(), p);
    FAIL();
  } catch (const ApiError& e) {
    EXPECT_EQ(e.status, 403);
    EXPECT_NE(std::string(e.what()).find("--local-files"), std::string::npos);
  }
  ServerOptions o;
  o.local_files_dir = dir;
  EXPECT_EQ(read_image_source("sub/b.png", o, p), png);
}
