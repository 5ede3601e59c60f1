// libFuzzer target for the safetensors parser (built with clang, ASan and UBSan; no libtorch).
#include <cstddef>
#include <cstdint>
#include <vector>

#include "core/error.hpp"
#include "formats/safetensors.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    auto h = pictor::parse_safetensors(data, size, "fuzz-input");
    std::vector<float> buf;
    for (const auto& [name, e] : h.tensors) {
      uint64_t n = e.numel();
      if (n > (1u << 20)) continue;
      buf.resize(n);
      pictor::convert_to_f32(e.dtype, data + h.data_offset + e.begin, n, buf.data());
    }
  } catch (const pictor::Error&) {
  }
  return 0;
}
