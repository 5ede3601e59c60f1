#pragma once
// The image endpoints' requests and responses, without HTTP: OpenAI `/v1/images/{generations,edits,
// variations}` and AUTOMATIC1111 `/sdapi/v1/{txt2img,img2img,progress,samplers,sd-models}` bodies become
// "generate" JobSpecs (params as in jobs/job_kinds.hpp), and finished jobs become the bodies those APIs
// return. Every invalid value throws ApiError 400 naming the field and the allowed values, so clients
// see exactly what to fix. What the parsing needs from the server (models, stored images) comes in
// through ImageRequestEnv hooks, which keeps all of this testable without a server.
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "formats/image.hpp"
#include "jobs/job_queue.hpp"
#include "jobs/model_catalog.hpp"
#include "serve/api_error.hpp"
#include "storage/image_store.hpp"
#include "storage/job_store.hpp"

namespace pictor::serve {

struct ImageRequestEnv {
  int max_images = 10;         // `n`, batch_size * n_iter
  int max_output_side = 2048;  // width / height
  ImageLimits image_limits;    // every uploaded image, checked before its pixels are allocated
  bool previews = false;       // ask jobs for TAESD previews (they run only where a TAESD decoder is set up)
  // The model id for a requested name ("" = the default text-to-image model); throws ApiError naming `param`.
  std::function<std::string(const std::string& name, const std::string& param)> pick_model;
  // Stores an upload (already decoded, so known to be a valid image) and returns its id.
  std::function<std::string(const std::vector<uint8_t>& encoded, const Image& decoded)> store_image;
  // A stored image by id, decoded; nullopt when there is none.
  std::function<std::optional<Image>(const std::string& id)> load_image;
};

// An image a request names: an upload's encoded bytes, or the id of an image already stored.
struct ImageInput {
  std::string field;  // request field, for error messages ("image", "mask", "init_images[0]")
  std::vector<uint8_t> bytes;
  std::string stored_id;
};

// ---- OpenAI ----------------------------------------------------------------------------------------
// `form`: the fields come from a multipart form, so numbers arrive as strings ("n": "2").
jobs::JobSpec parse_generation_request(const nlohmann::json& body, const ImageRequestEnv& env,
                                       const std::string& caller);
// Several images: the first is the init image, the others are ignored (recorded in tags
// "ignored_images"). With a mask (transparent pixels = repaint, same size as the image) this is
// inpainting at strength 1; without one, img2img at strength 0.75.
jobs::JobSpec parse_edit_request(const nlohmann::json& fields, bool form, const std::vector<ImageInput>& images,
                                 const std::optional<ImageInput>& mask, const ImageRequestEnv& env,
                                 const std::string& caller);
// img2img of the image with an empty prompt (or the extension field `prompt`) at strength 0.6.
jobs::JobSpec parse_variation_request(const nlohmann::json& fields, bool form, const std::vector<ImageInput>& images,
                                      const ImageRequestEnv& env, const std::string& caller);

// The JSON form of edits/variations (POST /v1/jobs): `value` is a string or an array of strings, each a
// data: URI, bare base64, or a stored image id ("img_..."). ApiError naming `field` otherwise.
std::vector<ImageInput> image_inputs_from_json(const nlohmann::json& value, const std::string& field,
                                               uint64_t max_bytes);

// Model names OpenAI clients send by default ("dall-e-2", "dall-e-3", "gpt-image-1" ...): when no local
// model has that name the default model is used instead, so unmodified clients work.
bool is_openai_image_model_name(const std::string& name);

struct ImageResponseEnv {
  std::string base_url;  // "http://host:port" from the request's Host header; "" gives relative URLs
  std::function<std::optional<storage::StoredImage>(const std::string& id)> get_image;
  std::function<std::vector<uint8_t>(const storage::StoredImage& image)> read_image;  // encoded file
  std::function<std::string(const storage::StoredImage& image)> image_path;           // "/v1/files/images/<id>.<ext>"
};

// {"created", "data":[{"b64_json"|"url", "seed"}], "output_format", "size"} for a finished generate job
// made by one of the parse_*_request functions above (response_format is kept in its tags).
nlohmann::json images_response(const storage::JobRecord& job, const ImageResponseEnv& env);

// ---- AUTOMATIC1111 ---------------------------------------------------------------------------------
// `default_checkpoint`: the model chosen with POST /sdapi/v1/options ("" = the server default), used when
// the request has no override_settings.sd_model_checkpoint.
jobs::JobSpec parse_a1111_request(const nlohmann::json& body, bool img2img, const ImageRequestEnv& env,
                                  const std::string& caller, const std::string& default_checkpoint = "");
// {"images":[base64 PNG], "parameters": the request (init_images and mask nulled, as A1111 does),
//  "info": JSON text with seed, all_seeds, infotexts ...}
nlohmann::json a1111_response(const storage::JobRecord& job, const ImageResponseEnv& env);
// GET /sdapi/v1/progress for the latest sdapi job (nullopt: none yet); `preview_b64` the current TAESD
// preview as base64 PNG ("" when none).
nlohmann::json a1111_progress(const std::optional<jobs::JobStatus>& status, const std::string& preview_b64);
nlohmann::json a1111_samplers();
nlohmann::json a1111_schedulers();
nlohmann::json a1111_sd_models(const std::vector<jobs::ModelInfo>& models);

// A1111 sampler name (display name such as "DPM++ 2M Karras", an alias such as "k_euler_a", or a Pictor
// name such as "euler_a"), optionally with A1111 1.9's separate schedule type ("Karras", "Automatic"),
// as a Pictor sampler name; ApiError naming `param` when there is no such sampler.
std::string sampler_from_request(const std::string& name, const std::string& schedule, const std::string& param);

}  // namespace pictor::serve
