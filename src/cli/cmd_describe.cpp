// `pictor describe IMAGE...`: captions, alt text and descriptions with a vision-language model. A folder
// argument is walked for image files and captioned into a JSONL file, resumably (a re-run skips the
// images already in the file for the same style).
#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "cli/commands.hpp"
#include "core/error.hpp"
#include "formats/image.hpp"
#include "pictor/image_to_text.hpp"

namespace fs = std::filesystem;

namespace pictor::cli {

namespace {

struct DescribeArgs {
  std::vector<std::string> inputs;
  std::string model, prompt, style, out;
  int max_tokens = 0, top_k = 0, threads = 0;
  long long seed = -1;
  double temperature = 0, top_p = 1.0;
  bool stream = false, together = false, no_pull = false, int8 = false;
};

// One image to describe: a file given on the command line, found in a folder, or stdin ("-").
struct Item {
  std::string path;
  bool from_folder = false;
  // Files named on the command line are read before the model loads, so a bad file fails fast; folder
  // files are read one at a time (a folder can be large).
  std::optional<Image> image;
  std::string error;
};

bool is_image_name(const fs::path& p) {
  std::string ext = p.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return char(std::tolower(c)); });
  return ext == ".png" || ext == ".jpg" || ext == ".jpeg" || ext == ".webp";
}

// Files of a folder (recursively, sorted so runs are reproducible), hidden entries skipped.
std::vector<Item> walk_folder(const fs::path& dir) {
  std::vector<std::string> found;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, fs::directory_options::skip_permission_denied, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (!name.empty() && name[0] == '.') {
      if (it->is_directory()) it.disable_recursion_pending();
      continue;
    }
    if (it->is_regular_file() && is_image_name(it->path())) found.push_back(it->path().generic_string());
  }
  if (ec) throw Error("cannot list folder '" + dir.string() + "': " + ec.message());
  std::sort(found.begin(), found.end());
  std::vector<Item> items;
  for (auto& f : found) items.push_back({std::move(f), true, std::nullopt, {}});
  return items;
}

std::string utc_now() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string done_key(const std::string& path, const std::string& style) {
  return fs::path(path).lexically_normal().generic_string() + "\n" + style;
}

// Keys (path + style) of the records already in a captions file. A torn last line (an interrupted run)
// is ignored, so that image is described again.
std::set<std::string> read_done(const fs::path& file) {
  std::set<std::string> done;
  std::ifstream in(file);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    try {
      const auto j = nlohmann::json::parse(line);
      if (j.contains("path") && j["path"].is_string() && j.contains("text"))
        done.insert(done_key(j["path"].get<std::string>(), j.value("style", std::string())));
    } catch (const nlohmann::json::exception&) {
    }
  }
  return done;
}

class CaptionsFile {
 public:
  explicit CaptionsFile(const fs::path& path) : path_(path) {
    if (path.has_parent_path()) fs::create_directories(path.parent_path());
    // A file that does not end with a line break was cut mid-record: start on a fresh line.
    bool needs_newline = false;
    {
      std::ifstream in(path, std::ios::binary | std::ios::ate);
      if (in && in.tellg() > 0) {
        in.seekg(-1, std::ios::end);
        needs_newline = in.get() != '\n';
      }
    }
    out_.open(path, std::ios::app | std::ios::binary);
    if (!out_) throw Error("--out " + path.string() + ": cannot open for writing");
    if (needs_newline) out_ << "\n";
  }
  void write(const nlohmann::json& record) {
    out_ << record.dump() << "\n";
    out_.flush();  // one complete line per image, so an interrupted run resumes where it stopped
    if (!out_) throw Error("--out " + path_.string() + ": write failed");
  }

 private:
  fs::path path_;
  std::ofstream out_;
};

