#pragma once
// Seeded Gaussian noise sources. The initial latents and every noise draw a sampler makes (Euler
// ancestral, LCM) come from one NoiseSource, in order, so a seed reproduces an image exactly.
// Both sources are serial and independent of the ATen thread count. See docs/SEEDS.md.
#include <ATen/core/Generator.h>
#include <ATen/core/Tensor.h>
#include <c10/util/ArrayRef.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace pictor {

class NoiseSource {
 public:
  virtual ~NoiseSource() = default;
  // float32 CPU tensor of standard normal draws; each call continues the stream.
  virtual at::Tensor randn(at::IntArrayRef shape) = 0;
};

// torch.randn(shape, generator=torch.Generator("cpu").manual_seed(seed)): the same mt19937 generator and
// Box-Muller code as PyTorch's CPU randn, so diffusers/ComfyUI seeds give the same latents. Default.
class TorchCpuNoise : public NoiseSource {
 public:
  explicit TorchCpuNoise(uint64_t seed);
  at::Tensor randn(at::IntArrayRef shape) override;

 private:
  at::Generator gen_;
};

// AUTOMATIC1111's "NV" noise: what torch.randn(shape, device="cuda") gives after manual_seed(seed), computed
// on the CPU. Each element i of the k-th call (k = 0, 1, ...) is Philox4x32-10 with key = seed and counter
// (k, 0, i, 0); its first two outputs x, y make u = (x + 1/2) 2^-32, v = (y + 1/2) 2^-32 2pi and the
// value sqrt(-2 ln u) sin v (in float64, rounded to float32), as A1111's modules/rng_philox.py does.
class A1111GpuNoise : public NoiseSource {
 public:
  explicit A1111GpuNoise(uint64_t seed) : seed_(seed) {}
  at::Tensor randn(at::IntArrayRef shape) override;

 private:
  uint64_t seed_;
  uint32_t offset_ = 0;
};

// Replays recorded draws: the k-th call returns draws[k] (its shape must match). For golden tests, and
// for callers that want to inject their own noise. Throws Error when asked for more draws than it has.
class ReplayNoise : public NoiseSource {
 public:
  explicit ReplayNoise(at::Tensor draws) : draws_(std::move(draws)) {}
  at::Tensor randn(at::IntArrayRef shape) override;
  int64_t used() const { return next_; }

 private:
  at::Tensor draws_;  // [n, ...shape]; may be undefined (no draws)
  int64_t next_ = 0;
};

// "torch" (TorchCpuNoise) or "a1111_gpu" (A1111GpuNoise); anything else is an Error listing both.
std::unique_ptr<NoiseSource> make_noise_source(const std::string& name, uint64_t seed);
std::vector<std::string> noise_source_names();

}  // namespace pictor
