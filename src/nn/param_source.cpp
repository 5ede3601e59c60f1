#include "nn/param_source.hpp"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>

#include "core/error.hpp"

namespace pictor::nn {

std::string shape_str(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

at::Tensor CheckpointParams::get(const std::string& name, const std::vector<int64_t>& shape, Init) {
  if (!store_.has(name))
    throw Error(store_.origin() + ": missing tensor '" + name + "' (expected shape " + shape_str(shape) + ")");
  const auto& e = store_.entry(name);
  if (e.shape != shape)
    throw Error(store_.file_of(name) + ": tensor '" + name + "' has shape " + shape_str(e.shape) +
                " but the config implies " + shape_str(shape));
  used_.insert(name);
  at::Tensor t = store_.get(name);
  if (t.scalar_type() != at::kFloat)
    throw Error(store_.file_of(name) + ": tensor '" + name + "' is not floating point");
  return device_.is_cpu() ? t : t.to(device_);
}

std::vector<std::string> CheckpointParams::unused() const {
  std::vector<std::string> out;
  for (const auto& n : store_.names())
    if (!used_.count(n)) out.push_back(n);
  return out;
}

void CheckpointParams::refuse_unused(const std::string& model,
                                     const std::function<bool(const std::string&)>& expected) const {
  std::string listed;
  int count = 0;
  for (const auto& name : unused()) {
    if (expected && expected(name)) continue;
    if (count++ < 5) listed += (listed.empty() ? "" : ", ") + name;
  }
  if (count)
    throw Unsupported(store_.origin() + ": " + std::to_string(count) + " tensor(s) not part of " + model +
                      " with this config: " + listed + (count > 5 ? ", ..." : ""));
}

RandomParams::RandomParams(uint64_t seed, bool record) : seed_(seed), record_(record) {}

at::Tensor RandomParams::get(const std::string& name, const std::vector<int64_t>& shape, Init init) {
  // Each parameter gets its own generator seeded from (seed, index): adding a parameter elsewhere does
  // not change the others' draws more than necessary, and runs are reproducible.
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed_ * 1000003ull + counter_++);
  at::Tensor t;
  auto normal = [&](double mean, double std) { return at::normal(mean, std, shape, gen); };
  int64_t fan_in = 1;
  for (size_t i = 1; i < shape.size(); ++i) fan_in *= shape[i];
  switch (init) {
    case Init::FanIn: t = normal(0.0, 1.0 / std::sqrt(static_cast<double>(std::max<int64_t>(fan_in, 1)))); break;
    case Init::Bias: t = normal(0.0, 0.02); break;
    case Init::NormWeight: t = normal(1.0, 0.05); break;
    case Init::NormBias: t = normal(0.0, 0.05); break;
    case Init::Embedding: t = normal(0.0, 0.5); break;
    case Init::Zeros: t = at::zeros(shape, at::kFloat); break;
    case Init::Ones: t = at::ones(shape, at::kFloat); break;
  }
  if (record_) recorded_.emplace_back(name, t);
  return device_.is_cpu() ? t : t.to(device_);
}

}  // namespace pictor::nn
