// `pictor generate PROMPT`: text-to-image, img2img (--init) and inpainting (--mask).
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>

#include "cli/commands.hpp"
#include "cli/progress_line.hpp"
#include "core/error.hpp"
#include "formats/image.hpp"
#include "pictor/text_to_image.hpp"

namespace fs = std::filesystem;

namespace pictor::cli {

namespace {

struct GenerateArgs {
  std::string prompt, negative, size, sampler, init, mask, model, vae, out, noise = "cpu";
  int steps = 0, count = 1, threads = 0, clip_skip = 1;
  double guidance = -1, strength = 0.75;
  long long seed = -1;
  bool taesd_decode = false, no_pull = false;
};

void parse_size(const std::string& s, int* w, int* h) {
  const auto x = s.find_first_of("xX");
  try {
    if (x == std::string::npos) throw std::invalid_argument(s);
    size_t used = 0;
    *w = std::stoi(s.substr(0, x), &used);
    if (used != x) throw std::invalid_argument(s);
    *h = std::stoi(s.substr(x + 1), &used);
    if (used != s.size() - x - 1) throw std::invalid_argument(s);
  } catch (const std::logic_error&) {
    throw Error("--size '" + s + "' must look like WIDTHxHEIGHT, e.g. 512x512");
  }
  if (*w <= 0 || *h <= 0 || *w % 8 || *h % 8)
    throw Error("--size " + s + ": width and height must be positive multiples of 8");
}

// out.png -> out-1.png for the second image of a batch.
fs::path output_path(const std::string& out, uint64_t seed, int k, int count) {
  if (out.empty()) return "pictor-" + std::to_string(seed) + ".png";
  if (count == 1) return out;
  fs::path p(out);
  return p.parent_path() / (p.stem().string() + "-" + std::to_string(k) + p.extension().string());
}

void run_generate(const GenerateArgs& a) {
  GenerateOptions o;
  o.prompt = a.prompt;
  o.negative_prompt = a.negative;
  if (!a.size.empty()) parse_size(a.size, &o.width, &o.height);
  o.steps = a.steps;
  o.guidance = a.guidance;
  o.sampler = a.sampler;
  if (a.seed >= 0) o.seed = static_cast<uint64_t>(a.seed);
  o.count = a.count;
  o.noise = a.noise;
  o.clip_skip = a.clip_skip;
  o.strength = a.strength;
  if (!a.init.empty()) o.init_image = read_image(a.init);
  if (!a.mask.empty()) {
    if (a.init.empty()) throw Error("--mask needs --init IMAGE (the picture to inpaint)");
    o.mask = read_image(a.mask);
  }
  // Check the output name before spending minutes on generation.
  if (!a.out.empty()) {
    const std::string ext = fs::path(a.out).extension().string();
    if (ext != ".png" && ext != ".jpg" && ext != ".jpeg" && ext != ".webp")
      throw Error("--out " + a.out + ": use a .png, .jpg or .webp file name");
  }

  const std::string dir = resolve_model_dir(a.model, !a.no_pull);
  LoadOptions lo;
  lo.threads = a.threads;
  lo.taesd_dir = a.vae;
  lo.decode_with_taesd = a.taesd_decode;
  auto engine = TextToImage::load(dir, lo);
  const GenerateOptions resolved = engine->resolve(o);
  std::fprintf(stderr, "pictor: %s, %dx%d, %d steps, %s, guidance %.2g, seed %llu\n", engine->model_name().c_str(),
               resolved.width, resolved.height, resolved.steps, resolved.sampler.c_str(), resolved.guidance,
               static_cast<unsigned long long>(*resolved.seed));

  std::unique_ptr<ProgressLine> bar;
  int current = -1;
  auto images = engine->generate(resolved, [&](const Progress& p) {
    if (p.image_index != current) {
      if (bar) bar->finish();
      current = p.image_index;
      bar = std::make_unique<ProgressLine>(resolved.count > 1 ? "image " + std::to_string(p.image_index + 1) + "/" +
                                                                    std::to_string(resolved.count)
                                                              : "steps");
    }
    bar->update(p.step, p.total, p.elapsed_s, p.eta_s);
    return true;
  });
  if (bar) bar->finish();
  for (size_t k = 0; k < images.size(); ++k) {
    const fs::path path = output_path(a.out, images[k].seed, static_cast<int>(k), static_cast<int>(images.size()));
    write_image(path, images[k].image, {{"parameters", images[k].parameters}});
    std::printf("%s\n", path.string().c_str());
  }
}

}  // namespace

void add_generate_command(CLI::App& app) {
  auto a = std::make_shared<GenerateArgs>();
  auto* c = app.add_subcommand("generate", "Generate images from a text prompt (txt2img, img2img, inpainting)");
  c->add_option("PROMPT", a->prompt, "What to draw. Weights: (word:1.3), (word), [word]; BREAK starts a new chunk")
      ->required();
  c->add_option("--negative", a->negative, "Negative prompt: what to avoid");
  c->add_option("--steps", a->steps, "Denoising steps (default: 1 for SD-Turbo, else 25)")->check(CLI::Range(1, 1000));
  c->add_option("--guidance", a->guidance, "Classifier-free guidance scale (default: 0 for SD-Turbo, else 7.5)")
      ->check(CLI::Range(0.0, 100.0));
  c->add_option("--seed", a->seed, "Seed (default: random; printed and stored in the PNG)")
      ->check(CLI::NonNegativeNumber);
  c->add_option("--size", a->size, "Output size WIDTHxHEIGHT, multiples of 8 (default: the model's native size)");
  c->add_option("--sampler", a->sampler,
                "Sampler: euler, euler_a, dpmpp_2m, dpmpp_2m_karras, ddim, lcm (default: from the model's scheduler)");
  c->add_option("-n,--count", a->count, "Number of images; image k uses seed + k")->check(CLI::Range(1, 64));
  c->add_option("--init", a->init, "Init image for img2img (PNG, JPEG or WebP)");
  c->add_option("--strength", a->strength, "img2img/inpaint strength: 0 keeps the init image, 1 repaints fully")
      ->check(CLI::Range(0.01, 1.0));
  c->add_option("--mask", a->mask, "Inpainting mask (white = repaint); needs --init");
  c->add_option("--model", a->model,
                "Model folder (diffusers layout) or hub repo id (default: stabilityai/sd-turbo, pulled on first use)");
  c->add_option("--vae", a->vae, "TAESD (AutoencoderTiny) folder for fast decoding");
  c->add_flag("--taesd-decode", a->taesd_decode, "Decode the final image with the --vae TAESD decoder");
  c->add_option("--noise", a->noise, "Seed noise: cpu (diffusers/ComfyUI, default) or a1111 (AUTOMATIC1111 GPU)")
      ->check(CLI::IsMember({"cpu", "a1111"}));
  c->add_option("--clip-skip", a->clip_skip, "Use the text encoder's Nth-from-last layer (A1111 'Clip skip')")
      ->check(CLI::Range(1, 12));
  c->add_option("--out,-o", a->out, "Output file (.png with parameters, .jpg, .webp); default pictor-SEED.png");
  c->add_option("--threads", a->threads, "Compute threads (default: all cores)");
  c->add_flag("--no-pull", a->no_pull, "Never download a missing model");
  c->callback([a] { run_generate(*a); });
}

}  // namespace pictor::cli
