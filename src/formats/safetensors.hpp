#pragma once
// safetensors: an 8-byte little-endian header length, a JSON header mapping tensor names to
// {dtype, shape, data_offsets}, then the raw bytes. This parser is torch-free so it can be fuzzed
// and sanitized on its own; TensorStore (tensor_store.hpp) turns entries into ATen tensors.
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace pictor {

enum class DType { F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL };

size_t dtype_size(DType t);
const char* dtype_name(DType t);

struct TensorEntry {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  uint64_t begin = 0;  // offsets relative to the start of the data section
  uint64_t end = 0;
  uint64_t numel() const;
};

// Largest header we accept (the reference implementation uses 100 MB).
constexpr uint64_t kMaxSafetensorsHeader = 100ull << 20;

struct SafetensorsHeader {
  std::map<std::string, TensorEntry> tensors;
  std::map<std::string, std::string> metadata;
  uint64_t data_offset = 0;  // byte offset of the data section in the file
};

// Validates and parses the header of a safetensors buffer of `size` bytes. `source` names the file in
// errors. Throws pictor::Error on: truncation, oversized header, bad JSON, unknown dtype, negative or
// overflowing shapes, size/shape mismatch, offsets out of range, overlapping or non-contiguous data.
SafetensorsHeader parse_safetensors(const uint8_t* data, size_t size, const std::string& source);

// Converts `count` elements of raw little-endian data of type `t` to float32.
void convert_to_f32(DType t, const uint8_t* src, size_t count, float* dst);
float half_to_float(uint16_t h);
float bf16_to_float(uint16_t h);
uint16_t float_to_half(float f);

// A read-only memory mapping of a whole file.
class MappedFile {
 public:
  explicit MappedFile(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

// One mapped safetensors file with its parsed header.
class SafetensorsFile {
 public:
  explicit SafetensorsFile(const std::string& path);
  const SafetensorsHeader& header() const { return header_; }
  const std::string& path() const { return file_->path(); }
  // Pointer to the first byte of an entry's data.
  const uint8_t* bytes(const TensorEntry& e) const { return file_->data() + header_.data_offset + e.begin; }

 private:
  std::shared_ptr<MappedFile> file_;
  SafetensorsHeader header_;
};

// A raw tensor to be written: the caller keeps `data` alive during the write.
struct RawTensor {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  const void* data;
};
// Writes a standard safetensors file (entries sorted by name, 8-byte aligned header).
void write_safetensors(const std::string& path, const std::vector<RawTensor>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

}  // namespace pictor