void run_describe(const DescribeArgs& a) {
  // Inputs: files, "-" (stdin) and folders.
  std::vector<Item> items;
  std::vector<std::string> folders;
  for (const auto& in : a.inputs) {
    if (in != "-" && fs::is_directory(in)) {
      folders.push_back(in);
      auto found = walk_folder(in);
      if (found.empty()) std::fprintf(stderr, "pictor: no PNG, JPEG or WebP files in folder '%s'\n", in.c_str());
      items.insert(items.end(), found.begin(), found.end());
    } else {
      items.push_back({in, false, std::nullopt, {}});
    }
  }
  if (std::count_if(a.inputs.begin(), a.inputs.end(), [](const std::string& s) { return s == "-"; }) > 1)
    throw Error("stdin ('-') can be given only once");
  std::string out = a.out;
  if (out.empty() && !folders.empty()) {
    if (folders.size() > 1) throw Error("several folders given: choose the captions file with --out FILE.jsonl");
    out = (fs::path(folders[0]) / "captions.jsonl").string();
  }
  if (a.together && !folders.empty())
    throw Error("--together describes the given files in one request; not for folders");

  DescribeOptions opts;
  opts.prompt = a.prompt;
  opts.style = a.style;
  opts.max_tokens = a.max_tokens;
  if (a.seed >= 0) opts.seed = static_cast<uint64_t>(a.seed);
  opts.temperature = a.temperature;
  opts.top_p = a.top_p;
  opts.top_k = a.top_k;
  const std::string style_label = a.style.empty() ? (a.prompt.empty() ? "caption" : "custom") : a.style;

  std::set<std::string> done;
  if (!out.empty()) done = read_done(out);
  size_t skipped = 0;
  std::vector<Item> todo;
  for (auto& it : items) {
    if (it.path != "-" && done.count(done_key(it.path, style_label))) {
      ++skipped;
      continue;
    }
    todo.push_back(std::move(it));
  }
  if (skipped) std::fprintf(stderr, "pictor: %zu images already in %s, skipped\n", skipped, out.c_str());
  if (todo.empty()) {
    if (!items.empty() || !folders.empty()) return;
    throw Error("no images to describe");
  }

  size_t unreadable = 0;
  for (auto& it : todo) {
    if (it.from_folder) continue;
    try {
      it.image = read_image(it.path);
    } catch (const Error& e) {
      it.error = e.what();
      ++unreadable;
    }
  }
  if (unreadable == todo.size()) {  // nothing left to describe: no need to load the model
    if (todo.size() == 1) throw Error(todo[0].error);
    for (const auto& it : todo) std::fprintf(stderr, "pictor: error: %s\n", it.error.c_str());
    throw Error("none of the " + std::to_string(todo.size()) + " images could be read");
  }
  if (a.together && unreadable)
    throw Error(std::find_if(todo.begin(), todo.end(), [](const Item& it) { return !it.error.empty(); })->error);

  const std::string model_id = a.model.empty() ? std::string(kDefaultVlmRepo) : a.model;
  const std::string dir = resolve_vlm_model_dir(a.model, !a.no_pull);
  auto engine = ImageToText::load(dir, a.threads, a.int8);
  const DescribeOptions shown = engine->resolve(opts);
  const std::string decoding = shown.temperature > 0 ? "temperature " + std::to_string(shown.temperature) + ", seed " +
                                                           std::to_string(*shown.seed)
                                                     : "greedy";
  std::fprintf(stderr, "pictor: %s (%s), style %s, max %d tokens, %s\n", engine->model_name().c_str(),
               engine->family().c_str(), style_label.c_str(), shown.max_tokens, decoding.c_str());

  std::unique_ptr<CaptionsFile> captions;
  if (!out.empty()) captions = std::make_unique<CaptionsFile>(out);
  const bool headers = todo.size() > 1 && !a.together;
  auto stream_to_stdout = [](const std::string& piece) {
    std::fwrite(piece.data(), 1, piece.size(), stdout);
    std::fflush(stdout);
    return true;
  };

  auto describe_and_report = [&](const std::vector<Image>& images) {
    DescribeOptions o = opts;
    o.images = images;
    if (a.stream) {
      const Description d = engine->describe(o, stream_to_stdout);
      std::printf("\n");
      return d;
    }
    return engine->describe(o);
  };
  auto record = [&](const nlohmann::json& path_field, const Description& d) {
    if (!captions) return;
    captions->write({{"path", path_field},
                     {"style", style_label},
                     {"text", d.text},
                     {"model", model_id},
                     {"time", utc_now()},
                     {"seconds", std::round(d.seconds * 1000) / 1000},
                     {"seed", d.seed},
                     {"new_tokens", d.new_tokens},
                     {"truncated", d.truncated}});
  };

  if (a.together) {
    std::vector<Image> images;
    nlohmann::json paths = nlohmann::json::array();
    for (auto& it : todo) {
      images.push_back(std::move(*it.image));
      paths.push_back(it.path);
    }
    const Description d = describe_and_report(images);
    if (!a.stream) std::printf("%s\n", d.text.c_str());
    record(paths, d);
    return;
  }

  size_t failed_files = 0, failed_folder = 0, described = 0;
  for (size_t k = 0; k < todo.size(); ++k) {
    Item& it = todo[k];
    if (it.from_folder) {
      try {
        it.image = read_image(it.path);
      } catch (const Error& e) {
        it.error = e.what();
      }
    }
    if (!it.image) {
      // One bad file never stops a batch: report it and go on (a re-run retries it: nothing is recorded).
      std::fprintf(stderr, "pictor: error: %s%s\n", it.error.c_str(), it.from_folder ? " (skipped)" : "");
      ++(it.from_folder ? failed_folder : failed_files);
      continue;
    }
    const Image image = std::move(*it.image);
    it.image.reset();
    if (headers) {
      std::printf("%s==> %s <==\n", described ? "\n" : "", it.path.c_str());
      std::fflush(stdout);
    }
    const Description d = describe_and_report({image});
    if (!a.stream) std::printf("%s\n", d.text.c_str());
    std::fflush(stdout);
    record(it.path, d);
    ++described;
  }
  if (todo.size() > 1 || failed_folder)
    std::fprintf(stderr, "pictor: described %zu, skipped %zu done, %zu unreadable%s%s\n", described, skipped,
                 failed_files + failed_folder, out.empty() ? "" : ", captions in ", out.c_str());
  if (failed_files)
    throw Error(std::to_string(failed_files) + (failed_files == 1 ? " image" : " images") + " could not be read");
}

}  // namespace

