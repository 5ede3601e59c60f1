#pragma once
// The SentencePiece model file (tokenizer.model): a serialized sentencepiece.ModelProto, read with a
// small protobuf wire-format reader of our own (Debian's libsentencepiece bundles a protobuf that
// clashes with libtorch's). Only the fields tokenization needs are kept; every other field is skipped.
// Every length and index is bounds-checked: a malformed file is a pictor::Error naming the file and the
// field, never a crash (fuzz/sentencepiece_fuzz.cpp exercises this).
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace pictor::tokenizers::spm {

// ModelProto.SentencePiece.Type
enum class PieceType { kNormal = 1, kUnknown = 2, kControl = 3, kUserDefined = 4, kUnused = 5, kByte = 6 };
// TrainerSpec.ModelType
enum class ModelType { kUnigram = 1, kBpe = 2, kWord = 3, kChar = 4 };

struct ModelPiece {
  std::string piece;
  float score = 0;
  PieceType type = PieceType::kNormal;
};

// The TrainerSpec fields that matter at encode/decode time (proto2 defaults).
struct TrainerSpec {
  ModelType model_type = ModelType::kUnigram;
  std::int32_t vocab_size = 8000;
  bool byte_fallback = false;
  bool treat_whitespace_as_suffix = false;
  std::int32_t unk_id = 0, bos_id = 1, eos_id = 2, pad_id = -1;
  std::string unk_piece = "<unk>", bos_piece = "<s>", eos_piece = "</s>", pad_piece = "<pad>";
  std::string unk_surface = " \xE2\x81\x87 ";  // " ⁇ ": what decode() writes for an unknown piece
};

struct NormalizerSpec {
  std::string name;
  std::string precompiled_charsmap;  // Darts double-array trie + normalized strings (may be empty)
  bool add_dummy_prefix = true;
  bool remove_extra_whitespaces = true;
  bool escape_whitespaces = true;
};

struct ModelProto {
  std::vector<ModelPiece> pieces;  // index = id
  TrainerSpec trainer_spec;
  NormalizerSpec normalizer_spec;
};

// Parses a serialized ModelProto; `source` names the file in error messages. Checks the wire format
// (truncation, lengths, wire types, enum values) and the model's consistency as SentencePiece does:
// at least one piece, no empty or duplicate pieces, exactly one UNKNOWN piece, BYTE pieces only with
// byte_fallback (and then all 256 of them).
ModelProto parse_model_proto(std::string_view bytes, const std::string& source);
// Reads and parses `file`.
ModelProto load_model_proto(const std::filesystem::path& file);

}  // namespace pictor::tokenizers::spm
