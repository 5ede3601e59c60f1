// The image endpoints' request parsing and response shaping, without a server: OpenAI generations /
// edits / variations and AUTOMATIC1111 txt2img / img2img bodies → "generate" job params, every invalid
// value → ApiError 400 naming its field, finished jobs → the JSON those APIs return.
#include <gtest/gtest.h>

#include <map>

#include "formats/generation_params.hpp"
#include "image_samples.hpp"
#include "serve/base64.hpp"
#include "serve/image_requests.hpp"
#include "storage/ids.hpp"

using namespace pictor;
using namespace pictor::serve;
using nlohmann::json;

namespace {

Image solid(int w, int h, int channels, uint8_t value, uint8_t alpha = 255) {
  Image img(w, h, channels);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      uint8_t* p = img.at(x, y);
      for (int c = 0; c < channels; ++c) p[c] = c == 3 ? alpha : uint8_t(value + x);
    }
  return img;
}

std::vector<uint8_t> png(int w, int h, int channels = 3, uint8_t alpha = 255) {
  return encode_png(solid(w, h, channels, 40, alpha));
}

// A fake server: one model "tiny", images kept in a map.
struct FakeServer {
  std::map<std::string, Image> stored;
  ImageRequestEnv env;

  FakeServer() {
    env.max_images = 10;
    env.max_output_side = 1024;
    env.image_limits.max_bytes = 1 << 20;
    env.image_limits.max_pixels = 1024 * 1024;
    env.pick_model = [](const std::string& name, const std::string& param) -> std::string {
      if (name.empty() || name == "tiny" || is_openai_image_model_name(name)) return "tiny";
      throw not_found("model \"" + name + "\" does not exist", param);
    };
    env.store_image = [this](const std::vector<uint8_t>&, const Image& img) {
      std::string id = storage::new_id("img");
      stored[id] = img;
      return id;
    };
    env.load_image = [this](const std::string& id) -> std::optional<Image> {
      auto it = stored.find(id);
      if (it == stored.end()) return std::nullopt;
      return it->second;
    };
  }
};

ImageInput upload(const std::string& field, std::vector<uint8_t> bytes) {
  ImageInput in;
  in.field = field;
  in.bytes = std::move(bytes);
  return in;
}

// The ApiError `fn` throws (fails the test when it throws none).
template <typename Fn>
ApiError api_error_of(Fn&& fn) {
  try {
    fn();
  } catch (const ApiError& e) {
    return e;
  }
  ADD_FAILURE() << "no ApiError thrown";
  return ApiError(0, "", "");
}

}  // namespace

// ---- base64 ----------------------------------------------------------------------------------------

TEST(Base64, RoundTripsEveryLengthAndAcceptsWhitespaceAndMissingPadding) {
  std::vector<uint8_t> bytes;
  for (int n = 0; n < 20; ++n) {
    std::string text = base64_encode(bytes);
    EXPECT_EQ(text.size() % 4, 0u);
    EXPECT_EQ(base64_decode(text), bytes) << text;
    std::string unpadded = text.substr(0, text.find('='));
    EXPECT_EQ(base64_decode(unpadded), bytes) << unpadded;
    bytes.push_back(uint8_t(n * 37 + 200));
  }
  EXPECT_EQ(base64_encode(std::vector<uint8_t>{'M', 'a', 'n'}), "TWFu");
  auto wrapped = base64_decode("TW\nFu\r\n");
  ASSERT_TRUE(wrapped);
  EXPECT_EQ(std::string(wrapped->begin(), wrapped->end()), "Man");
}

TEST(Base64, RefusesBadTextAndOversizedOutput) {
  EXPECT_FALSE(base64_decode("TWF*"));
  EXPECT_FALSE(base64_decode("T"));         // a lone digit cannot be base64
  EXPECT_FALSE(base64_decode("TQ==TQ=="));  // data after padding
  EXPECT_TRUE(base64_decode("TWFuTWFu", 6));
  EXPECT_FALSE(base64_decode("TWFuTWFu", 5));
}

