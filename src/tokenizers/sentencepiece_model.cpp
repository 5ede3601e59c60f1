#include "tokenizers/sentencepiece_model.hpp"

#include <cstring>
#include <fstream>
#include <iterator>
#include <unordered_map>

#include "core/error.hpp"

namespace pictor::tokenizers::spm {

namespace {

enum WireType : std::uint32_t { kVarint = 0, kFixed64 = 1, kLengthDelimited = 2, kFixed32 = 5 };

// One protobuf message being read; `where` is the path of field names for error messages.
class WireReader {
 public:
  WireReader(std::string_view data, const std::string& source, std::string where)
      : data_(data), source_(source), where_(std::move(where)) {}

  bool done() const { return pos_ >= data_.size(); }

  // Reads the next tag; returns the field number and sets the wire type.
  std::uint32_t next_field(std::uint32_t& wire_type) {
    const std::uint64_t tag = varint();
    wire_type = static_cast<std::uint32_t>(tag & 7);
    const std::uint64_t field = tag >> 3;
    if (field == 0 || field > 536870911) fail("invalid field number " + std::to_string(field));
    return static_cast<std::uint32_t>(field);
  }

  std::uint64_t varint() {
    std::uint64_t value = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (pos_ >= data_.size()) fail("truncated varint");
      const auto byte = static_cast<std::uint8_t>(data_[pos_++]);
      value |= static_cast<std::uint64_t>(byte & 0x7F) << shift;
      if (!(byte & 0x80)) return value;
    }
    fail("varint longer than 10 bytes");
  }

  std::string_view bytes() {
    const std::uint64_t n = varint();
    if (n > data_.size() - pos_)
      fail("length " + std::to_string(n) + " runs past the end (" + std::to_string(data_.size() - pos_) +
           " bytes left)");
    const std::string_view out = data_.substr(pos_, static_cast<std::size_t>(n));
    pos_ += static_cast<std::size_t>(n);
    return out;
  }

  float fixed32_float() {
    if (data_.size() - pos_ < 4) fail("truncated 32-bit value");
    std::uint32_t bits = 0;
    for (int i = 3; i >= 0; --i) bits = (bits << 8) | static_cast<std::uint8_t>(data_[pos_ + i]);
    pos_ += 4;
    float f;
    std::memcpy(&f, &bits, sizeof f);
    return f;
  }

  // Skips a field this reader does not keep.
  void skip(std::uint32_t wire_type) {
    switch (wire_type) {
      case kVarint: varint(); return;
      case kLengthDelimited: bytes(); return;
      case kFixed64: advance(8); return;
      case kFixed32: advance(4); return;
      default: fail("unsupported wire type " + std::to_string(wire_type));
    }
  }

  void expect(std::uint32_t wire_type, std::uint32_t expected, const char* field) {
    if (wire_type != expected)
      fail(std::string("field '") + field + "' has wire type " + std::to_string(wire_type) + ", expected " +
           std::to_string(expected));
  }

  std::int32_t int32(const char* field) {
    // int32 is encoded as a sign-extended 64-bit varint; anything outside int32 is malformed.
    const auto v = static_cast<std::int64_t>(varint());
    if (v < INT32_MIN || v > INT32_MAX) fail(std::string("field '") + field + "' is out of int32 range");
    return static_cast<std::int32_t>(v);
  }

  bool boolean() { return varint() != 0; }

  [[noreturn]] void fail(const std::string& what) const {
    throw Error(source_ + ": malformed SentencePiece model: " + where_ + " at byte " + std::to_string(pos_) + ": " +
                what);
  }

  const std::string& where() const { return where_; }

 private:
  void advance(std::size_t n) {
    if (data_.size() - pos_ < n) fail("truncated fixed-size value");
    pos_ += n;
  }

