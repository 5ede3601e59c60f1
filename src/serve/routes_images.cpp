// OpenAI images API: /v1/images/generations (JSON), /v1/images/edits and /v1/images/variations
// (multipart/form-data as the OpenAI SDKs send them, or JSON with data: URIs / stored image ids), and the
// matching background job types. Parsing and response shaping live in image_requests.cpp.
#include <httplib.h>

#include "serve/http_util.hpp"
#include "serve/image_routes_env.hpp"
#include "serve/routes.hpp"

namespace pictor::serve {

namespace {

using nlohmann::json;

// An edits/variations request, from either a multipart form or a JSON body.
struct ImageForm {
  json fields = json::object();
  bool form = false;  // fields are multipart text (numbers as strings)
  std::vector<ImageInput> images;
  std::optional<ImageInput> mask;
};

ImageInput upload(const httplib::MultipartFormData& part, const std::string& field) {
  ImageInput in;
  in.field = field;
  in.bytes.assign(part.content.begin(), part.content.end());
  return in;
}

ImageForm form_from_json(const json& body, uint64_t max_bytes) {
  if (!body.is_object())
    throw ApiError(400, "invalid_request_error", "the request body must be a JSON object", "", "invalid_json");
  ImageForm f;
  f.fields = body;
  if (body.contains("image") && !body["image"].is_null())
    f.images = image_inputs_from_json(body["image"], "image", max_bytes);
  if (body.contains("mask") && !body["mask"].is_null()) {
    if (!body["mask"].is_string())
      throw invalid_param("mask", "mask must be one data: URI, base64 image or stored image id", "invalid_type");
    f.mask = image_inputs_from_json(body["mask"], "mask", max_bytes).front();
  }
  return f;
}

ImageForm read_form(const httplib::Request& req, uint64_t max_bytes) {
  if (!req.is_multipart_form_data()) return form_from_json(parse_json_body(req), max_bytes);
  ImageForm f;
  f.form = true;
  // httplib keeps every part (text fields too) in `files`; parts of one name stay in sending order.
  for (const auto& [name, part] : req.files) {
    if (name == "image" || name == "image[]")
      f.images.push_back(upload(part, "image"));
    else if (name == "mask") {
      if (f.mask) throw invalid_param("mask", "send at most one mask");
      f.mask = upload(part, "mask");
    } else
      f.fields[name] = part.content;
  }
  return f;
}

json run(ServerContext& ctx, const httplib::Request& req, jobs::JobSpec spec) {
  jobs::JobStatus done = ctx.run_and_wait(std::move(spec));
  return images_response(done.record, image_response_env(ctx, request_base_url(req)));
}

}  // namespace

void add_image_routes(httplib::Server& http, ServerContext& ctx) {
  http.Post("/v1/images/generations", [&ctx](const httplib::Request& req, httplib::Response& res) {
    auto spec = parse_generation_request(parse_json_body(req), image_request_env(ctx), caller_of(ctx, req));
    send_json(res, run(ctx, req, std::move(spec)));
  });
  http.Post("/v1/images/edits", [&ctx](const httplib::Request& req, httplib::Response& res) {
    ImageForm f = read_form(req, ctx.options.max_image_bytes);
    auto spec = parse_edit_request(f.fields, f.form, f.images, f.mask, image_request_env(ctx), caller_of(ctx, req));
    send_json(res, run(ctx, req, std::move(spec)));
  });
  http.Post("/v1/images/variations", [&ctx](const httplib::Request& req, httplib::Response& res) {
    ImageForm f = read_form(req, ctx.options.max_image_bytes);
    if (f.mask) throw invalid_param("mask", "variations take no mask; use /v1/images/edits");
    auto spec = parse_variation_request(f.fields, f.form, f.images, image_request_env(ctx), caller_of(ctx, req));
    send_json(res, run(ctx, req, std::move(spec)));
  });

  auto format = [](ServerContext& c, const storage::JobRecord& job) {
    return images_response(job, image_response_env(c, ""));
  };
  register_job_type("images.generations", {[](ServerContext& c, const json& request, const std::string& caller) {
                                             return parse_generation_request(request, image_request_env(c), caller);
                                           },
                                           format});
  register_job_type("images.edits", {[](ServerContext& c, const json& request, const std::string& caller) {
                                       ImageForm f = form_from_json(request, c.options.max_image_bytes);
                                       return parse_edit_request(f.fields, false, f.images, f.mask,
                                                                 image_request_env(c), caller);
                                     },
                                     format});
  register_job_type("images.variations", {[](ServerContext& c, const json& request, const std::string& caller) {
                                            ImageForm f = form_from_json(request, c.options.max_image_bytes);
                                            if (f.mask)
                                              throw invalid_param("mask", "variations take no mask; use images.edits");
                                            return parse_variation_request(f.fields, false, f.images,
                                                                           image_request_env(c), caller);
                                          },
                                          format});
}

}  // namespace pictor::serve