TEST(Base64, DataUris) {
  auto d = parse_data_uri("data:image/png;base64,iVBORw0=");
  ASSERT_TRUE(d);
  EXPECT_EQ(d->mime_type, "image/png");
  EXPECT_EQ(d->payload, "iVBORw0=");
  EXPECT_FALSE(parse_data_uri("data:image/png,rawtext"));  // not base64
  EXPECT_FALSE(parse_data_uri("http://x/y.png"));
}

// ---- generations -----------------------------------------------------------------------------------

TEST(ImageRequests, GenerationDefaults) {
  FakeServer s;
  auto spec = parse_generation_request({{"prompt", "a red cat"}}, s.env, "alice");
  EXPECT_EQ(spec.kind, "generate");
  EXPECT_EQ(spec.model, "tiny");
  EXPECT_EQ(spec.owner, "alice");
  EXPECT_EQ(spec.params["prompt"], "a red cat");
  EXPECT_EQ(spec.params["count"], 1);
  EXPECT_EQ(spec.params["width"], 0);  // model default
  EXPECT_EQ(spec.params["height"], 0);
  EXPECT_EQ(spec.params["steps"], 0);
  EXPECT_EQ(spec.params["guidance"], -1.0);
  EXPECT_EQ(spec.params["output_format"], "png");
  EXPECT_EQ(spec.params["noise"], "cpu");
  EXPECT_FALSE(spec.params.contains("seed"));
  EXPECT_FALSE(spec.params.contains("init_image"));
  EXPECT_EQ(spec.tags["type"], "images.generations");
  EXPECT_EQ(spec.tags["response_format"], "b64_json");
}

TEST(ImageRequests, GenerationEveryField) {
  FakeServer s;
  json body = {{"prompt", "a red cat"},
               {"model", "dall-e-3"},  // OpenAI's name falls back to the default model
               {"n", 3},
               {"size", "64x128"},
               {"response_format", "url"},
               {"output_format", "webp"},
               {"quality", "hd"},
               {"style", "natural"},
               {"user", "bob"},
               {"negative_prompt", "blurry"},
               {"seed", 18446744073709551615ull},
               {"steps", 2},
               {"guidance_scale", 5.5},
               {"sampler", "DPM++ 2M Karras"},
               {"clip_skip", 2},
               {"noise", "a1111"}};
  auto spec = parse_generation_request(body, s.env, "alice");
  EXPECT_EQ(spec.model, "tiny");
  EXPECT_EQ(spec.params["count"], 3);
  EXPECT_EQ(spec.params["width"], 64);
  EXPECT_EQ(spec.params["height"], 128);
  EXPECT_EQ(spec.params["output_format"], "webp");
  EXPECT_EQ(spec.params["negative_prompt"], "blurry");
  EXPECT_EQ(spec.params["seed"].get<uint64_t>(), 18446744073709551615ull);
  EXPECT_EQ(spec.params["steps"], 2);
  EXPECT_EQ(spec.params["guidance"], 5.5);
  EXPECT_EQ(spec.params["sampler"], "dpmpp_2m_karras");
  EXPECT_EQ(spec.params["clip_skip"], 2);
  EXPECT_EQ(spec.params["noise"], "a1111");
  EXPECT_EQ(spec.tags["response_format"], "url");
  EXPECT_EQ(spec.tags["user"], "bob");
  EXPECT_EQ(spec.owner, "alice");
}

