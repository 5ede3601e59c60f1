#pragma once
// The models a server offers: every folder under the models directory is one model whose id is the folder
// name. Its kind is read from the files (model_index.json: a diffusers Stable Diffusion pipeline →
// text-to-image; config.json of Idefics3/SmolVLM or LLaVA → image-to-text). Engines are loaded on first use
// and kept in an LRU cache bounded by a memory budget (the fp32 size of their weights); a model in use is
// never evicted.
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "pictor/image_to_text.hpp"
#include "pictor/text_to_image.hpp"

namespace pictor::jobs {

enum class ModelKind { TextToImage, ImageToText };

struct ModelInfo {
  std::string id;
  std::filesystem::path dir;
  ModelKind kind = ModelKind::TextToImage;
  uint64_t weight_bytes = 0;                          // fp32 size of all weights: the cache's cost of keeping it loaded
  double created = 0;                                 // folder modification time (Unix seconds)
  std::vector<std::string> input_modalities() const;  // ["text"] or ["text","image"]
  std::vector<std::string> output_modalities() const;  // ["image"] or ["text"]
};

struct CatalogOptions {
  std::filesystem::path models_dir;
  uint64_t memory_budget = 0;  // bytes; 0: 3/4 of physical memory
  LoadOptions load;            // TAESD previews etc. for text-to-image engines
};

class ModelCatalog {
 public:
  explicit ModelCatalog(CatalogOptions options);

  std::vector<ModelInfo> list();  // rescans the folder (new models appear without a restart)
  std::optional<ModelInfo> find(const std::string& id);
  // The model used when a request names none: the first of that kind by id.
  std::optional<ModelInfo> default_model(ModelKind kind);

  // Loaded engines; the shared_ptr keeps the engine alive while a job uses it even if it is evicted.
  std::shared_ptr<TextToImage> text_to_image(const std::string& id);
  std::shared_ptr<ImageToText> image_to_text(const std::string& id);

  struct CacheEntry {
    std::string id;
    uint64_t bytes;
  };
  std::vector<CacheEntry> loaded();  // most recently used first
  uint64_t memory_budget() const { return options_.memory_budget; }
  bool has_previews() const { return !options_.load.taesd_dir.empty(); }  // a TAESD decoder is configured

 private:
  struct Loaded {
    std::string id;
    uint64_t bytes = 0;
    std::shared_ptr<TextToImage> t2i;
    std::shared_ptr<ImageToText> i2t;
  };
  Loaded acquire(const ModelInfo& info);
  void evict_for(uint64_t bytes);

  CatalogOptions options_;
  std::mutex mutex_;
  std::mutex load_mutex_;  // one load at a time: two loads at once would double peak memory
  std::list<Loaded> lru_;  // front: most recently used
};

// Detects a model folder's kind; nullopt when it is neither (ignored by the catalog).
std::optional<ModelKind> detect_model_kind(const std::filesystem::path& dir);
// Sum of the fp32 sizes of every tensor in the folder's .safetensors files (read from their headers).
uint64_t model_weight_bytes(const std::filesystem::path& dir);

}  // namespace pictor::jobs
