#pragma once
// What a job does, in a form that survives a restart: every request is turned into one of these JSON
// parameter objects (images referenced by their stored id), so the HTTP shapes (OpenAI, AUTOMATIC1111,
// sessions) all share one executor.
//
// kind "generate" params:
//   prompt, negative_prompt (strings); width, height, steps, count, clip_skip (ints; 0 = model default);
//   guidance (number, < 0 = model default); sampler (string, "" = default); seed (uint, absent = random);
//   noise ("cpu"|"a1111"); strength (number); init_image, mask (stored image ids, optional);
//   mask_convention ("white"|"transparent"); output_format ("png"|"jpeg"|"webp"); previews (bool).
// result: {"images":[{"id","seed","width","height","format"}], "parameters":[A1111 text per image],
//          "model", "created"}
//
// kind "describe" params:
//   messages: OpenAI-style chat messages; content is a string or parts
//     {"type":"text","text"} / {"type":"image","image_id"}  (image_url parts are resolved to stored images
//     before the job is queued); style, max_tokens, temperature, top_p, seed, stop (array of strings).
// result: {"text", "finish_reason" ("stop"|"length"), "prompt_tokens", "completion_tokens", "seed", "model"}
#include <functional>
#include <string>

#include <nlohmann/json.hpp>

#include "storage/image_store.hpp"

namespace pictor::jobs {

class ModelCatalog;

// What a running job can report and check. Events go to subscribers (SSE streams) as they happen.
struct JobContext {
  std::string job_id;
  std::string model;
  const nlohmann::json& params;
  ModelCatalog& models;
  storage::ImageStore& images;
  // step/total progress with ETA; `preview` is the TAESD preview of this step (nullptr when none).
  std::function<void(int step, int total, double eta_s, const Image* preview)> progress;
  std::function<void(const std::string& delta)> text;  // streamed text of a describe job
  std::function<bool()> cancelled;                     // true once DELETE /v1/jobs/{id} was asked
};

nlohmann::json run_generate_job(JobContext& ctx);
nlohmann::json run_describe_job(JobContext& ctx);

}  // namespace pictor::jobs