TEST(ImageRequests, EveryBadGenerationFieldIsA400NamingIt) {
  FakeServer s;
  const std::vector<std::pair<json, std::string>> cases = {
      {{{"n", 1}}, "prompt"},
      {{{"prompt", ""}}, "prompt"},
      {{{"prompt", "   "}}, "prompt"},
      {{{"prompt", 5}}, "prompt"},
      {{{"prompt", "x"}, {"n", "two"}}, "n"},
      {{{"prompt", "x"}, {"n", 0}}, "n"},
      {{{"prompt", "x"}, {"n", 11}}, "n"},
      {{{"prompt", "x"}, {"n", 1.5}}, "n"},
      {{{"prompt", "x"}, {"size", "big"}}, "size"},
      {{{"prompt", "x"}, {"size", "100x100"}}, "size"},
      {{{"prompt", "x"}, {"size", "2048x64"}}, "size"},
      {{{"prompt", "x"}, {"size", "56x64"}}, "size"},
      {{{"prompt", "x"}, {"size", "64x"}}, "size"},
      {{{"prompt", "x"}, {"size", 512}}, "size"},
      {{{"prompt", "x"}, {"response_format", "png"}}, "response_format"},
      {{{"prompt", "x"}, {"output_format", "gif"}}, "output_format"},
      {{{"prompt", "x"}, {"quality", "ultra"}}, "quality"},
      {{{"prompt", "x"}, {"style", "cartoon"}}, "style"},
      {{{"prompt", "x"}, {"background", "transparent"}}, "background"},
      {{{"prompt", "x"}, {"stream", true}}, "stream"},
      {{{"prompt", "x"}, {"user", 7}}, "user"},
      {{{"prompt", "x"}, {"steps", 0}}, "steps"},
      {{{"prompt", "x"}, {"steps", 151}}, "steps"},
      {{{"prompt", "x"}, {"guidance_scale", -1}}, "guidance_scale"},
      {{{"prompt", "x"}, {"guidance_scale", "7"}}, "guidance_scale"},
      {{{"prompt", "x"}, {"sampler", "heun"}}, "sampler"},
      {{{"prompt", "x"}, {"seed", -5}}, "seed"},
      {{{"prompt", "x"}, {"seed", "42"}}, "seed"},
      {{{"prompt", "x"}, {"strength", 1.5}}, "strength"},
      {{{"prompt", "x"}, {"clip_skip", 0}}, "clip_skip"},
      {{{"prompt", "x"}, {"noise", "gpu"}}, "noise"},
  };
  for (const auto& [body, param] : cases) {
    ApiError e = api_error_of([&] { parse_generation_request(body, s.env, "u"); });
    EXPECT_EQ(e.status, 400) << body.dump();
    EXPECT_EQ(e.type, "invalid_request_error") << body.dump();
    EXPECT_EQ(e.param, param) << body.dump() << ": " << e.what();
    EXPECT_NE(std::string(e.what()).find(param), std::string::npos) << e.what();
  }
  // Messages name the allowed range.
  ApiError n = api_error_of([&] { parse_generation_request({{"prompt", "x"}, {"n", "two"}}, s.env, "u"); });
  EXPECT_NE(std::string(n.what()).find("between 1 and 10"), std::string::npos) << n.what();
  ApiError size = api_error_of([&] { parse_generation_request({{"prompt", "x"}, {"size", "9x9"}}, s.env, "u"); });
  EXPECT_NE(std::string(size.what()).find("64 and 1024"), std::string::npos) << size.what();
  // An unknown model is the catalog's 404.
  ApiError model = api_error_of([&] { parse_generation_request({{"prompt", "x"}, {"model", "nope"}}, s.env, "u"); });
  EXPECT_EQ(model.status, 404);
  EXPECT_EQ(model.param, "model");
  // A body that is not an object.
  EXPECT_EQ(api_error_of([&] { parse_generation_request(json::array(), s.env, "u"); }).status, 400);
}

// ---- edits and variations --------------------------------------------------------------------------

