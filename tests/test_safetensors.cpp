// The safetensors reader: valid files round-trip, sharded checkpoints load, and every kind of
// malformed file is refused with an error that names the file and the problem.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <fstream>

#include "core/error.hpp"
#include "formats/safetensors.hpp"
#include "formats/tensor_store.hpp"
#include "support.hpp"

using namespace pictor;
namespace fs = std::filesystem;

namespace {
// Writes a file from a raw header string and data bytes.
fs::path write_raw(const fs::path& dir, const std::string& name, const std::string& header, const std::string& data,
                   int64_t declared_len = -1) {
  fs::path p = dir / name;
  std::ofstream out(p, std::ios::binary);
  uint64_t len = declared_len >= 0 ? uint64_t(declared_len) : header.size();
  for (int i = 0; i < 8; ++i) out.put(static_cast<char>((len >> (8 * i)) & 0xff));
  out << header << data;
  return p;
}

std::string expect_error(const fs::path& p) {
  try {
    SafetensorsFile f(p.string());
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "no error for " << p;
  return "";
}
}  // namespace

TEST(Safetensors, RoundTripF32F16AndInt) {
  fs::path d = test::temp_dir("st");
  at::Tensor a = at::randn({3, 5});
  at::Tensor ids = at::arange(7, at::kLong);
  save_tensors(d / "x.safetensors", {{"a", a}, {"ids", ids}});
  TensorStore s = TensorStore::open_file(d / "x.safetensors");
  EXPECT_EQ(s.size(), 2u);
  EXPECT_TRUE(at::equal(s.get("a"), a));
  EXPECT_TRUE(at::equal(s.get("ids"), ids));
  save_tensors(d / "h.safetensors", {{"a", a}}, /*as_f16=*/true);
  TensorStore h = TensorStore::open_file(d / "h.safetensors");
  EXPECT_EQ(h.entry("a").dtype, DType::F16);
  EXPECT_TRUE(at::allclose(h.get("a"), a.to(at::kHalf).to(at::kFloat), 0, 0));
}

TEST(Safetensors, HalfAndBFloatConversionMatchesTorch) {
  at::Tensor x = at::randn({4096}) * 100;
  at::Tensor h = x.to(at::kHalf).contiguous();
  std::vector<float> out(4096);
  convert_to_f32(DType::F16, reinterpret_cast<const uint8_t*>(h.data_ptr()), 4096, out.data());
  EXPECT_TRUE(at::equal(at::from_blob(out.data(), {4096}), h.to(at::kFloat)));
  at::Tensor b = x.to(at::kBFloat16).contiguous();
  convert_to_f32(DType::BF16, reinterpret_cast<const uint8_t*>(b.data_ptr()), 4096, out.data());
  EXPECT_TRUE(at::equal(at::from_blob(out.data(), {4096}), b.to(at::kFloat)));
  for (int i = 0; i < 4096; ++i) {
    float f = x[i].item<float>();
    EXPECT_EQ(float_to_half(f), reinterpret_cast<const uint16_t*>(h.data_ptr())[i]) << f;
  }
}

TEST(Safetensors, ShardedIndex) {
  fs::path d = test::temp_dir("shard");
  save_tensors(d / "model-00001-of-00002.safetensors", {{"w1", at::ones({2})}});
  save_tensors(d / "model-00002-of-00002.safetensors", {{"w2", at::zeros({3})}});
  std::ofstream(d / "model.safetensors.index.json")
      << R"({"metadata":{},"weight_map":{"w1":"model-00001-of-00002.safetensors","w2":"model-00002-of-00002.safetensors"}})";
  TensorStore s = TensorStore::open_dir(d);
  EXPECT_EQ(s.size(), 2u);
  EXPECT_EQ(s.get("w2").size(0), 3);
  // An index that points at a shard lacking the tensor is refused.
  std::ofstream(d / "model.safetensors.index.json", std::ios::trunc)
      << R"({"weight_map":{"w1":"model-00002-of-00002.safetensors"}})";
  EXPECT_THROW(TensorStore::open_dir(d), Error);
}

TEST(Safetensors, MissingWeightsNamesFolder) {
  fs::path d = test::temp_dir("empty");
  try {
    TensorStore::open_dir(d);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(d.string()), std::string::npos);
  }
}

TEST(Safetensors, MalformedFilesAreRefusedWithReasons) {
  fs::path d = test::temp_dir("bad");
  const std::string ok4 = R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})";
  struct Case {
    std::string file, header, data;
    int64_t declared;
    std::string expect;
  } cases[] = {
      {"short", "", "", -2, "shorter than the 8-byte"},
      {"trunc_header", ok4, "", 5000, "truncated"},
      {"huge_header", ok4, "", int64_t(1) << 40, "exceeds the limit"},
      {"bad_json", "{not json", "", -1, "not valid JSON"},
      {"not_object", "[1,2]", "", -1, "not a JSON object"},
      {"unknown_dtype", R"({"a":{"dtype":"F8","shape":[1],"data_offsets":[0,1]}})", "x", -1, "unknown dtype 'F8'"},
      {"size_mismatch", R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}})", "xxxx", -1,
       "shape and dtype need 8"},
      {"out_of_range", ok4, "xx", -1, "beyond the data section"},
      {"overlap",
       R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[2,6]}})",
       "xxxxxx", -1, "overlaps"},
      {"hole", R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", "xxxxxxxx", -1, "hole"},
      {"neg_shape", R"({"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", "xxxx", -1, "non-negative"},
      {"bad_offsets", R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,0]}})", "xxxx", -1, "begin > end"},
  };
  for (const auto& c : cases) {
    fs::path p;
    if (c.declared == -2) {
      p = d / c.file;
      std::ofstream(p) << "abc";
    } else {
      p = write_raw(d, c.file, c.header, c.data, c.declared);
    }
    std::string msg = expect_error(p);
    EXPECT_NE(msg.find(p.string()), std::string::npos) << msg;
    EXPECT_NE(msg.find(c.expect), std::string::npos) << c.file << ": " << msg;
  }
}