  std::string_view data_;
  std::size_t pos_ = 0;
  const std::string& source_;
  std::string where_;
};

ModelPiece parse_piece(WireReader r) {
  ModelPiece p;
  while (!r.done()) {
    std::uint32_t wt = 0;
    switch (r.next_field(wt)) {
      case 1:
        r.expect(wt, kLengthDelimited, "piece");
        p.piece = std::string(r.bytes());
        break;
      case 2:
        r.expect(wt, kFixed32, "score");
        p.score = r.fixed32_float();
        break;
      case 3: {
        r.expect(wt, kVarint, "type");
        const auto t = r.varint();
        if (t < 1 || t > 6) r.fail("unknown piece type " + std::to_string(t));
        p.type = static_cast<PieceType>(t);
        break;
      }
      default: r.skip(wt);
    }
  }
  return p;
}

void parse_trainer_spec(WireReader r, TrainerSpec& t) {
  while (!r.done()) {
    std::uint32_t wt = 0;
    switch (r.next_field(wt)) {
      case 3: {
        r.expect(wt, kVarint, "model_type");
        const auto m = r.varint();
        if (m < 1 || m > 4) r.fail("unknown model_type " + std::to_string(m));
        t.model_type = static_cast<ModelType>(m);
        break;
      }
      case 4:
        r.expect(wt, kVarint, "vocab_size");
        t.vocab_size = r.int32("vocab_size");
        break;
      case 24:
        r.expect(wt, kVarint, "treat_whitespace_as_suffix");
        t.treat_whitespace_as_suffix = r.boolean();
        break;
      case 35:
        r.expect(wt, kVarint, "byte_fallback");
        t.byte_fallback = r.boolean();
        break;
      case 40:
        r.expect(wt, kVarint, "unk_id");
        t.unk_id = r.int32("unk_id");
        break;
      case 41:
        r.expect(wt, kVarint, "bos_id");
        t.bos_id = r.int32("bos_id");
        break;
      case 42:
        r.expect(wt, kVarint, "eos_id");
        t.eos_id = r.int32("eos_id");
        break;
      case 43:
        r.expect(wt, kVarint, "pad_id");
        t.pad_id = r.int32("pad_id");
        break;
      case 44:
        r.expect(wt, kLengthDelimited, "unk_surface");
        t.unk_surface = std::string(r.bytes());
        break;
      case 45:
        r.expect(wt, kLengthDelimited, "unk_piece");
        t.unk_piece = std::string(r.bytes());
        break;
      case 46:
        r.expect(wt, kLengthDelimited, "bos_piece");
        t.bos_piece = std::string(r.bytes());
        break;
      case 47:
        r.expect(wt, kLengthDelimited, "eos_piece");
        t.eos_piece = std::string(r.bytes());
        break;
      case 48:
        r.expect(wt, kLengthDelimited, "pad_piece");
        t.pad_piece = std::string(r.bytes());
        break;
      default: r.skip(wt);
    }
  }
}

void parse_normalizer_spec(WireReader r, NormalizerSpec& n) {
  while (!r.done()) {
    std::uint32_t wt = 0;
    switch (r.next_field(wt)) {
      case 1:
        r.expect(wt, kLengthDelimited, "name");
        n.name = std::string(r.bytes());
        break;
      case 2:
        r.expect(wt, kLengthDelimited, "precompiled_charsmap");
        n.precompiled_charsmap = std::string(r.bytes());
        break;
      case 3:
        r.expect(wt, kVarint, "add_dummy_prefix");
        n.add_dummy_prefix = r.boolean();
        break;
      case 4:
        r.expect(wt, kVarint, "remove_extra_whitespaces");
        n.remove_extra_whitespaces = r.boolean();
        break;
      case 5:
        r.expect(wt, kVarint, "escape_whitespaces");
        n.escape_whitespaces = r.boolean();
        break;
      default: r.skip(wt);
    }
  }
}

std::string byte_piece(int b) {
  static const char* hex = "0123456789ABCDEF";
  return std::string("<0x") + hex[b >> 4] + hex[b & 15] + ">";
}

void validate(const ModelProto& m, const std::string& source) {
  const auto bad = [&](const std::string& what) { throw Error(source + ": invalid SentencePiece model: " + what); };
  if (m.pieces.empty()) bad("it has no pieces");
  std::unordered_map<std::string_view, PieceType> seen;
  int unknown = 0;
  int bytes = 0;
  for (std::size_t i = 0; i < m.pieces.size(); ++i) {
    const auto& p = m.pieces[i];
    if (p.piece.empty()) bad("piece " + std::to_string(i) + " is empty");
    if (!seen.emplace(p.piece, p.type).second)
      bad("piece " + std::to_string(i) + " '" + p.piece + "' is defined twice");
    if (p.type == PieceType::kUnknown) ++unknown;
    if (p.type == PieceType::kByte) {
      if (!m.trainer_spec.byte_fallback) bad("byte piece '" + p.piece + "' in a model without byte_fallback");
      ++bytes;
    }
  }
  if (unknown != 1) bad("it must have exactly one UNKNOWN piece, found " + std::to_string(unknown));
  if (m.trainer_spec.byte_fallback) {
    for (int b = 0; b < 256; ++b) {
      const auto it = seen.find(byte_piece(b));
      if (it == seen.end() || it->second != PieceType::kByte)
        bad("byte_fallback is set but there is no BYTE piece " + byte_piece(b));
    }
    if (bytes != 256) bad("byte_fallback needs 256 BYTE pieces, found " + std::to_string(bytes));
  }
}

}  // namespace

ModelProto parse_model_proto(std::string_view bytes, const std::string& source) {
  if (bytes.empty()) throw Error(source + ": empty file, not a SentencePiece model");
  ModelProto m;
  WireReader r(bytes, source, "ModelProto");
  while (!r.done()) {
    std::uint32_t wt = 0;
    const std::uint32_t field = r.next_field(wt);
    switch (field) {
      case 1:
        r.expect(wt, kLengthDelimited, "pieces");
        m.pieces.push_back(
            parse_piece(WireReader(r.bytes(), source, "pieces[" + std::to_string(m.pieces.size()) + "]")));
        break;
      // Repeated occurrences of a message field merge (protobuf semantics): the last value of each
      // scalar wins, so parsing each occurrence into the same struct does exactly that.
      case 2:
        r.expect(wt, kLengthDelimited, "trainer_spec");
        parse_trainer_spec(WireReader(r.bytes(), source, "trainer_spec"), m.trainer_spec);
        break;
      case 3:
        r.expect(wt, kLengthDelimited, "normalizer_spec");
        parse_normalizer_spec(WireReader(r.bytes(), source, "normalizer_spec"), m.normalizer_spec);
        break;
      default: r.skip(wt);
    }
  }
  validate(m, source);
  return m;
}

ModelProto load_model_proto(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw Error(file.string() + ": cannot open");
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) throw Error(file.string() + ": read error");
  return parse_model_proto(bytes, file.string());
}

}  // namespace pictor::tokenizers::spm