TEST(ImageRequests, EditWithMaskStoresBothAndRepaintsTransparentPixels) {
  FakeServer s;
  json form = {{"prompt", "a hat"}, {"n", "2"}, {"strength", "0.5"}, {"response_format", "url"}};
  auto spec =
      parse_edit_request(form, true, {upload("image", png(64, 48))}, upload("mask", png(64, 48, 4, 0)), s.env, "u");
  EXPECT_EQ(spec.tags["type"], "images.edits");
  EXPECT_EQ(spec.params["count"], 2);
  EXPECT_EQ(spec.params["strength"], 0.5);
  EXPECT_EQ(spec.params["mask_convention"], "transparent");
  ASSERT_EQ(s.stored.size(), 2u);
  EXPECT_EQ(s.stored.at(spec.params["init_image"]).channels, 3);
  EXPECT_EQ(s.stored.at(spec.params["mask"]).channels, 4);
  EXPECT_EQ(s.stored.at(spec.params["mask"]).width, 64);
}

TEST(ImageRequests, EditDefaultsAndSeveralImages) {
  FakeServer s;
  auto masked = parse_edit_request({{"prompt", "x"}}, true, {upload("image", png(64, 64))},
                                   upload("mask", png(64, 64, 4, 0)), s.env, "u");
  EXPECT_EQ(masked.params["strength"], 1.0);
  s.stored.clear();
  auto plain = parse_edit_request({{"prompt", "x"}}, true, {upload("image", png(64, 64)), upload("image", png(32, 32))},
                                  std::nullopt, s.env, "u");
  EXPECT_EQ(plain.params["strength"], 0.75);
  EXPECT_FALSE(plain.params.contains("mask"));
  EXPECT_EQ(plain.tags["ignored_images"], 1);
  ASSERT_EQ(s.stored.size(), 1u);  // only the first image is used
  EXPECT_EQ(s.stored.at(plain.params["init_image"]).width, 64);
}

TEST(ImageRequests, BadEditImagesAndMasksAreRefusedBeforeAnythingIsStored) {
  FakeServer s;
  json form = {{"prompt", "x"}};
  auto err = [&](std::vector<ImageInput> images, std::optional<ImageInput> mask) {
    return api_error_of([&] { parse_edit_request(form, true, images, mask, s.env, "u"); });
  };
  ApiError size = err({upload("image", png(64, 64))}, upload("mask", png(64, 48, 4, 0)));
  EXPECT_EQ(size.param, "mask");
  EXPECT_NE(std::string(size.what()).find("64x64"), std::string::npos) << size.what();
  EXPECT_EQ(err({upload("image", png(64, 64))}, upload("mask", png(64, 64, 3))).param, "mask");  // no alpha
  EXPECT_EQ(err({upload("image", png(64, 64))}, upload("mask", {1, 2, 3})).param, "mask");
  EXPECT_EQ(err({}, std::nullopt).param, "image");
  EXPECT_EQ(err({upload("image", {})}, std::nullopt).param, "image");
  EXPECT_EQ(err({upload("image", {'n', 'o', 'p', 'e'})}, std::nullopt).param, "image");
  // A decompression bomb is refused from its header.
  ApiError bomb = err({upload("image", samples::png_with_claimed_size(100000, 100000))}, std::nullopt);
  EXPECT_EQ(bomb.param, "image");
  EXPECT_NE(std::string(bomb.what()).find("100000x100000"), std::string::npos) << bomb.what();
  // Too many bytes.
  s.env.image_limits.max_bytes = 100;
  ApiError big = err({upload("image", png(64, 64))}, std::nullopt);
  EXPECT_EQ(big.param, "image");
  EXPECT_EQ(big.code, "image_too_large");
  s.env.image_limits.max_bytes = 1 << 20;
  // A stored id that does not exist.
  ImageInput missing;
  missing.field = "image";
  missing.stored_id = "img_000000000000000000000000";
  EXPECT_EQ(err({missing}, std::nullopt).param, "image");
  // Form numbers that are not numbers; a missing prompt.
  EXPECT_EQ(api_error_of([&] {
              parse_edit_request({{"prompt", "x"}, {"n", "two"}}, true, {upload("image", png(64, 64))}, std::nullopt,
                                 s.env, "u");
            }).param,
            "n");
  EXPECT_EQ(api_error_of([&] {
              parse_edit_request(json::object(), true, {upload("image", png(64, 64))}, std::nullopt, s.env, "u");
            }).param,
            "prompt");
  EXPECT_TRUE(s.stored.empty());
}

