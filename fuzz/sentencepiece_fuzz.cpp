// libFuzzer target for the SentencePiece model reader (built with clang, ASan and UBSan; no libtorch).
// The input is a tokenizer.model; when it parses, the normalizer and segmenter built from it encode and
// decode a few strings, so a corrupt charsmap trie, odd piece tables or scores are exercised too.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/error.hpp"
#include "tokenizers/sentencepiece_model.hpp"
#include "tokenizers/sentencepiece_processor.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace pictor::tokenizers::spm;
  try {
    const std::string_view bytes(reinterpret_cast<const char*>(data), size);
    ModelProto model = parse_model_proto(bytes, "fuzz-input");
    const Processor processor(std::move(model), "fuzz-input");
    static const char* const kTexts[] = {"Hello  world ", " \xEF\xBC\xA1\xE2\x91\xA0 caf\xC3\xA9",
                                         "\xF0\x9F\x98\x80\xFF\xC0 x", "\xE2\x96\x81 a\tb\n", ""};
    for (const char* text : kTexts) {
      const auto ids = processor.encode_ids(text);
      processor.decode_ids(ids);
    }
    // The tail of the input as text, and every id back to text.
    processor.encode_ids(bytes.substr(size / 2, 256));
    std::vector<std::int64_t> all;
    for (int id = 0; id < processor.size() && id < 512; ++id) all.push_back(id);
    processor.decode_ids(all);
  } catch (const pictor::Error&) {
  }
  return 0;
}
