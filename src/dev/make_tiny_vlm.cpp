#include "dev/make_tiny_vlm.hpp"

#include <ATen/ATen.h>

#include <fstream>
#include <set>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "core/json_file.hpp"
#include "formats/tensor_store.hpp"
#include "models/idefics3.hpp"
#include "nn/param_source.hpp"

namespace fs = std::filesystem;

namespace pictor::dev {

namespace {

std::string utf8(int cp) {
  std::string s;
  if (cp < 0x80) {
    s += char(cp);
  } else if (cp < 0x800) {
    s += char(0xC0 | (cp >> 6));
    s += char(0x80 | (cp & 0x3F));
  } else {
    s += char(0xE0 | (cp >> 12));
    s += char(0x80 | ((cp >> 6) & 0x3F));
    s += char(0x80 | (cp & 0x3F));
  }
  return s;
}

// GPT-2's byte -> printable character table (bytes_to_unicode): printable Latin-1 bytes map to
// themselves, the others to U+0100 onwards; byte-level BPE vocabularies spell tokens with these.
std::vector<std::string> byte_symbols() {
  std::vector<int> printable;
  for (int b = '!'; b <= '~'; ++b) printable.push_back(b);
  for (int b = 0xA1; b <= 0xAC; ++b) printable.push_back(b);
  for (int b = 0xAE; b <= 0xFF; ++b) printable.push_back(b);
  const std::set<int> kept(printable.begin(), printable.end());
  std::vector<std::string> by_byte(256);
  int extra = 0;
  for (int b = 0; b < 256; ++b) by_byte[size_t(b)] = utf8(kept.count(b) ? b : 256 + extra++);
  return by_byte;
}

// Words that get merges (so common text is a few tokens, as with a real vocabulary); everything else
// falls back to byte tokens, which is still a complete byte-level BPE.
const char* kWords[] = {"the",       "a",      "an",       "of",      "in",      "on",       "with",     "and",
                        "is",        "this",   "image",    "picture", "photo",   "shows",    "cat",      "dog",
                        "red",       "blue",   "green",    "white",   "black",   "sitting",  "table",    "street",
                        "car",       "person", "sky",      "tree",    "house",   "Describe", "Write",    "caption",
                        "alt",       "text",   "sentence", "detail",  "product", "Title",    "Features", "User",
                        "Assistant", "one",    "line",     "colour",  "material"};

struct Vocab {
  json tokens = json::object();
  std::vector<std::string> merges;
  int64_t next_id = 0;
  void add(const std::string& token) {
    if (!tokens.contains(token)) tokens[token] = next_id++;
  }
  // Left-to-right merges spelling `word` (already in byte symbols, one symbol per character).
  void add_word(const std::vector<std::string>& symbols) {
    std::string left = symbols[0];
    for (size_t i = 1; i < symbols.size(); ++i) {
      const std::string merged = left + symbols[i];
      if (!tokens.contains(merged)) {
        merges.push_back(left + " " + symbols[i]);
        add(merged);
      }
      left = merged;
    }
  }
};

struct SpecialToken {
  std::string content;
  int64_t id;
};

}  // namespace

const char* tiny_vlm_chat_template() {
  // A user turn starting with an image gets "User:" without a space (the image tokens follow directly),
  // a text turn "User: "; every turn ends with <end_of_utterance> and a line break, as SmolVLM prompts.
  return "<|im_start|>"
         "{% for message in messages %}"
         "{{ message['role'] | capitalize }}"
         "{% if message['content'][0]['type'] == 'image' %}:{% else %}: {% endif %}"
         "{% for part in message['content'] %}"
         "{% if part['type'] == 'image' %}<image>{% elif part['type'] == 'text' %}{{ part['text'] }}{% endif %}"
         "{% endfor %}"
         "<end_of_utterance>\n"
         "{% endfor %}"
         "{% if add_generation_prompt %}Assistant:{% endif %}";
}

int64_t write_tiny_vlm_tokenizer(const fs::path& dir) {
  fs::create_directories(dir);
  Vocab v;
  std::vector<SpecialToken> specials;
  auto special = [&](const std::string& content) {
    specials.push_back({content, v.next_id});
    v.add(content);
  };
  // SmolLM2's first ids.
  special("<|endoftext|>");
  special("<|im_start|>");
  special("<|im_end|>");
  const std::vector<std::string> bytes = byte_symbols();
  for (int b = 0; b < 256; ++b) v.add(bytes[size_t(b)]);
  for (const char* w : kWords) {
    std::vector<std::string> plain, spaced{bytes[' ']};
    for (const char* c = w; *c; ++c) {
      plain.push_back(bytes[static_cast<unsigned char>(*c)]);
      spaced.push_back(bytes[static_cast<unsigned char>(*c)]);
    }
    if (plain.size() > 1) v.add_word(plain);
    v.add_word(spaced);
  }
  // Idefics3 / SmolVLM image and turn tokens.
  special("<fake_token_around_image>");
  special("<image>");
  special("<end_of_utterance>");
  special("<global-img>");
  for (int r = 1; r <= 6; ++r)
    for (int c = 1; c <= 6; ++c) special("<row_" + std::to_string(r) + "_col_" + std::to_string(c) + ">");

  std::ofstream(dir / "vocab.json") << v.tokens.dump() << "\n";
  {
    std::ofstream m(dir / "merges.txt");
    m << "#version: 0.2\n";
    for (const auto& s : v.merges) m << s << "\n";
  }

  json added = json::array(), decoder = json::object();
  for (const auto& s : specials) {
    const json entry = {{"content", s.content}, {"lstrip", false},      {"normalized", false},
                        {"rstrip", false},      {"single_word", false}, {"special", true}};
    decoder[std::to_string(s.id)] = entry;
    json with_id = entry;
    with_id["id"] = s.id;
    added.push_back(with_id);
  }
  const json byte_level = {
      {"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", true}};
  write_json_file(dir / "tokenizer.json", {{"version", "1.0"},
                                           {"truncation", nullptr},
                                           {"padding", nullptr},
                                           {"added_tokens", added},
                                           {"normalizer", nullptr},
                                           {"pre_tokenizer", byte_level},
                                           {"post_processor", byte_level},
                                           {"decoder", byte_level},
                                           {"model",
                                            {{"type", "BPE"},
                                             {"dropout", nullptr},
                                             {"unk_token", nullptr},
                                             {"continuing_subword_prefix", ""},
                                             {"end_of_word_suffix", ""},
                                             {"fuse_unk", false},
                                             {"byte_fallback", false},
                                             {"vocab", v.tokens},
                                             {"merges", v.merges}}}});
  const json additional = {"<fake_token_around_image>", "<image>", "<end_of_utterance>"};
  write_json_file(dir / "tokenizer_config.json", {{"tokenizer_class", "GPT2Tokenizer"},
                                                  {"processor_class", "Idefics3Processor"},
                                                  {"add_bos_token", false},
                                                  {"add_prefix_space", false},
                                                  {"added_tokens_decoder", decoder},
                                                  {"additional_special_tokens", additional},
                                                  {"bos_token", "<|im_start|>"},
                                                  {"eos_token", "<end_of_utterance>"},
                                                  {"pad_token", "<|im_end|>"},
                                                  {"unk_token", "<|endoftext|>"},
                                                  {"clean_up_tokenization_spaces", false},
                                                  {"errors", "replace"},
                                                  {"model_max_length", 8192},
                                                  {"chat_template", tiny_vlm_chat_template()}});
  write_json_file(dir / "special_tokens_map.json", {{"additional_special_tokens", additional},
                                                    {"bos_token", "<|im_start|>"},
                                                    {"eos_token", "<end_of_utterance>"},
                                                    {"pad_token", "<|im_end|>"},
                                                    {"unk_token", "<|endoftext|>"}});
  return v.next_id;
}

void make_tiny_vlm(const fs::path& dir, const TinyVlmOptions& o) {
  c10::InferenceMode guard;
  fs::create_directories(dir);
  const int64_t vocab_size = write_tiny_vlm_tokenizer(dir);
  const json vocab = read_json_file(dir / "vocab.json");
  const int64_t image_token = vocab.at("<image>").get<int64_t>();
  const int64_t end_of_utterance = vocab.at("<end_of_utterance>").get<int64_t>();

  // 32x32 frames of 8x8 patches -> 16 patches, pixel shuffle 2 -> 4 image tokens per frame.
  const json vision = {{"model_type", "idefics3"}, {"hidden_size", 32},        {"intermediate_size", 64},
                       {"num_hidden_layers", 2},   {"num_attention_heads", 4}, {"num_channels", 3},
                       {"image_size", 32},         {"patch_size", 8},          {"hidden_act", "gelu_pytorch_tanh"},
                       {"layer_norm_eps", 1e-6},   {"attention_dropout", 0.0}};
  const json text = {{"model_type", "llama"},    {"vocab_size", vocab_size},
                     {"hidden_size", 32},        {"intermediate_size", 64},
                     {"num_hidden_layers", 2},   {"num_attention_heads", 4},
                     {"num_key_value_heads", 2}, {"head_dim", 8},
                     {"hidden_act", "silu"},     {"max_position_embeddings", 2048},
                     {"rms_norm_eps", 1e-5},     {"rope_theta", 100000.0},
                     {"rope_scaling", nullptr},  {"attention_bias", false},
                     {"mlp_bias", false},        {"tie_word_embeddings", false},
                     {"bos_token_id", 1},        {"eos_token_id", end_of_utterance},
                     {"pad_token_id", 2}};
  write_json_file(dir / "config.json", {{"architectures", {"Idefics3ForConditionalGeneration"}},
                                        {"model_type", "idefics3"},
                                        {"image_token_id", image_token},
                                        {"scale_factor", 2},
                                        {"tie_word_embeddings", false},
                                        {"torch_dtype", "float32"},
                                        {"vision_config", vision},
                                        {"text_config", text}});
  write_json_file(dir / "generation_config.json",
                  {{"bos_token_id", 1}, {"eos_token_id", end_of_utterance}, {"pad_token_id", 2}});
  write_json_file(dir / "preprocessor_config.json", {{"image_processor_type", "Idefics3ImageProcessor"},
                                                     {"processor_class", "Idefics3Processor"},
                                                     {"do_convert_rgb", true},
                                                     {"do_resize", true},
                                                     {"size", {{"longest_edge", 64}}},
                                                     {"resample", 1},
                                                     {"do_image_splitting", true},
                                                     {"max_image_size", {{"longest_edge", 32}}},
                                                     {"do_rescale", true},
                                                     {"rescale_factor", 1.0 / 255.0},
                                                     {"do_normalize", true},
                                                     {"image_mean", {0.5, 0.5, 0.5}},
                                                     {"image_std", {0.5, 0.5, 0.5}},
                                                     {"do_pad", true}});
  write_json_file(dir / "processor_config.json", {{"image_seq_len", 4}, {"processor_class", "Idefics3Processor"}});

  const models::Idefics3Config cfg = models::Idefics3Config::from_json(JsonConfig::load(dir / "config.json"));
  nn::RandomParams params(o.seed, /*record=*/true);
  models::Idefics3Model model(cfg, params);
  save_tensors(dir / "model.safetensors", params.recorded(), /*as_f16=*/false);
}

}  // namespace pictor::dev
