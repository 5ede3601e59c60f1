#pragma once
// Hand-written AVX2 activations of the form x * sigmoid(z(x)), in place: SiLU (z = x), QuickGELU
// (z = 1.702 x) and the tanh GELU (0.5 (1 + tanh(u)) = sigmoid(2u), so z = 2 sqrt(2/pi) (x + 0.044715 x^3)).
// ATen runs the tanh GELU through Sleef's 1-ulp tanh plus a second vector loop: ~4x slower, and in a
// SigLIP encoder layer that was 6 % of the time. The sigmoid is exp(-|z|) (avx2_math's polynomial) and one
// division, within a few ulp of ATen's result.
#include <ATen/core/Tensor.h>

#include "nn/layers.hpp"

namespace pictor::nn::activation_kernels {

// x <- activation(x) for SiLU, QuickGELU and GELUTanh on an fp32 CPU tensor autograd does not track,
// laid out as rows with a unit last stride and one row stride (contiguous, a block of columns of a larger
// matrix, a slice of the last dimension). Returns false, leaving x alone, for other activations or
// layouts and on CPUs without AVX2/FMA.
bool apply_(at::Tensor& x, Activation a);

// a(g) * u for the halves [g, u] of the last dimension of `gate_up`, into a new contiguous tensor (the
// gated unit of Llama-style MLPs in one pass). Undefined where apply_ would return false.
at::Tensor gated(const at::Tensor& gate_up, Activation a);

}  // namespace pictor::nn::activation_kernels