TEST(ImageRequests, VariationIsImg2ImgWithoutPrompt) {
  FakeServer s;
  auto spec =
      parse_variation_request({{"n", "2"}, {"size", "64x64"}}, true, {upload("image", png(64, 64))}, s.env, "u");
  EXPECT_EQ(spec.tags["type"], "images.variations");
  EXPECT_EQ(spec.params["prompt"], "");
  EXPECT_EQ(spec.params["strength"], 0.6);
  EXPECT_EQ(spec.params["count"], 2);
  EXPECT_TRUE(s.stored.count(spec.params["init_image"]));
  auto steered = parse_variation_request({{"prompt", "in winter"}}, true, {upload("image", png(64, 64))}, s.env, "u");
  EXPECT_EQ(steered.params["prompt"], "in winter");
  EXPECT_EQ(api_error_of([&] { parse_variation_request(json::object(), true, {}, s.env, "u"); }).param, "image");
}

TEST(ImageRequests, JsonImageInputs) {
  auto bytes = png(8, 8);
  std::string b64 = base64_encode(bytes);
  std::string id = storage::new_id("img");
  auto inputs = image_inputs_from_json(json::array({"data:image/png;base64," + b64, b64, id}), "image", 1 << 20);
  ASSERT_EQ(inputs.size(), 3u);
  EXPECT_EQ(inputs[0].bytes, bytes);
  EXPECT_EQ(inputs[1].bytes, bytes);
  EXPECT_EQ(inputs[2].stored_id, id);
  EXPECT_EQ(inputs[0].field, "image");
  EXPECT_EQ(api_error_of([&] { image_inputs_from_json(json(5), "image", 1 << 20); }).param, "image");
  EXPECT_EQ(api_error_of([&] { image_inputs_from_json(json("not base64!"), "mask", 1 << 20); }).param, "mask");
  ApiError big = api_error_of([&] { image_inputs_from_json(json(b64), "image", 10); });
  EXPECT_EQ(big.code, "image_too_large");
}

// ---- responses -------------------------------------------------------------------------------------

namespace {
struct FakeStore {
  std::map<std::string, std::pair<storage::StoredImage, std::vector<uint8_t>>> files;
  ImageResponseEnv env;
  FakeStore() {
    env.base_url = "http://example.test:8080";
    env.get_image = [this](const std::string& id) -> std::optional<storage::StoredImage> {
      auto it = files.find(id);
      if (it == files.end()) return std::nullopt;
      return it->second.first;
    };
    env.read_image = [this](const storage::StoredImage& img) { return files.at(img.id).second; };
    env.image_path = [](const storage::StoredImage& img) { return "/v1/files/images/" + img.id + "." + img.format; };
  }
  json add(int w, int h, uint64_t seed) {
    storage::StoredImage img;
    img.id = storage::new_id("img");
    img.format = "png";
    img.width = w;
    img.height = h;
    files[img.id] = {img, png(w, h)};
    return {{"id", img.id}, {"seed", seed}, {"width", w}, {"height", h}, {"format", "png"}};
  }
};

storage::JobRecord finished_job(FakeStore& store, const json& tags, const json& params, int count) {
  storage::JobRecord job;
  job.id = storage::new_id("job");
  job.state = "succeeded";
  job.model = "tiny";
  job.tags = tags;
  job.params = params;
  job.finished = 1700000000.5;
  json images = json::array(), infotexts = json::array();
  for (int k = 0; k < count; ++k) {
    images.push_back(store.add(64, 48, 100 + k));
    GenerationParams p;
    p.prompt = params.value("prompt", "");
    p.steps = 2;
    p.sampler = "Euler a";
    p.cfg_scale = 7;
    p.seed = 100 + k;
    p.width = 64;
    p.height = 48;
    infotexts.push_back(format_a1111(p));
  }
  job.result = {{"images", images}, {"parameters", infotexts}, {"model", "tiny"}, {"created", 1700000000}};
  return job;
}
}  // namespace

