#include "schedulers/noise.hpp"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>

#include <cmath>
#include <sstream>

#include "core/error.hpp"

namespace pictor {

TorchCpuNoise::TorchCpuNoise(uint64_t seed) : gen_(at::make_generator<at::CPUGeneratorImpl>(seed)) {}

at::Tensor TorchCpuNoise::randn(at::IntArrayRef shape) {
  // ATen's CPU normal kernel is serial, so the draws do not depend on the thread count; it locks the
  // generator itself (locking it here too would deadlock).
  return at::randn(shape, gen_, at::TensorOptions().dtype(at::kFloat));
}

namespace {

constexpr uint32_t kPhiloxM0 = 0xD2511F53, kPhiloxM1 = 0xCD9E8D57;
constexpr uint32_t kPhiloxW0 = 0x9E3779B9, kPhiloxW1 = 0xBB67AE85;

// Philox4x32 with 10 rounds (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3").
void philox4x32_10(uint32_t c[4], uint32_t k0, uint32_t k1) {
  for (int round = 0; round < 10; ++round) {
    uint64_t p0 = static_cast<uint64_t>(c[0]) * kPhiloxM0;
    uint64_t p1 = static_cast<uint64_t>(c[2]) * kPhiloxM1;
    uint32_t n0 = static_cast<uint32_t>(p1 >> 32) ^ c[1] ^ k0;
    uint32_t n1 = static_cast<uint32_t>(p1);
    uint32_t n2 = static_cast<uint32_t>(p0 >> 32) ^ c[3] ^ k1;
    uint32_t n3 = static_cast<uint32_t>(p0);
    c[0] = n0, c[1] = n1, c[2] = n2, c[3] = n3;
    k0 += kPhiloxW0;
    k1 += kPhiloxW1;
  }
}

}  // namespace

at::Tensor A1111GpuNoise::randn(at::IntArrayRef shape) {
  at::Tensor out = at::empty(shape, at::TensorOptions().dtype(at::kFloat));
  const int64_t n = out.numel();
  if (n > (int64_t{1} << 32)) throw Error("a1111_gpu noise: at most 2^32 values per draw");
  // The scale factors are float32 constants (2^-32 and 2^-32 * 2pi rounded to float32); the rest of
  // the Box-Muller transform runs in float64 like A1111's NumPy code.
  const double inv = static_cast<float>(2.3283064e-10);
  const double inv_2pi = static_cast<float>(2.3283064e-10 * 6.2831855);
  const uint32_t k0 = static_cast<uint32_t>(seed_), k1 = static_cast<uint32_t>(seed_ >> 32);
  float* p = out.data_ptr<float>();
  for (int64_t i = 0; i < n; ++i) {
    uint32_t c[4] = {offset_, 0, static_cast<uint32_t>(i), 0};
    philox4x32_10(c, k0, k1);
    double u = static_cast<double>(c[0]) * inv + inv / 2;
    double v = static_cast<double>(c[1]) * inv_2pi + inv_2pi / 2;
    double s = std::sqrt(-2.0 * std::log(u));
    p[i] = static_cast<float>(s * std::sin(v));
  }
  ++offset_;
  return out;
}

at::Tensor ReplayNoise::randn(at::IntArrayRef shape) {
  if (!draws_.defined() || next_ >= draws_.size(0))
    throw Error("replayed noise: draw " + std::to_string(next_ + 1) + " requested but only " +
                std::to_string(draws_.defined() ? draws_.size(0) : 0) + " recorded");
  at::Tensor d = draws_[next_];
  if (d.sizes() != shape) {
    std::ostringstream s;
    s << "replayed noise: draw " << next_ + 1 << " has shape " << d.sizes() << ", requested " << shape;
    throw Error(s.str());
  }
  ++next_;
  return d.to(at::kFloat).contiguous();
}

std::vector<std::string> noise_source_names() {
  return {"torch", "a1111_gpu"};
}

std::unique_ptr<NoiseSource> make_noise_source(const std::string& name, uint64_t seed) {
  if (name == "torch") return std::make_unique<TorchCpuNoise>(seed);
  if (name == "a1111_gpu") return std::make_unique<A1111GpuNoise>(seed);
  throw Error("unknown noise source '" + name + "' (known: torch, a1111_gpu)");
}

}  // namespace pictor
