#include "formats/safetensors.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.hpp"

namespace pictor {

namespace {
struct DTypeInfo {
  const char* name;
  DType type;
  size_t size;
};
constexpr DTypeInfo kDTypes[] = {
    {"F64", DType::F64, 8}, {"F32", DType::F32, 4},   {"F16", DType::F16, 2}, {"BF16", DType::BF16, 2},
    {"I64", DType::I64, 8}, {"I32", DType::I32, 4},   {"I16", DType::I16, 2}, {"I8", DType::I8, 1},
    {"U8", DType::U8, 1},   {"BOOL", DType::BOOL, 1},
};

[[noreturn]] void fail(const std::string& source, const std::string& what) {
  throw Error(source + ": invalid safetensors file: " + what);
}
}  // namespace

size_t dtype_size(DType t) {
  for (const auto& d : kDTypes)
    if (d.type == t) return d.size;
  return 0;
}
const char* dtype_name(DType t) {
  for (const auto& d : kDTypes)
    if (d.type == t) return d.name;
  return "?";
}

uint64_t TensorEntry::numel() const {
  uint64_t n = 1;
  for (int64_t d : shape) n *= static_cast<uint64_t>(d);
  return n;
}

SafetensorsHeader parse_safetensors(const uint8_t* data, size_t size, const std::string& source) {
  if (size < 8) fail(source, "file is " + std::to_string(size) + " bytes, shorter than the 8-byte header length");
  uint64_t hlen = 0;
  for (int i = 7; i >= 0; --i) hlen = (hlen << 8) | data[i];
  if (hlen > kMaxSafetensorsHeader)
    fail(source, "header length " + std::to_string(hlen) + " exceeds the limit of " +
                     std::to_string(kMaxSafetensorsHeader) + " bytes");
  if (hlen > size - 8)
    fail(source, "truncated: header length " + std::to_string(hlen) + " but only " + std::to_string(size - 8) +
                     " bytes follow");
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(reinterpret_cast<const char*>(data + 8), reinterpret_cast<const char*>(data + 8 + hlen));
  } catch (const nlohmann::json::exception& e) {
    fail(source, std::string("header is not valid JSON (") + e.what() + ")");
  }
  if (!j.is_object()) fail(source, "header is not a JSON object");