TEST(ImageResponses, B64JsonAndUrl) {
  FakeStore store;
  auto job = finished_job(store, {{"response_format", "b64_json"}}, {{"prompt", "cat"}, {"output_format", "png"}}, 2);
  json r = images_response(job, store.env);
  EXPECT_EQ(r["created"], 1700000000);
  ASSERT_EQ(r["data"].size(), 2u);
  EXPECT_EQ(r["data"][1]["seed"], 101);
  EXPECT_EQ(r["size"], "64x48");
  EXPECT_EQ(r["output_format"], "png");
  auto bytes = base64_decode(r["data"][0]["b64_json"].get<std::string>());
  ASSERT_TRUE(bytes);
  EXPECT_EQ(*bytes, store.files.at(job.result["images"][0]["id"]).second);
  EXPECT_FALSE(r["data"][0].contains("url"));

  job.tags["response_format"] = "url";
  r = images_response(job, store.env);
  const std::string id = job.result["images"][0]["id"];
  EXPECT_EQ(r["data"][0]["url"], "http://example.test:8080/v1/files/images/" + id + ".png");
  EXPECT_FALSE(r["data"][0].contains("b64_json"));

  store.files.clear();  // the images vanished: a server error, not a crash
  EXPECT_EQ(api_error_of([&] { images_response(job, store.env); }).status, 500);
}

// ---- AUTOMATIC1111 ---------------------------------------------------------------------------------

TEST(A1111Requests, Txt2ImgFields) {
  FakeServer s;
  json body = {{"prompt", "a cat"},
               {"negative_prompt", "dog"},
               {"seed", -1},
               {"steps", 2},
               {"cfg_scale", 7},
               {"width", 64},
               {"height", 64},
               {"sampler_name", "DPM++ 2M"},
               {"scheduler", "Karras"},
               {"batch_size", 2},
               {"n_iter", 3},
               {"override_settings", {{"sd_model_checkpoint", "tiny"}, {"CLIP_stop_at_last_layers", 2}}},
               {"send_images", true}};
  auto spec = parse_a1111_request(body, false, s.env, "u");
  EXPECT_EQ(spec.tags["type"], "sdapi.txt2img");
  EXPECT_EQ(spec.model, "tiny");
  EXPECT_FALSE(spec.params.contains("seed"));  // -1: random
  EXPECT_EQ(spec.params["sampler"], "dpmpp_2m_karras");
  EXPECT_EQ(spec.params["count"], 6);
  EXPECT_EQ(spec.params["guidance"], 7.0);
  EXPECT_EQ(spec.params["clip_skip"], 2);
  EXPECT_EQ(spec.params["noise"], "a1111");
  EXPECT_EQ(spec.params["negative_prompt"], "dog");
  EXPECT_EQ(spec.tags["a1111_request"]["prompt"], "a cat");
  EXPECT_EQ(spec.tags["batch_size"], 2);

  body["seed"] = 1234;
  body.erase("scheduler");
  body["sampler_name"] = nullptr;
  body["sampler_index"] = "k_euler_a";
  auto legacy = parse_a1111_request(body, false, s.env, "u");
  EXPECT_EQ(legacy.params["seed"], 1234);
  EXPECT_EQ(legacy.params["sampler"], "euler_a");
  for (const auto& [display, pictor] :
       std::vector<std::pair<std::string, std::string>>{{"Euler a", "euler_a"},
                                                        {"Euler", "euler"},
                                                        {"DDIM", "ddim"},
                                                        {"LCM", "lcm"},
                                                        {"DPM++ 2M Karras", "dpmpp_2m_karras"},
                                                        {"euler a", "euler_a"}})
    EXPECT_EQ(sampler_from_request(display, "", "sampler_name"), pictor) << display;
  EXPECT_EQ(sampler_from_request("Euler", "karras", "sampler_name"), "euler_karras");
  EXPECT_EQ(sampler_from_request("DPM++ 2M Karras", "Karras", "sampler_name"), "dpmpp_2m_karras");
}

