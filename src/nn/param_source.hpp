#pragma once
// Where a model's parameters come from. Model constructors ask a ParamSource for each parameter by its
// checkpoint name and shape; the same constructor code then serves three uses:
//  - CheckpointParams: load from a real checkpoint (shape-checked, errors name file and tensor);
//  - RandomParams: random weights for tiny test models and full-size benchmarks (and records them so
//    `pictor dev make-tiny-*` can save a complete checkpoint);
// Tensors are placed on the source's device as float32.
#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include <cstdint>
#include <functional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "formats/tensor_store.hpp"

namespace pictor::nn {

// How a parameter is initialised when it is drawn at random (matches the golden generators' scheme).
enum class Init {
  FanIn,       // N(0, 1/fan_in), fan_in = numel / shape[0]  (linear and conv weights)
  Bias,        // N(0, 0.02^2)
  NormWeight,  // 1 + N(0, 0.05^2)
  NormBias,    // N(0, 0.05^2)
  Embedding,   // N(0, 0.5^2)
  Zeros,
  Ones,
};

class ParamSource {
 public:
  virtual ~ParamSource() = default;
  // Returns the parameter `name` with exactly `shape`.
  virtual at::Tensor get(const std::string& name, const std::vector<int64_t>& shape, Init init) = 0;
  // Whether a checkpoint contains `name` (random sources say yes to everything).
  virtual bool has(const std::string& name) const = 0;
  c10::Device device() const { return device_; }
  void set_device(c10::Device d) { device_ = d; }

 protected:
  c10::Device device_{c10::kCPU};
};

class CheckpointParams : public ParamSource {
 public:
  explicit CheckpointParams(const TensorStore& store) : store_(store) {}
  at::Tensor get(const std::string& name, const std::vector<int64_t>& shape, Init init) override;
  bool has(const std::string& name) const override { return store_.has(name); }
  // Names in the checkpoint that no module asked for.
  std::vector<std::string> unused() const;
  // A tensor nobody asked for means the checkpoint holds another architecture (more layers, biases, a
  // head the config disabled): running without it would silently compute something else. Throws
  // pictor::Unsupported naming the file and up to five such tensors, e.g. "...: 2 tensor(s) not part of
  // a Llama model with this config: ...". `expected` accepts the unused names that are fine (saved
  // buffers, a tied head, another tower's weights).
  void refuse_unused(const std::string& model, const std::function<bool(const std::string&)>& expected = {}) const;

 private:
  const TensorStore& store_;
  std::set<std::string> used_;
};

class RandomParams : public ParamSource {
 public:
  explicit RandomParams(uint64_t seed, bool record = false);
  at::Tensor get(const std::string& name, const std::vector<int64_t>& shape, Init init) override;
  bool has(const std::string&) const override { return true; }
  const std::vector<std::pair<std::string, at::Tensor>>& recorded() const { return recorded_; }

 private:
  uint64_t seed_;
  uint64_t counter_ = 0;
  bool record_;
  std::vector<std::pair<std::string, at::Tensor>> recorded_;
};

std::string shape_str(const std::vector<int64_t>& shape);

}  // namespace pictor::nn
