#pragma once
// The Llama decoder (transformers' LlamaForCausalLM, v4.46): token embeddings, pre-RMSNorm layers of
// grouped-query attention with rotary embeddings and a SwiGLU MLP, a final RMSNorm and the lm_head
// (tied to the embeddings or not). Used alone and as the language model of Idefics3/SmolVLM and LLaVA,
// which store it under other checkpoint prefixes.
#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/json_file.hpp"
#include "models/kv_cache.hpp"
#include "models/rope.hpp"
#include "models/text_generation.hpp"
#include "nn/layers.hpp"
#include "nn/param_source.hpp"

namespace pictor::models {

struct LlamaConfig {
  // Defaults are transformers' LlamaConfig defaults (LLaVA configs rely on them for absent fields).
  int64_t vocab_size = 32000;
  int64_t hidden_size = 4096;
  int64_t intermediate_size = 11008;
  int64_t num_hidden_layers = 32;
  int64_t num_attention_heads = 32;
  int64_t num_key_value_heads = 32;  // = num_attention_heads when absent
  int64_t head_dim = 128;            // = hidden_size / num_attention_heads when absent
  double rms_norm_eps = 1e-6;
  double rope_theta = 10000.0;
  int64_t max_position_embeddings = 2048;
  bool tie_word_embeddings = false;
  std::string hidden_act = "silu";
  nn::Activation activation = nn::Activation::SiLU;
  bool attention_bias = false;
  bool mlp_bias = false;
  std::optional<int64_t> bos_token_id = 1;
  std::vector<int64_t> eos_token_ids{2};
  std::optional<int64_t> pad_token_id;
  // Not a config.json field: LlamaModel stores its linear layers as int8 (quantize_int8) layer by layer
  // while it is built, so the fp32 weights of only one layer exist at a time.
  bool int8_weights = false;

  // From a LlamaForCausalLM config.json. rope_scaling must be null (or rope_type "default"); other
  // values, and other model types, throw Unsupported naming the file and field.
  static LlamaConfig from_json(const JsonConfig& cfg);
  // From the object `nested_key` of a composite config (e.g. "text_config" of Idefics3/LLaVA configs);
  // errors read "FILE (nested_key): field 'x' ...". The top-level tie_word_embeddings is not consulted:
  // a VLM that ties by its outer config sets the field itself.
  static LlamaConfig from_json(const JsonConfig& cfg, const std::string& nested_key);
};

// x * rsqrt(mean(x^2) + eps) * weight, computed in float32 (LlamaRMSNorm).
struct RmsNorm {
  at::Tensor weight;
  double eps = 1e-6;
  RmsNorm() = default;
  RmsNorm(nn::ParamSource& p, const std::string& prefix, int64_t dim, double eps);
  at::Tensor operator()(const at::Tensor& x) const;
};

class LlamaModel {
 public:
  // Checkpoint names: `<model_prefix>.embed_tokens.weight`, `<model_prefix>.layers.N.{input_layernorm,
  // self_attn.{q,k,v,o}_proj, post_attention_layernorm, mlp.{gate,up,down}_proj}`, `<model_prefix>.norm`,
  // `<lm_head_prefix>.weight` (not read when tied). LlamaForCausalLM: "model" / "lm_head"; Idefics3:
  // "model.text_model" / "lm_head"; LLaVA: "language_model.model" / "language_model.lm_head".
  LlamaModel(const LlamaConfig& cfg, nn::ParamSource& params, const std::string& model_prefix = "model",
             const std::string& lm_head_prefix = "lm_head");
  // Loads a LlamaForCausalLM folder (config.json + model*.safetensors). Tensors the model does not use
  // are refused (except rotary inv_freq buffers and a tied model's redundant lm_head.weight).
  // int8: built with int8 linear layers (LlamaConfig::int8_weights).
  static std::unique_ptr<LlamaModel> load(const std::filesystem::path& dir, c10::Device device = c10::kCPU,
                                          bool int8 = false);

