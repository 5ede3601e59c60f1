#include "jobs/model_catalog.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <map>

#include <nlohmann/json.hpp>

#include "core/error.hpp"

namespace fs = std::filesystem;

namespace pictor::jobs {

std::vector<std::string> ModelInfo::input_modalities() const {
  // Both kinds read text and images: image models take init images and masks (edits, img2img).
  return {"text", "image"};
}
std::vector<std::string> ModelInfo::output_modalities() const {
  return kind == ModelKind::TextToImage ? std::vector<std::string>{"image"} : std::vector<std::string>{"text"};
}

namespace {

nlohmann::json read_json(const fs::path& file) {
  std::ifstream in(file);
  auto j = nlohmann::json::parse(in, nullptr, false);
  return j.is_discarded() ? nlohmann::json() : j;
}

// fp32 bytes of the tensors in one .safetensors file, from its JSON header only.
uint64_t safetensors_fp32_bytes(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  uint8_t len_bytes[8];
  if (!in.read(reinterpret_cast<char*>(len_bytes), 8)) return 0;
  uint64_t len = 0;
  for (int i = 7; i >= 0; --i) len = (len << 8) | len_bytes[i];
  if (len > (100u << 20)) return 0;  // not a plausible header; the loader will report the file properly
  std::string header(len, '\0');
  if (!in.read(header.data(), std::streamsize(len))) return 0;
  auto j = nlohmann::json::parse(header, nullptr, false);
  if (!j.is_object()) return 0;
  uint64_t total = 0;
  for (auto& [name, info] : j.items()) {
    if (name == "__metadata__" || !info.is_object() || !info.contains("shape")) continue;
    uint64_t numel = 1;
    for (auto& d : info["shape"])
      if (d.is_number_unsigned()) numel *= d.get<uint64_t>();
    total += numel * 4;
  }
  return total;
}

}  // namespace

std::optional<ModelKind> detect_model_kind(const fs::path& dir) {
  std::error_code ec;
  if (fs::exists(dir / "model_index.json", ec) && fs::exists(dir / "unet", ec)) return ModelKind::TextToImage;
  if (fs::exists(dir / "config.json", ec)) {
    auto cfg = read_json(dir / "config.json");
    if (!cfg.is_object()) return std::nullopt;
    std::string type = cfg.value("model_type", "");
    std::string arch;
    if (cfg.contains("architectures") && cfg["architectures"].is_array() && !cfg["architectures"].empty() &&
        cfg["architectures"][0].is_string())
      arch = cfg["architectures"][0].get<std::string>();
    if (type == "idefics3" || type == "llava" || arch == "Idefics3ForConditionalGeneration" ||
        arch == "LlavaForConditionalGeneration")
      return ModelKind::ImageToText;
  }
  return std::nullopt;
}

uint64_t model_weight_bytes(const fs::path& dir) {
  // Folders may carry the same weights twice (x.safetensors and x.fp16.safetensors); the loader reads one.
  std::map<std::string, uint64_t> by_stem;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::recursive_directory_iterator();
       it.increment(ec)) {
    if (!it->is_regular_file(ec) || it->path().extension() != ".safetensors") continue;
    std::string key = it->path().string();
    auto pos = key.find(".fp16.");
    if (pos != std::string::npos) key.erase(pos, 5);
    by_stem[key] = std::max(by_stem[key], safetensors_fp32_bytes(it->path()));
  }
  uint64_t total = 0;
  for (auto& [k, v] : by_stem) total += v;
  return total;
}

ModelCatalog::ModelCatalog(CatalogOptions options) : options_(std::move(options)) {
  if (options_.memory_budget == 0) {
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    options_.memory_budget = pages > 0 && page > 0 ? uint64_t(pages) * uint64_t(page) / 4 * 3 : (8ull << 30);
  }
}

std::vector<ModelInfo> ModelCatalog::list() {
  std::vector<ModelInfo> out;
  std::error_code ec;
  if (!fs::is_directory(options_.models_dir, ec)) return out;
  for (auto& entry : fs::directory_iterator(options_.models_dir, ec)) {
    if (!entry.is_directory(ec)) continue;
    auto kind = detect_model_kind(entry.path());
    if (!kind) continue;
    ModelInfo info;
    info.id = entry.path().filename().string();
    info.dir = entry.path();
    info.kind = *kind;
    info.weight_bytes = model_weight_bytes(entry.path());
    struct stat st {};
    if (::stat(entry.path().c_str(), &st) == 0) info.created = double(st.st_mtime);
    out.push_back(std::move(info));
  }
  std::sort(out.begin(), out.end(), [](const ModelInfo& a, const ModelInfo& b) { return a.id < b.id; });
  return out;
}

