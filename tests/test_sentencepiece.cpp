// SentencePiece (own .model reader, normalizer, Unigram/BPE, byte fallback, LlamaTokenizer rules):
// golden conformance through the runner, hand-built models for the segmenters, round trips, and clear
// errors for malformed or truncated .model files.
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>

#include "core/error.hpp"
#include "core/json_file.hpp"
#include "dev/conform.hpp"
#include "expect_error.hpp"
#include "support.hpp"
#include "tokenizers/llm_tokenizer.hpp"
#include "tokenizers/sentencepiece_model.hpp"
#include "tokenizers/sentencepiece_processor.hpp"
#include "tokenizers/sentencepiece_tokenizer.hpp"

using namespace pictor;
using tokenizers::SentencePieceTokenizer;
using tokenizers::spm::ModelProto;
using tokenizers::spm::PieceType;
using tokenizers::spm::Processor;

namespace {

const char* const kFixture = "vlm/tokenizer_sentencepiece/test_sentencepiece_llama_legacy_false/tokenizer.model";
const char* const kByteFixture =
    "vlm/tokenizer_sentencepiece/test_sentencepiece_with_bytefallback_llama_legacy_false/tokenizer.model";

// --- a tiny protobuf writer, to build models by hand ---
std::string varint(std::uint64_t v) {
  std::string out;
  do {
    const auto b = static_cast<char>(v & 0x7F);
    v >>= 7;
    out += static_cast<char>(b | (v ? 0x80 : 0));
  } while (v);
  return out;
}
std::string field_varint(int num, std::uint64_t v) {
  return varint(static_cast<std::uint64_t>(num) << 3) + varint(v);
}
std::string field_bytes(int num, const std::string& s) {
  return varint((static_cast<std::uint64_t>(num) << 3) | 2) + varint(s.size()) + s;
}
std::string field_float(int num, float f) {
  char raw[4];
  std::memcpy(raw, &f, 4);
  return varint((static_cast<std::uint64_t>(num) << 3) | 5) + std::string(raw, 4);
}
std::string piece(const std::string& text, float score, PieceType type = PieceType::kNormal) {
  return field_bytes(1, field_bytes(1, text) + field_float(2, score) + field_varint(3, static_cast<int>(type)));
}
// <unk> <s> </s> + `pieces`; identity normalization with the usual whitespace handling.
std::string model_bytes(int model_type, const std::string& pieces, bool byte_fallback = false) {
  std::string out = piece("<unk>", 0, PieceType::kUnknown) + piece("<s>", 0, PieceType::kControl) +
                    piece("</s>", 0, PieceType::kControl);
  if (byte_fallback) {
    for (int b = 0; b < 256; ++b) {
      char name[8];
      std::snprintf(name, sizeof name, "<0x%02X>", b);
      out += piece(name, 0, PieceType::kByte);
    }
  }
  out += pieces;
  out += field_bytes(2, field_varint(3, static_cast<std::uint64_t>(model_type)) + field_varint(35, byte_fallback));
  out += field_bytes(3, field_bytes(1, "identity"));
  return out;
}
Processor processor_of(const std::string& bytes) {
  return Processor(tokenizers::spm::parse_model_proto(bytes, "hand.model"), "hand.model");
}
std::vector<std::string> pieces_of(const Processor& p, const std::string& text) {
  std::vector<std::string> out;
  for (const auto& e : p.encode(text)) out.push_back(e.piece);
  return out;
}

std::string read_bytes(const std::filesystem::path& p) {
  std::ifstream f(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}
using test::write_file;

using test::expect_error;

const std::string kU = "\xE2\x96\x81";  // U+2581

}  // namespace

TEST(SentencePieceGolden, AllCasesMatch) {
  PICTOR_REQUIRE_GOLDEN();
  std::string kind;
  const auto rep = dev::run_conform(test::golden_dir() / "vlm/tokenizer_sentencepiece", &kind);
  EXPECT_EQ(kind, "sentencepiece_tokenizer");
  EXPECT_EQ(rep.results().size(), 2u * (1 + 40 * 7)) << rep.format();
  EXPECT_TRUE(rep.all_pass()) << rep.format();
}

TEST(SentencePieceGolden, FixtureModelsAsSpecified) {
  PICTOR_REQUIRE_GOLDEN();
  const ModelProto m = tokenizers::spm::load_model_proto(test::golden_dir() / kByteFixture);
  EXPECT_EQ(m.pieces.size(), 2000u);
  EXPECT_EQ(m.trainer_spec.model_type, tokenizers::spm::ModelType::kUnigram);
  EXPECT_TRUE(m.trainer_spec.byte_fallback);
  EXPECT_EQ(m.normalizer_spec.name, "nmt_nfkc");
  EXPECT_TRUE(m.normalizer_spec.add_dummy_prefix);
  EXPECT_FALSE(m.normalizer_spec.precompiled_charsmap.empty());
  EXPECT_EQ(m.pieces[0].type, PieceType::kUnknown);
  EXPECT_EQ(m.pieces[1].piece, "<s>");
  EXPECT_EQ(m.pieces[3].piece, "<0x00>");
}

TEST(SentencePieceTokenizer, RoundTripsThroughBothModels) {
  PICTOR_REQUIRE_GOLDEN();
  const auto byte_model = SentencePieceTokenizer::load(test::golden_dir() / kByteFixture);
  const auto plain_model = SentencePieceTokenizer::load(test::golden_dir() / kFixture);
  // Text that the nmt_nfkc normalizer leaves as it is (NFKC, single inner spaces) round-trips exactly;
  // the small fixture vocabulary has no pieces for "é", "9", "=" or "<", so only plain words go through both.
  for (const std::string text : {"Hello world", "This is a test", "I was born in 2000, and this is fine."}) {
    EXPECT_EQ(plain_model.sp_decode(plain_model.sp_encode(text)), text);
    EXPECT_EQ(plain_model.decode(plain_model.encode(text), true), text);
  }
  for (const std::string text :
       {"caf\xC3\xA9 na\xC3\xAFve r\xC3\xA9sum\xC3\xA9", "I was born in 92000, and this is fals\xC3\xA9.",
        "x = 42 + 7*6", "Hey <s>. how</s> are you"})
    EXPECT_EQ(byte_model.sp_decode(byte_model.sp_encode(text)), text);
  // With byte fallback nothing is lost, whatever the script.
  for (const std::string text : {"\xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E",
                                 "a\xF0\x9F\xA6\x99"
                                 "b",
                                 "\xF0\x9F\x98\x80\xF0\x9F\x98\x83", "\xD0\x9F\xD1\x80\xD0\xB8"}) {
    EXPECT_EQ(byte_model.sp_decode(byte_model.sp_encode(text)), text);
    EXPECT_EQ(byte_model.decode(byte_model.encode(text), true), text);
  }
  // Without it, unknown characters come back as the unk surface " ⁇ ", one per run.
  EXPECT_EQ(plain_model.sp_decode(plain_model.sp_encode("a\xF0\x9F\xA6\x99\xF0\x9F\xA6\x99"
                                                        "b")),
            "a \xE2\x81\x87 b");
}

TEST(SentencePieceTokenizer, LoadLlmTokenizerPicksTokenizerModel) {
  PICTOR_REQUIRE_GOLDEN();
  const auto dir = (test::golden_dir() / kByteFixture).parent_path();
  const auto tok = tokenizers::load_llm_tokenizer(dir);
  ASSERT_NE(dynamic_cast<const SentencePieceTokenizer*>(tok.get()), nullptr);
  EXPECT_EQ(tok->bos_id(), 1);
  EXPECT_EQ(tok->eos_id(), 2);
  EXPECT_EQ(tok->unk_id(), 0);
  EXPECT_EQ(tok->vocab_size(), 2000u);
  EXPECT_EQ(tok->encode("Hello world"), (std::vector<std::int64_t>{1, 366, 354, 294, 1294}));
  EXPECT_EQ(tok->encode("Hey <s>. how"), (std::vector<std::int64_t>{1, 366, 304, 1, 260, 491}));  // legacy: false
  EXPECT_EQ(tok->decode({1, 366, 304, 1, 260, 491}, true), "Hey. how");
  EXPECT_THROW(tok->decode({5000}), Error);
}

TEST(SentencePieceUnigram, PicksTheBestScoringSegmentation) {
  // "▁ab" alone (-5) loses to "▁a" + "b" (-1 + -1); unknown characters cost min score - 10.
  const auto p = processor_of(
      model_bytes(1, piece(kU + "a", -1) + piece("b", -1) + piece(kU + "ab", -5) + piece(kU, -3) + piece("c", -2)));
  EXPECT_EQ(pieces_of(p, "ab"), (std::vector<std::string>{kU + "a", "b"}));
  EXPECT_EQ(pieces_of(p, "  ab  c "), (std::vector<std::string>{kU + "a", "b", kU, "c"}));
  EXPECT_EQ(pieces_of(p, "axyb"), (std::vector<std::string>{kU + "a", "xy", "b"}));  // one merged unknown
  EXPECT_EQ(p.encode("axyb")[1].id, p.unk_id());
  EXPECT_EQ(p.decode_ids(p.encode_ids("axyb")), "a \xE2\x81\x87 b");
  EXPECT_EQ(p.decode_ids({1, 3, 4, 2}), "ab");  // control pieces have no surface; the dummy prefix goes
  EXPECT_TRUE(p.encode("   ").empty());
}

TEST(SentencePieceUnigram, UserDefinedPiecesAreKeptWhole) {
  const auto p = processor_of(model_bytes(
      1, piece(kU + "a", -1) + piece("<tag>", 0, PieceType::kUserDefined) + piece("<", -1) + piece("t", -1)));
  EXPECT_EQ(pieces_of(p, "a<tag>"), (std::vector<std::string>{kU + "a", "<tag>"}));
}

TEST(SentencePieceBpe, MergesHighestScoreFirstAndResegmentsUnused) {
  const std::string pieces = piece(kU, -1) + piece("a", -2) + piece("b", -3) + piece("c", -4) + piece("ab", -5) +
                             piece(kU + "ab", -6) + piece("bc", -0.5f) + piece("abc", 0, PieceType::kUnused) +
                             piece("<x>", 0, PieceType::kUserDefined);
  const auto p = processor_of(model_bytes(2, pieces));
  // "bc" (-0.5) merges before "▁a"... there is no "▁a", so "▁" + "a" + "bc".
  EXPECT_EQ(pieces_of(p, "abc"), (std::vector<std::string>{kU, "a", "bc"}));
  EXPECT_EQ(pieces_of(p, "ab"), (std::vector<std::string>{kU + "ab"}));
  EXPECT_EQ(pieces_of(p, "ab<x>c"), (std::vector<std::string>{kU + "ab", "<x>", "c"}));
  EXPECT_EQ(p.decode_ids(p.encode_ids("ab<x>c ab")), "ab<x>c ab");
}

TEST(SentencePieceByteFallback, UnknownCharactersBecomeBytesAndInvalidBytesDecodeToReplacement) {
  const auto p = processor_of(model_bytes(1, piece(kU + "a", -1), true));
  const auto enc = p.encode("a\xC3\xA9");
  ASSERT_EQ(enc.size(), 3u);
  EXPECT_EQ(enc[1].piece, "<0xC3>");
  EXPECT_EQ(enc[2].piece, "<0xA9>");
  EXPECT_EQ(p.decode_ids(p.encode_ids("a\xC3\xA9")), "a\xC3\xA9");
  EXPECT_EQ(p.decode_ids({enc[0].id, enc[1].id}), "a\xEF\xBF\xBD");  // a lone lead byte
  // Malformed UTF-8 in the input is normalized to U+FFFD before segmentation.
  EXPECT_EQ(p.decode_ids(p.encode_ids("a\xFF")), "a\xEF\xBF\xBD");
}

TEST(SentencePieceModel, MalformedModelsNameTheFileAndField) {
  const std::string good = model_bytes(1, piece("a", -1));
  EXPECT_NO_THROW(processor_of(good));
  expect_error([&] { tokenizers::spm::parse_model_proto("", "x.model"); }, {"x.model", "empty"});
  expect_error([&] { tokenizers::spm::parse_model_proto("not a protobuf", "x.model"); }, {"x.model", "SentencePiece"});
  // Wrong wire type for a known field, an unknown enum, a group.
  expect_error([&] { tokenizers::spm::parse_model_proto(field_varint(1, 5), "x.model"); }, {"x.model", "pieces"});
  expect_error([&] { tokenizers::spm::parse_model_proto(good + field_bytes(2, field_varint(3, 9)), "x.model"); },
               {"x.model", "model_type"});
  expect_error([&] { tokenizers::spm::parse_model_proto(good + varint((7 << 3) | 3), "x.model"); },
               {"x.model", "wire type"});
  // Consistency: no unknown piece, duplicates, empty pieces, bytes without byte_fallback.
  expect_error([&] { tokenizers::spm::parse_model_proto(piece("a", 0), "x.model"); }, {"x.model", "UNKNOWN"});
  expect_error([&] { tokenizers::spm::parse_model_proto(good + piece("a", -2), "x.model"); },
               {"x.model", "'a'", "twice"});
  expect_error([&] { tokenizers::spm::parse_model_proto(good + piece("", -2), "x.model"); }, {"x.model", "empty"});
  expect_error([&] { tokenizers::spm::parse_model_proto(good + piece("<0x00>", 0, PieceType::kByte), "x.model"); },
               {"x.model", "byte_fallback"});
  // Word/char models are not implemented.
  EXPECT_THROW(processor_of(model_bytes(3, piece("a", -1))), Unsupported);
  // A charsmap whose trie size runs past its blob.
  expect_error([&] { processor_of(good + field_bytes(3, field_bytes(2, std::string("\xFF\x00\x00\x00xxxx", 8)))); },
               {"hand.model", "precompiled_charsmap"});
}

TEST(SentencePieceModel, TruncatedFilesAreErrorsNotCrashes) {
  PICTOR_REQUIRE_GOLDEN();
  const std::string bytes = read_bytes(test::golden_dir() / kFixture);
  ASSERT_GT(bytes.size(), 1000u);
  const auto dir = test::temp_dir("spm_trunc");
  int errors = 0;
  for (const std::size_t cut : {std::size_t{1}, std::size_t{2}, std::size_t{7}, std::size_t{100}, bytes.size() / 3,
                                bytes.size() - 237000, bytes.size() - 5, bytes.size() - 1}) {
    write_file(dir / "tokenizer.model", bytes.substr(0, cut));
    try {
      SentencePieceTokenizer::load(dir / "tokenizer.model");
    } catch (const Error& e) {
      ++errors;
      EXPECT_NE(std::string(e.what()).find("tokenizer.model"), std::string::npos) << e.what();
    }
  }
  EXPECT_EQ(errors, 8);
  expect_error([&] { SentencePieceTokenizer::load(dir / "missing.model"); }, {"missing.model"});
}