  SafetensorsHeader h;
  h.data_offset = 8 + hlen;
  const uint64_t data_size = size - h.data_offset;
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& name = it.key();
    const auto& v = it.value();
    if (name == "__metadata__") {
      if (!v.is_object()) fail(source, "__metadata__ is not an object");
      for (auto m = v.begin(); m != v.end(); ++m) {
        if (!m.value().is_string()) fail(source, "__metadata__ value '" + m.key() + "' is not a string");
        h.metadata[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    if (!v.is_object()) fail(source, "entry '" + name + "' is not an object");
    TensorEntry e;
    e.name = name;
    if (!v.contains("dtype") || !v["dtype"].is_string()) fail(source, "entry '" + name + "' has no dtype");
    const std::string dt = v["dtype"].get<std::string>();
    const DTypeInfo* info = nullptr;
    for (const auto& d : kDTypes)
      if (dt == d.name) info = &d;
    if (!info) fail(source, "entry '" + name + "' has unknown dtype '" + dt + "'");
    e.dtype = info->type;
    if (!v.contains("shape") || !v["shape"].is_array()) fail(source, "entry '" + name + "' has no shape array");
    uint64_t numel = 1;
    for (const auto& d : v["shape"]) {
      if (!d.is_number_integer() || d.get<int64_t>() < 0)
        fail(source, "entry '" + name + "' has a shape dimension that is not a non-negative integer");
      uint64_t dim = d.get<uint64_t>();
      if (dim != 0 && numel > (uint64_t(1) << 62) / dim) fail(source, "entry '" + name + "' shape overflows");
      numel *= dim;
      e.shape.push_back(static_cast<int64_t>(dim));
    }
    const auto& off = v.contains("data_offsets") ? v["data_offsets"] : nlohmann::json();
    if (!off.is_array() || off.size() != 2 || !off[0].is_number_unsigned() || !off[1].is_number_unsigned())
      fail(source, "entry '" + name + "' needs data_offsets [begin, end] of non-negative integers");
    e.begin = off[0].get<uint64_t>();
    e.end = off[1].get<uint64_t>();
    if (e.begin > e.end) fail(source, "entry '" + name + "' has data_offsets with begin > end");
    if (e.end > data_size)
      fail(source, "entry '" + name + "' data_offsets end " + std::to_string(e.end) + " is beyond the data section (" +
                       std::to_string(data_size) + " bytes; file truncated?)");
    if (e.end - e.begin != numel * info->size)
      fail(source, "entry '" + name + "' has " + std::to_string(e.end - e.begin) + " bytes but shape and dtype need " +
                       std::to_string(numel * info->size));
    h.tensors.emplace(name, std::move(e));
  }
  // The data section must be exactly covered: no overlaps, no holes.
  std::vector<const TensorEntry*> order;
  for (const auto& [n, e] : h.tensors) order.push_back(&e);
  std::sort(order.begin(), order.end(),
            [](auto* a, auto* b) { return a->begin != b->begin ? a->begin < b->begin : a->end < b->end; });
  uint64_t pos = 0;
  for (const auto* e : order) {
    if (e->begin < pos) fail(source, "entry '" + e->name + "' overlaps the previous tensor's data");
    if (e->begin > pos) fail(source, "hole in the data section before entry '" + e->name + "'");
    pos = e->end;
  }
  return h;
}

float half_to_float(uint16_t h) {
  uint32_t sign = (h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1f;
  uint32_t man = h & 0x3ffu;
  uint32_t bits;
  if (exp == 0) {
    if (man == 0) {
      bits = sign;
    } else {  // subnormal: normalise
      exp = 127 - 15 + 1;
      while (!(man & 0x400u)) {
        man <<= 1;
        --exp;
      }
      man &= 0x3ffu;
      bits = sign | (exp << 23) | (man << 13);
    }
  } else if (exp == 31) {
    bits = sign | 0x7f800000u | (man << 13);
  } else {
    bits = sign | ((exp + 127 - 15) << 23) | (man << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

float bf16_to_float(uint16_t h) {
  uint32_t bits = uint32_t(h) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

uint16_t float_to_half(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  uint32_t sign = (x >> 16) & 0x8000u;
  int32_t exp = int32_t((x >> 23) & 0xff) - 127 + 15;
  uint32_t man = x & 0x7fffffu;
  if (((x >> 23) & 0xff) == 0xff) return uint16_t(sign | 0x7c00u | (man ? 0x200u : 0));
  if (exp >= 31) return uint16_t(sign | 0x7c00u);
  if (exp <= 0) {
    if (exp < -10) return uint16_t(sign);
    man |= 0x800000u;
    uint32_t shift = uint32_t(14 - exp);
    uint32_t half_man = man >> shift;
    uint32_t rem = man & ((1u << shift) - 1), halfway = 1u << (shift - 1);
    if (rem > halfway || (rem == halfway && (half_man & 1))) ++half_man;
    return uint16_t(sign | half_man);
  }
  uint32_t half = sign | (uint32_t(exp) << 10) | (man >> 13);
  uint32_t rem = man & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (half & 1))) ++half;  // round to nearest even
  return uint16_t(half);
}

void convert_to_f32(DType t, const uint8_t* src, size_t count, float* dst) {
  auto rd = [&](auto tag, size_t i) {
    decltype(tag) v;
    std::memcpy(&v, src + i * sizeof(v), sizeof(v));
    return v;
  };
  for (size_t i = 0; i < count; ++i) {
    switch (t) {
      case DType::F32: dst[i] = rd(float{}, i); break;
      case DType::F64: dst[i] = static_cast<float>(rd(double{}, i)); break;
      case DType::F16: dst[i] = half_to_float(rd(uint16_t{}, i)); break;
      case DType::BF16: dst[i] = bf16_to_float(rd(uint16_t{}, i)); break;
      case DType::I64: dst[i] = static_cast<float>(rd(int64_t{}, i)); break;
      case DType::I32: dst[i] = static_cast<float>(rd(int32_t{}, i)); break;
      case DType::I16: dst[i] = static_cast<float>(rd(int16_t{}, i)); break;
      case DType::I8: dst[i] = static_cast<float>(rd(int8_t{}, i)); break;
      case DType::U8:
      case DType::BOOL: dst[i] = static_cast<float>(src[i]); break;
    }
  }
}

MappedFile::MappedFile(const std::string& path) : path_(path) {
  int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) throw Error(path + ": cannot open file (" + std::strerror(errno) + ")");
  struct stat st {};
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    throw Error(path + ": not a regular file");
  }
  size_ = static_cast<size_t>(st.st_size);
  if (size_ > 0) {
    void* p = mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      ::close(fd);
      throw Error(path + ": mmap failed (" + std::strerror(errno) + ")");
    }
    data_ = static_cast<const uint8_t*>(p);
  }
  ::close(fd);
}

MappedFile::~MappedFile() {
  if (data_) munmap(const_cast<uint8_t*>(data_), size_);
}

SafetensorsFile::SafetensorsFile(const std::string& path) : file_(std::make_shared<MappedFile>(path)) {
  header_ = parse_safetensors(file_->data(), file_->size(), path);
}

void write_safetensors(const std::string& path, const std::vector<RawTensor>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  std::vector<const RawTensor*> sorted;
  for (const auto& t : tensors) sorted.push_back(&t);
  std::sort(sorted.begin(), sorted.end(), [](auto* a, auto* b) { return a->name < b->name; });
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  uint64_t off = 0;
  std::vector<uint64_t> sizes;
  for (const auto* t : sorted) {
    uint64_t n = 1;
    for (auto d : t->shape) n *= static_cast<uint64_t>(d);
    uint64_t bytes = n * dtype_size(t->dtype);
    header[t->name] = {{"dtype", dtype_name(t->dtype)}, {"shape", t->shape}, {"data_offsets", {off, off + bytes}}};
    sizes.push_back(bytes);
    off += bytes;
  }
  std::string hs = header.dump();
  while ((8 + hs.size()) % 8 != 0) hs.push_back(' ');
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) throw Error(path + ": cannot create file");
  uint64_t hl = hs.size();
  unsigned char lb[8];
  for (int i = 0; i < 8; ++i) lb[i] = static_cast<unsigned char>((hl >> (8 * i)) & 0xff);
  out.write(reinterpret_cast<const char*>(lb), 8);
  out.write(hs.data(), static_cast<std::streamsize>(hs.size()));
  for (size_t i = 0; i < sorted.size(); ++i)
    out.write(static_cast<const char*>(sorted[i]->data), static_cast<std::streamsize>(sizes[i]));
  if (!out) throw Error(path + ": write failed");
}

}  // namespace pictor