void add_describe_command(CLI::App& app) {
  auto a = std::make_shared<DescribeArgs>();
  auto* c = app.add_subcommand("describe", "Describe images: captions, alt text, detailed or product descriptions");
  c->add_option("IMAGE", a->inputs,
                "PNG, JPEG or WebP files, '-' for stdin, or folders (captioned into FOLDER/captions.jsonl)")
      ->required();
  c->add_option("--model", a->model,
                std::string("Model folder (transformers layout: SmolVLM/Idefics3 or LLaVA) or hub repo id (default: ") +
                    kDefaultVlmRepo + ", pulled on first use)");
  c->add_option("--prompt", a->prompt, "Your own instruction instead of the style's preset prompt");
  c->add_option("--style", a->style,
                "alt (one sentence, <=150 chars), caption (one line, default), detailed (paragraphs), product "
                "(title, features, colours/materials)")
      ->check(CLI::IsMember({"alt", "caption", "detailed", "product"}));
  c->add_option("--max-tokens", a->max_tokens,
                "New-token budget (default: 64 for alt/caption, 400 detailed, 300 product)")
      ->check(CLI::Range(1, 4096));
  c->add_option("--seed", a->seed, "Sampling seed (with --temperature)")->check(CLI::NonNegativeNumber);
  c->add_option("--temperature", a->temperature, "Sampling temperature (default 0: greedy, deterministic)")
      ->check(CLI::Range(0.0, 10.0));
  c->add_option("--top-p", a->top_p, "Nucleus sampling threshold (default 1: off)")->check(CLI::Range(0.01, 1.0));
  c->add_option("--top-k", a->top_k, "Top-k sampling (default 0: off)")->check(CLI::NonNegativeNumber);
  c->add_flag("--stream", a->stream, "Print the text as it is generated (before the style's clean-up)");
  c->add_flag("--together", a->together, "Send all the given images in one request (e.g. \"compare these\")");
  c->add_option("--out,-o", a->out,
                "Append JSON lines {path, style, text, model, time, ...} here; images already in it are skipped");
  c->add_option("--threads", a->threads, "Compute threads (default: all cores)");
  c->add_flag("--int8", a->int8,
              "Language model weights as int8 with per-row scales: ~2x faster decoding, a quarter of the memory, "
              "slightly different text (see docs/PERFORMANCE.md)");
  c->add_flag("--no-pull", a->no_pull, "Never download a missing model");
  c->callback([a] { run_describe(*a); });
}

}  // namespace pictor::cli