  // Runs the decoder and returns logits [B, T, V] ([B, 1, V] with last_logits_only).
  //  - `input`: token ids [B, T] (integer) or input embeddings [B, T, hidden] (floating, e.g. with image
  //    features spliced in by a VLM).
  //  - `attention_mask`: [B, past + T] of 0/1 (0 = left padding); undefined = all tokens visible.
  //  - `position_ids`: [B or 1, T]; undefined = past .. past + T - 1 (as transformers' forward; generate
  //    passes cumsum(mask) - 1 for padded batches).
  //  - `cache`: when given, attends to its keys/values and appends this call's (past = cache->length()).
  //  - `hidden_states`: receives L + 1 tensors: [0] embeddings, [i] after layer i, [L] after the final
  //    norm (as transformers' output_hidden_states).
  at::Tensor forward(const at::Tensor& input, const at::Tensor& attention_mask = {},
                     const at::Tensor& position_ids = {}, KVCache* cache = nullptr,
                     std::vector<at::Tensor>* hidden_states = nullptr, bool last_logits_only = false) const;
  // The decoder without the lm_head: final-normed hidden states [B, T, hidden].
  at::Tensor decode(const at::Tensor& input, const at::Tensor& attention_mask = {}, const at::Tensor& position_ids = {},
                    KVCache* cache = nullptr, std::vector<at::Tensor>* hidden_states = nullptr) const;
  at::Tensor lm_head(const at::Tensor& hidden) const;
  // Token embeddings [B, T, hidden] of ids [B, T] (validated against the vocabulary).
  at::Tensor embed(const at::Tensor& input_ids) const;

  // A generation step function over `cache` (the model and the cache must outlive it): each call runs
  // forward on the new tokens and returns the last position's logits [B, V].
  StepFn step_function(KVCache& cache) const;

  const LlamaConfig& config() const { return config_; }
  c10::Device device() const { return device_; }

  // Stores every decoder linear layer and the lm_head as int8 with per-row scales (nn/int8_linear.hpp):
  // a quarter of their memory and of the bytes each decoded token streams. A tied lm_head gets an int8 copy
  // (the fp32 table stays for the embedding lookup). Inference only afterwards. Returns how many bytes the
  // weights shrank by (fp32 4 bytes per weight -> 1 byte plus a 4-byte scale per row; a tied lm_head's
  // int8 copy counts against it). 0 when already quantized.
  int64_t quantize_int8();
  bool quantized_int8() const { return lm_head_.int8.defined(); }
  int64_t int8_saved_bytes() const;  // what the int8 layers save against fp32 (0 for an fp32 model)

 private:
  // The checkpoint's q/k/v projections run as one joined product (`qkv`, outputs side by side in that
  // order), and so do gate/up (`gate_up`): decoding streams each weight once per token, and fewer, longer
  // matrix-vector products keep the memory pipeline fuller than seven short ones.
  struct Layer {
    RmsNorm input_layernorm, post_attention_layernorm;
    nn::Linear qkv, o_proj;
    nn::Linear gate_up, down_proj;
  };
  static void quantize_layer(Layer& layer);
  at::Tensor attention(const Layer& layer, int64_t index, const at::Tensor& x, const at::Tensor& mask,
                       const at::Tensor& cos, const at::Tensor& sin, KVCache* cache) const;

  LlamaConfig config_;
  c10::Device device_{c10::kCPU};
  nn::Embedding embed_tokens_;
  std::vector<Layer> layers_;
  RmsNorm norm_;
  nn::Linear lm_head_;  // weight [V, hidden]: the embedding matrix when tied
  RotaryEmbedding rope_;
};

// Additive attention mask [B or 1, 1, T, past + T]: 0 where query i (absolute position past + i) may see
// key j (j <= past + i and attention_mask[b, j] == 1), the lowest float elsewhere. Undefined when nothing
// is masked (a single new token without padding).
at::Tensor llama_attention_mask(const at::Tensor& attention_mask, int64_t past, int64_t T,
                                const at::TensorOptions& options);

}  // namespace pictor::models
