#pragma once
// The SentencePiece model proper, as python's SentencePieceProcessor: normalization, segmentation of the
// normalized text by the model type (Unigram: Viterbi over all pieces; BPE: highest-scoring merges
// first), runs of unknown characters merged into one unknown piece or, with byte_fallback, spelled as
// <0xXX> byte pieces, and decoding back to text. No special-token handling: that is the tokenizer's
// job (sentencepiece_tokenizer.hpp). Needs no libtorch (the fuzzer links it alone).
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "tokenizers/sentencepiece_model.hpp"
#include "tokenizers/sentencepiece_normalizer.hpp"

namespace pictor::tokenizers::spm {

struct EncodedPiece {
  std::string piece;  // the piece text (for a merged unknown piece: its surface)
  int id = 0;
};

class Processor {
 public:
  // Throws pictor::Unsupported for WORD/CHAR models, pictor::Error for a malformed charsmap.
  Processor(ModelProto model, const std::string& source);
  // The piece tables view the strings of model_: copying would leave them pointing at the original.
  Processor(const Processor&) = delete;
  Processor& operator=(const Processor&) = delete;

  std::vector<EncodedPiece> encode(std::string_view text) const;
  std::vector<std::int64_t> encode_ids(std::string_view text) const;
  // Decoding as SentencePieceProcessor.decode: control pieces vanish, unknown ones become the
  // unk_surface (" ⁇ "), byte pieces are re-assembled into UTF-8 (invalid bytes -> U+FFFD), U+2581 ->
  // space and the dummy-prefix space at the start is dropped. Ids outside the vocabulary throw.
  std::string decode_ids(const std::vector<std::int64_t>& ids) const;
  std::string decode_pieces(const std::vector<std::string>& pieces) const;

  // Id of `piece`, or the unknown id when it is not a piece (as sp.piece_to_id).
  int piece_to_id(std::string_view piece) const;
  std::optional<int> find_piece(std::string_view piece) const;
  // Throws pictor::Error for an id outside the vocabulary.
  const std::string& id_to_piece(std::int64_t id) const;
  int size() const { return static_cast<int>(model_.pieces.size()); }
  int unk_id() const { return unk_id_; }
  PieceType type(int id) const { return model_.pieces[static_cast<std::size_t>(id)].type; }
  const ModelProto& model() const { return model_; }

 private:
  std::vector<EncodedPiece> segment_unigram(std::string_view normalized) const;
  std::vector<EncodedPiece> segment_bpe(std::string_view normalized) const;
  std::string decode(const std::vector<EncodedPiece>& pieces) const;
  // Pieces the segmenters may produce (NORMAL, USER_DEFINED, UNUSED).
  std::optional<int> find_segment_piece(std::string_view piece) const;

  ModelProto model_;
  std::string source_;
  std::unique_ptr<Normalizer> normalizer_;
  std::unordered_map<std::string_view, int> segment_pieces_;   // NORMAL / USER_DEFINED / UNUSED
  std::unordered_map<std::string_view, int> reserved_pieces_;  // CONTROL / UNKNOWN / BYTE
  std::vector<std::string> user_defined_;
  std::size_t max_piece_bytes_ = 0;
  int unk_id_ = 0;
  int byte_ids_[256] = {};       // byte value -> id of its <0xXX> piece
  std::vector<int> byte_of_id_;  // id -> byte value of a BYTE piece, -1 for other pieces
  float min_score_ = 0, max_score_ = 0;
};

}  // namespace pictor::tokenizers::spm