TEST(A1111Requests, BadFieldsNameThemselves) {
  FakeServer s;
  const std::vector<std::pair<json, std::string>> cases = {
      {{{"seed", -2}}, "seed"},
      {{{"steps", 0}}, "steps"},
      {{{"cfg_scale", "high"}}, "cfg_scale"},
      {{{"width", 65}}, "width"},
      {{{"height", 4096}}, "height"},
      {{{"sampler_name", "Heun"}}, "sampler_name"},
      {{{"sampler_index", "Heun"}}, "sampler_index"},
      {{{"sampler_name", "DDIM"}, {"scheduler", "Karras"}}, "scheduler"},
      {{{"sampler_name", "Euler"}, {"scheduler", "Exponential"}}, "scheduler"},
      {{{"batch_size", 0}}, "batch_size"},
      {{{"batch_size", 5}, {"n_iter", 3}}, "batch_size"},
      {{{"override_settings", "tiny"}}, "override_settings"},
      {{{"override_settings", {{"sd_model_checkpoint", "nope"}}}}, "override_settings.sd_model_checkpoint"},
  };
  for (const auto& [body, param] : cases) {
    ApiError e = api_error_of([&] { parse_a1111_request(body, false, s.env, "u"); });
    EXPECT_EQ(e.param, param) << body.dump() << ": " << e.what();
  }
  EXPECT_EQ(api_error_of([&] { parse_a1111_request(json::object(), true, s.env, "u"); }).param, "init_images");
  EXPECT_EQ(api_error_of([&] {
              parse_a1111_request({{"init_images", {"@@@"}}}, true, s.env, "u");
            }).param,
            "init_images");
  EXPECT_EQ(api_error_of([&] {
              parse_a1111_request({{"init_images", {base64_encode(png(64, 64))}}, {"denoising_strength", 2}}, true,
                                  s.env, "u");
            }).param,
            "denoising_strength");
}

TEST(A1111Requests, Img2ImgWithInvertedMask) {
  FakeServer s;
  Image mask = solid(64, 64, 3, 0);  // black: keep everywhere
  json body = {{"prompt", "x"},
               {"init_images", {"data:image/png;base64," + base64_encode(png(64, 64))}},
               {"mask", base64_encode(encode_png(mask))},
               {"inpainting_mask_invert", 1},
               {"denoising_strength", 0.4}};
  auto spec = parse_a1111_request(body, true, s.env, "u", "tiny");
  EXPECT_EQ(spec.tags["type"], "sdapi.img2img");
  EXPECT_EQ(spec.params["strength"], 0.4);
  EXPECT_EQ(spec.params["mask_convention"], "white");
  const Image& stored_mask = s.stored.at(spec.params["mask"]);
  EXPECT_EQ(stored_mask.at(0, 0)[0], 255);  // inverted: now repaint
  EXPECT_TRUE(s.stored.count(spec.params["init_image"]));
  // The echo drops the images as A1111 does.
  EXPECT_TRUE(spec.tags["a1111_request"]["init_images"].is_null());
  EXPECT_TRUE(spec.tags["a1111_request"]["mask"].is_null());
  EXPECT_EQ(spec.tags["a1111_request"]["denoising_strength"], 0.4);

  body.erase("inpainting_mask_invert");
  auto plain = parse_a1111_request(body, true, s.env, "u");
  EXPECT_EQ(s.stored.at(plain.params["mask"]).at(0, 0)[0], 0);  // as sent
  EXPECT_EQ(plain.params["strength"], 0.4);
  body.erase("denoising_strength");
  EXPECT_EQ(parse_a1111_request(body, true, s.env, "u").params["strength"], 0.75);
}

