#pragma once
// Prompt text -> the text encoder's hidden states that condition the UNet, with AUTOMATIC1111's
// conventions: `(word:1.3)` weights, prompts longer than 75 tokens encoded in 75-token chunks and
// concatenated, and "CLIP skip".
#include <ATen/core/Tensor.h>

#include <string>

#include "pipelines/sd_model.hpp"

namespace pictor::pipelines {

struct ConditioningOptions {
  // 1 = last layer (diffusers default); 2 = penultimate layer + final LayerNorm (A1111 "Clip skip: 2").
  int clip_skip = 1;
};

struct PromptPair {
  at::Tensor cond;    // [1, 77*k, D]
  at::Tensor uncond;  // [1, 77*k, D] (same k: the shorter prompt is padded with empty chunks)
};

// Encodes one prompt; `min_chunks` pads with empty chunks.
at::Tensor encode_prompt(const StableDiffusionModel& m, const std::string& prompt, const ConditioningOptions& opts,
                         size_t min_chunks = 1);

// Encodes prompt and negative prompt to the same length.
PromptPair encode_prompt_pair(const StableDiffusionModel& m, const std::string& prompt, const std::string& negative,
                              const ConditioningOptions& opts);

}  // namespace pictor::pipelines
