// `pictor score IMAGE TEXT...`: CLIPScore (Hessel et al. 2021) of captions for an image with a
// transformers CLIPModel folder (config.json, model.safetensors, tokenizer files, preprocessor_config.json).
#include <ATen/ATen.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "cli/commands.hpp"
#include "core/error.hpp"
#include "formats/image.hpp"
#include "hub/pull.hpp"
#include "models/clip_image_processor.hpp"
#include "models/clip_model.hpp"
#include "tokenizers/clip_tokenizer.hpp"

namespace fs = std::filesystem;

namespace pictor::cli {
namespace {

constexpr const char* kDefaultClipRepo = "openai/clip-vit-base-patch32";

struct ScoreArgs {
  std::string image, model;
  std::vector<std::string> texts;
  double weight = 2.5;
  bool prefix = false, json = false, no_pull = false;
};

std::string resolve_clip_dir(const std::string& model, bool allow_pull) {
  const std::string repo = model.empty() ? std::string(kDefaultClipRepo) : model;
  if (fs::is_directory(repo)) return repo;
  if (repo.find('/') == std::string::npos || repo.front() == '/' || repo.front() == '.')
    throw Error("model folder '" + repo + "' not found (pass --model DIR with a transformers CLIPModel folder)");
  if (auto local = hub::find_local(repo)) return local->string();
  if (!allow_pull)
    throw Error("model '" + repo + "' is not downloaded; run `pictor pull " + repo + "` or pass --model DIR");
  return hub::pull(repo).string();
}

// CLIPTokenizer(text, truncation=True): [BOS, ids..., EOS], cut to the model's positions.
std::vector<int64_t> caption_ids(const tokenizers::ClipTokenizer& tok, const std::string& text, int64_t max_len) {
  std::vector<int64_t> ids{tok.bos_id()};
  for (int64_t id : tok.encode(text)) ids.push_back(id);
  if (int64_t(ids.size()) > max_len - 1) ids.resize(size_t(max_len - 1));
  ids.push_back(tok.eos_id());
  return ids;
}

std::string json_escape(const std::string& s) {
  std::string out;
  for (char ch : s) {
    if (ch == '"' || ch == '\\') {
      out += '\\';
      out += ch;
    } else if (static_cast<unsigned char>(ch) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", ch);
      out += buf;
    } else {
      out += ch;
    }
  }
  return out;
}

void run_score(const ScoreArgs& a) {
  const fs::path dir = resolve_clip_dir(a.model, !a.no_pull);
  const Image image = read_image(a.image);
  auto model = models::ClipModel::load(dir);
  const auto tok = tokenizers::ClipTokenizer::load(dir);
  const auto processor = models::ClipImageProcessor::load(dir);
  at::InferenceMode guard;

  // Pad the captions to a common length with the pad token (masked out), as CLIPProcessor(padding=True).
  std::vector<std::vector<int64_t>> rows;
  size_t longest = 0;
  for (const auto& text : a.texts) {
    rows.push_back(
        caption_ids(tok, a.prefix ? "A photo depicts " + text : text, model->config().text.max_position_embeddings));
    longest = std::max(longest, rows.back().size());
  }
  const auto n = int64_t(rows.size()), T = int64_t(longest);
  at::Tensor ids = at::full({n, T}, tok.pad_id(), at::kLong), mask = at::zeros({n, T}, at::kLong);
  for (int64_t r = 0; r < n; ++r)
    for (int64_t t = 0; t < int64_t(rows[size_t(r)].size()); ++t) {
      ids[r][t] = rows[size_t(r)][size_t(t)];
      mask[r][t] = 1;
    }
  const at::Tensor scores =
      models::clip_score(model->image_embeds(processor.preprocess(image)), model->text_embeds(ids, mask), a.weight)
          .squeeze(0)
          .to(at::kDouble)
          .contiguous();
  const double* s = scores.data_ptr<double>();
  if (a.json) {
    std::printf("[");
    for (int64_t i = 0; i < n; ++i)
      std::printf("%s{\"text\": \"%s\", \"clipscore\": %.6f}", i ? ", " : "", json_escape(a.texts[size_t(i)]).c_str(),
                  s[i]);
    std::printf("]\n");
    return;
  }
  for (int64_t i = 0; i < n; ++i) {
    if (n == 1) {
      std::printf("%.4f\n", s[i]);
    } else {
      std::printf("%.4f\t%s\n", s[i], a.texts[size_t(i)].c_str());
    }
  }
}

}  // namespace

void add_score_command(CLI::App& app) {
  auto* c = app.add_subcommand("score", "CLIPScore of captions for an image: 2.5 * max(cos(image, text), 0)");
  auto a = std::make_shared<ScoreArgs>();
  c->add_option("IMAGE", a->image, "PNG, JPEG or WebP file ('-' for stdin)")->required();
  c->add_option("TEXT", a->texts, "One or more captions (one score per caption)")->required();
  c->add_option("--model", a->model,
                std::string("transformers CLIPModel folder or hub repo id (default: ") + kDefaultClipRepo + ")");
  c->add_option("--weight", a->weight, "CLIPScore weight w (default 2.5, as Hessel et al.)")
      ->check(CLI::PositiveNumber);
  c->add_flag("--prefix", a->prefix,
              "Prefix captions with 'A photo depicts ', as the CLIPScore reference implementation");
  c->add_flag("--json", a->json, "Print JSON");
  c->add_flag("--no-pull", a->no_pull, "Never download a missing model");
  c->callback([a] { run_score(*a); });
}

}  // namespace pictor::cli