TEST(A1111Responses, ImagesParametersAndInfo) {
  FakeStore store;
  auto job = finished_job(store, {{"a1111_request", {{"prompt", "cat"}, {"steps", 2}}}, {"batch_size", 2}},
                          {{"prompt", "cat"}, {"negative_prompt", ""}}, 2);
  json r = a1111_response(job, store.env);
  ASSERT_EQ(r["images"].size(), 2u);
  auto bytes = base64_decode(r["images"][1].get<std::string>());
  ASSERT_TRUE(bytes);
  EXPECT_EQ(decode_image(bytes->data(), bytes->size(), "r").width, 64);
  EXPECT_EQ(r["parameters"]["steps"], 2);
  ASSERT_TRUE(r["info"].is_string());
  json info = json::parse(r["info"].get<std::string>());
  EXPECT_EQ(info["seed"], 100);
  EXPECT_EQ(info["all_seeds"], json::array({100, 101}));
  EXPECT_EQ(info["sampler_name"], "Euler a");
  EXPECT_EQ(info["steps"], 2);
  EXPECT_EQ(info["width"], 64);
  EXPECT_EQ(info["height"], 48);
  EXPECT_EQ(info["batch_size"], 2);
  EXPECT_EQ(info["sd_model_name"], "tiny");
  ASSERT_EQ(info["infotexts"].size(), 2u);
  EXPECT_NE(info["infotexts"][1].get<std::string>().find("Seed: 101"), std::string::npos);
  EXPECT_EQ(info["all_prompts"], json::array({"cat", "cat"}));
}

TEST(A1111Responses, Progress) {
  json idle = a1111_progress(std::nullopt, "");
  EXPECT_EQ(idle["progress"], 0.0);
  EXPECT_EQ(idle["state"]["job_count"], 0);
  EXPECT_TRUE(idle["current_image"].is_null());

  jobs::JobStatus st;
  st.record.id = "job_1";
  st.record.state = "running";
  st.step = 1;
  st.total = 4;
  st.eta_s = 3.5;
  json running = a1111_progress(st, "AAAA");
  EXPECT_DOUBLE_EQ(running["progress"].get<double>(), 0.25);
  EXPECT_EQ(running["eta_relative"], 3.5);
  EXPECT_EQ(running["state"]["sampling_step"], 1);
  EXPECT_EQ(running["state"]["sampling_steps"], 4);
  EXPECT_EQ(running["state"]["job_count"], 1);
  EXPECT_EQ(running["current_image"], "AAAA");

  st.record.state = "cancelled";
  json cancelled = a1111_progress(st, "AAAA");
  EXPECT_EQ(cancelled["state"]["interrupted"], true);
  EXPECT_EQ(cancelled["progress"], 0.0);
  EXPECT_TRUE(cancelled["current_image"].is_null());
}

TEST(A1111Responses, SamplersAndModels) {
  json samplers = a1111_samplers();
  bool euler_a = false;
  for (const auto& s : samplers)
    if (s["name"] == "Euler a") {
      euler_a = true;
      EXPECT_NE(std::find(s["aliases"].begin(), s["aliases"].end(), json("euler_a")), s["aliases"].end());
    }
  EXPECT_TRUE(euler_a) << samplers.dump();
  // Every listed name is accepted back.
  for (const auto& s : samplers) EXPECT_NO_THROW(sampler_from_request(s["name"], "", "sampler_name"));

  jobs::ModelInfo sd, vlm;
  sd.id = "tiny-sd";
  sd.dir = "/models/tiny-sd";
  vlm.id = "tiny-vlm";
  vlm.kind = jobs::ModelKind::ImageToText;
  json models = a1111_sd_models({sd, vlm});
  ASSERT_EQ(models.size(), 1u);
  EXPECT_EQ(models[0]["title"], "tiny-sd");
  EXPECT_EQ(models[0]["model_name"], "tiny-sd");
  EXPECT_EQ(models[0]["filename"], "/models/tiny-sd");
  EXPECT_EQ(a1111_schedulers().size(), 2u);
}