std::optional<ModelInfo> ModelCatalog::find(const std::string& id) {
  // Ids are folder names: never let one climb out of the models directory.
  if (id.empty() || id == "." || id == ".." || id.find('/') != std::string::npos ||
      id.find('\\') != std::string::npos || id.find('\0') != std::string::npos)
    return std::nullopt;
  for (auto& m : list())
    if (m.id == id) return m;
  return std::nullopt;
}

std::optional<ModelInfo> ModelCatalog::default_model(ModelKind kind) {
  for (auto& m : list())
    if (m.kind == kind) return m;
  return std::nullopt;
}

void ModelCatalog::evict_for(uint64_t bytes) {
  // With mutex_ held. Evicts least recently used engines that no job holds until `bytes` fit.
  uint64_t used = 0;
  for (auto& l : lru_) used += l.bytes;
  for (auto it = lru_.end(); it != lru_.begin() && used + bytes > options_.memory_budget;) {
    --it;
    bool idle = (it->t2i ? it->t2i.use_count() == 1 : true) && (it->i2t ? it->i2t.use_count() == 1 : true);
    if (!idle) continue;
    used -= it->bytes;
    it = lru_.erase(it);
  }
}

ModelCatalog::Loaded ModelCatalog::acquire(const ModelInfo& info) {
  // Returns copies of the engine pointers: the caller's reference keeps them alive (and unevictable)
  // even if the cache entry goes.
  {
    std::lock_guard lock(mutex_);
    for (auto it = lru_.begin(); it != lru_.end(); ++it)
      if (it->id == info.id) {
        lru_.splice(lru_.begin(), lru_, it);
        return lru_.front();
      }
  }
  std::lock_guard load_lock(load_mutex_);
  {
    std::lock_guard lock(mutex_);  // another thread may have loaded it while we waited
    for (auto it = lru_.begin(); it != lru_.end(); ++it)
      if (it->id == info.id) {
        lru_.splice(lru_.begin(), lru_, it);
        return lru_.front();
      }
    evict_for(info.weight_bytes);
  }
  Loaded loaded;
  loaded.id = info.id;
  loaded.bytes = info.weight_bytes;
  if (info.kind == ModelKind::TextToImage)
    loaded.t2i = TextToImage::load(info.dir.string(), options_.load);
  else {
    loaded.i2t = ImageToText::load(info.dir.string(), options_.load.threads, options_.load.int8_decoder);
    // The estimate counts every weight at fp32; int8 language-model weights take about a quarter.
    const int64_t saved = loaded.i2t->int8_saved_bytes();
    if (saved > 0) loaded.bytes -= std::min<uint64_t>(loaded.bytes, uint64_t(saved));
  }
  std::lock_guard lock(mutex_);
  lru_.push_front(std::move(loaded));
  return lru_.front();
}

std::shared_ptr<TextToImage> ModelCatalog::text_to_image(const std::string& id) {
  auto info = find(id);
  if (!info) throw Error("model \"" + id + "\" not found in " + options_.models_dir.string());
  if (info->kind != ModelKind::TextToImage) throw Error("model \"" + id + "\" does not generate images");
  return acquire(*info).t2i;
}

std::shared_ptr<ImageToText> ModelCatalog::image_to_text(const std::string& id) {
  auto info = find(id);
  if (!info) throw Error("model \"" + id + "\" not found in " + options_.models_dir.string());
  if (info->kind != ModelKind::ImageToText) throw Error("model \"" + id + "\" does not describe images");
  return acquire(*info).i2t;
}

std::vector<ModelCatalog::CacheEntry> ModelCatalog::loaded() {
  std::lock_guard lock(mutex_);
  std::vector<CacheEntry> out;
  for (auto& l : lru_) out.push_back({l.id, l.bytes});
  return out;
}

}  // namespace pictor::jobs
