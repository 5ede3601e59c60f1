#include "formats/tensor_store.hpp"

#include <ATen/ATen.h>

#include "core/error.hpp"
#include "core/json_file.hpp"

namespace fs = std::filesystem;

namespace pictor {

void TensorStore::add_file(std::shared_ptr<SafetensorsFile> f) {
  size_t idx = files_.size();
  files_.push_back(f);
  for (const auto& [name, e] : f->header().tensors) {
    if (index_.count(name)) throw Error(f->path() + ": tensor '" + name + "' also appears in another shard");
    index_[name] = {idx, &e};
  }
}

TensorStore TensorStore::open_file(const fs::path& file) {
  TensorStore s;
  s.origin_ = file.string();
  s.add_file(std::make_shared<SafetensorsFile>(file.string()));
  return s;
}

TensorStore TensorStore::open_index(const fs::path& index_json) {
  JsonConfig idx = JsonConfig::load(index_json);
  if (!idx.has("weight_map") || !idx.raw()["weight_map"].is_object())
    throw Error(index_json.string() + ": missing object field 'weight_map'");
  std::map<std::string, std::vector<std::string>> by_shard;
  for (auto it = idx.raw()["weight_map"].begin(); it != idx.raw()["weight_map"].end(); ++it) {
    if (!it.value().is_string())
      throw Error(index_json.string() + ": weight_map['" + it.key() + "'] is not a file name");
    std::string shard = it.value().get<std::string>();
    if (shard.find('/') != std::string::npos || shard == "..")
      throw Error(index_json.string() + ": shard name '" + shard + "' must be a plain file name");
    by_shard[shard].push_back(it.key());
  }
  TensorStore s;
  s.origin_ = index_json.string();
  for (const auto& [shard, names] : by_shard) {
    auto f = std::make_shared<SafetensorsFile>((index_json.parent_path() / shard).string());
    for (const auto& n : names)
      if (!f->header().tensors.count(n))
        throw Error(index_json.string() + ": tensor '" + n + "' is mapped to " + shard + " but that shard lacks it");
    s.add_file(f);
  }
  return s;
}

TensorStore TensorStore::open_dir(const fs::path& dir) {
  if (!fs::is_directory(dir)) throw Error(dir.string() + ": model folder not found");
  const char* bases[] = {"diffusion_pytorch_model", "model"};
  const char* variants[] = {"", ".fp16", ".fp32", ".bf16"};
  std::string tried;
  for (const char* base : bases) {
    for (const char* var : variants) {
      fs::path single = dir / (std::string(base) + var + ".safetensors");
      fs::path index = dir / (std::string(base) + var + ".safetensors.index.json");
      if (fs::exists(single)) return open_file(single);
      if (fs::exists(index)) return open_index(index);
      tried += " " + single.filename().string();
    }
  }
  throw Error(dir.string() + ": no safetensors weights found (looked for" + tried +
              " and their .index.json; .bin/.ckpt pickles are not supported, convert them to safetensors)");
}

std::vector<std::string> TensorStore::names() const {
  std::vector<std::string> out;
  for (const auto& [n, _] : index_) out.push_back(n);
  std::sort(out.begin(), out.end());
  return out;
}

const TensorEntry& TensorStore::entry(const std::string& name) const {
  auto it = index_.find(name);
  if (it == index_.end()) throw Error(origin_ + ": missing tensor '" + name + "'");
  return *it->second.second;
}

std::string TensorStore::file_of(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? origin_ : files_[it->second.first]->path();
}

at::Tensor TensorStore::get(const std::string& name) const {
  auto it = index_.find(name);
  if (it == index_.end()) throw Error(origin_ + ": missing tensor '" + name + "'");
  const auto& file = *files_[it->second.first];
  const TensorEntry& e = *it->second.second;
  const uint8_t* src = file.bytes(e);
  const size_t n = e.numel();
  switch (e.dtype) {
    case DType::F32:
    case DType::F16:
    case DType::BF16:
    case DType::F64: {
      at::Tensor t = at::empty(e.shape, at::kFloat);
      convert_to_f32(e.dtype, src, n, t.data_ptr<float>());
      return t;
    }
    case DType::I64: {
      at::Tensor t = at::empty(e.shape, at::kLong);
      std::memcpy(t.data_ptr<int64_t>(), src, n * 8);
      return t;
    }
    case DType::I32:
    case DType::I16:
    case DType::I8: {
      at::Tensor t = at::empty(e.shape, at::kLong);
      auto* d = t.data_ptr<int64_t>();
      size_t w = dtype_size(e.dtype);
      for (size_t i = 0; i < n; ++i) {
        if (w == 4) {
          int32_t v;
          std::memcpy(&v, src + 4 * i, 4);
          d[i] = v;
        } else if (w == 2) {
          int16_t v;
          std::memcpy(&v, src + 2 * i, 2);
          d[i] = v;
        } else
          d[i] = static_cast<int8_t>(src[i]);
      }
      return t;
    }
    case DType::U8:
    case DType::BOOL: {
      at::Tensor t = at::empty(e.shape, e.dtype == DType::BOOL ? at::kBool : at::kByte);
      std::memcpy(t.data_ptr(), src, n);
      return t;
    }
  }
  throw Error(origin_ + ": tensor '" + name + "' has an unsupported dtype");
}

void save_tensors(const fs::path& file, const std::vector<std::pair<std::string, at::Tensor>>& tensors, bool as_f16) {
  std::vector<at::Tensor> keep;
  std::vector<RawTensor> raw;
  for (const auto& [name, t0] : tensors) {
    at::Tensor t = t0.detach().to(at::kCPU).contiguous();
    DType dt;
    if (t.scalar_type() == at::kFloat || t.scalar_type() == at::kDouble || t.scalar_type() == at::kHalf) {
      if (as_f16) {
        t = t.to(at::kHalf).contiguous();
        dt = DType::F16;
      } else {
        t = t.to(at::kFloat).contiguous();
        dt = DType::F32;
      }
    } else if (t.scalar_type() == at::kLong)
      dt = DType::I64;
    else if (t.scalar_type() == at::kInt)
      dt = DType::I32;
    else if (t.scalar_type() == at::kByte)
      dt = DType::U8;
    else if (t.scalar_type() == at::kBool)
      dt = DType::BOOL;
    else
      throw Error(file.string() + ": cannot save tensor '" + name + "' of dtype " +
                  std::string(c10::toString(t.scalar_type())));
    keep.push_back(t);
    raw.push_back({name, dt, t.sizes().vec(), t.data_ptr()});
  }
  write_safetensors(file.string(), raw, {{"format", "pt"}});
}

}  // namespace pictor
