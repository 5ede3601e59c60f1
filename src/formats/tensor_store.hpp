#pragma once
// TensorStore: named tensors from one safetensors file or a sharded set (`*.safetensors.index.json`),
// memory-mapped and converted on access. Floating types (F16/BF16/F32/F64) load as float32, integer
// types as int64, BOOL as bool, U8 as uint8.
#include <ATen/core/Tensor.h>

#include <filesystem>
#include <memory>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "formats/safetensors.hpp"

namespace pictor {

class TensorStore {
 public:
  TensorStore() = default;
  // One .safetensors file.
  static TensorStore open_file(const std::filesystem::path& file);
  // A sharded checkpoint: the index JSON maps tensor names to shard files in the same folder.
  static TensorStore open_index(const std::filesystem::path& index_json);
  // Finds the weights in a diffusers/transformers component folder: `<base>.safetensors`,
  // `<base>.safetensors.index.json` or a variant (`<base>.fp16.safetensors`), for the usual bases
  // (diffusion_pytorch_model, model). Errors name the folder and the files looked for.
  static TensorStore open_dir(const std::filesystem::path& dir);

  bool has(const std::string& name) const { return index_.count(name) > 0; }
  std::vector<std::string> names() const;
  const TensorEntry& entry(const std::string& name) const;
  std::string file_of(const std::string& name) const;
  at::Tensor get(const std::string& name) const;
  size_t size() const { return index_.size(); }
  const std::string& origin() const { return origin_; }

 private:
  std::vector<std::shared_ptr<SafetensorsFile>> files_;
  std::unordered_map<std::string, std::pair<size_t, const TensorEntry*>> index_;
  std::string origin_;
  void add_file(std::shared_ptr<SafetensorsFile> f);
};

// Saves tensors (moved to CPU, contiguous) as a safetensors file; `as_f16` stores floats as F16.
void save_tensors(const std::filesystem::path& file, const std::vector<std::pair<std::string, at::Tensor>>& tensors,
                  bool as_f16 = false);

}  // namespace pictor
