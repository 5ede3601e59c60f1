#include "tokenizers/sentencepiece_processor.hpp"

#include <algorithm>
#include <cfloat>
#include <functional>
#include <map>
#include <queue>

#include "core/error.hpp"

namespace pictor::tokenizers::spm {

namespace {

std::string byte_piece(int b) {
  static const char* hex = "0123456789ABCDEF";
  return std::string("<0x") + hex[b >> 4] + hex[b & 15] + ">";
}

bool is_segment_type(PieceType t) {
  return t == PieceType::kNormal || t == PieceType::kUserDefined || t == PieceType::kUnused;
}

}  // namespace

Processor::Processor(ModelProto model, const std::string& source) : model_(std::move(model)), source_(source) {
  if (model_.trainer_spec.model_type != ModelType::kUnigram && model_.trainer_spec.model_type != ModelType::kBpe)
    throw Unsupported(source_ + ": trainer_spec.model_type " +
                      std::to_string(static_cast<int>(model_.trainer_spec.model_type)) +
                      " (only UNIGRAM = 1 and BPE = 2 are implemented)");
  // SentencePiece's own proto2 default min/max start values (FLT_MAX and FLT_MIN, the smallest
  // positive float) are kept: the user-defined bonus below depends on max_score_.
  min_score_ = FLT_MAX;
  max_score_ = FLT_MIN;
  for (std::size_t i = 0; i < model_.pieces.size(); ++i) {
    const auto& p = model_.pieces[i];
    const int id = static_cast<int>(i);
    (is_segment_type(p.type) ? segment_pieces_ : reserved_pieces_).emplace(p.piece, id);
    if (is_segment_type(p.type)) max_piece_bytes_ = std::max(max_piece_bytes_, p.piece.size());
    if (p.type == PieceType::kUserDefined) user_defined_.push_back(p.piece);
    if (p.type == PieceType::kUnknown) unk_id_ = id;
    if (p.type == PieceType::kNormal) {
      min_score_ = std::min(min_score_, p.score);
      max_score_ = std::max(max_score_, p.score);
    }
  }
  byte_of_id_.assign(model_.pieces.size(), -1);
  if (model_.trainer_spec.byte_fallback) {
    for (int b = 0; b < 256; ++b) {
      byte_ids_[b] = reserved_pieces_.at(byte_piece(b));  // all 256 are there: checked by the parser
      byte_of_id_[static_cast<std::size_t>(byte_ids_[b])] = b;
    }
  }
  normalizer_ = std::make_unique<Normalizer>(model_.normalizer_spec, model_.trainer_spec.treat_whitespace_as_suffix,
                                             user_defined_, source_);
}

std::optional<int> Processor::find_segment_piece(std::string_view piece) const {
  const auto it = segment_pieces_.find(piece);
  if (it == segment_pieces_.end()) return std::nullopt;
  return it->second;
}

std::optional<int> Processor::find_piece(std::string_view piece) const {
  if (const auto it = reserved_pieces_.find(piece); it != reserved_pieces_.end()) return it->second;
  return find_segment_piece(piece);
}

int Processor::piece_to_id(std::string_view piece) const {
  return find_piece(piece).value_or(unk_id_);
}

const std::string& Processor::id_to_piece(std::int64_t id) const {
  if (id < 0 || id >= size())
    throw Error(source_ + ": token id " + std::to_string(id) + " is outside the vocabulary (0.." +
                std::to_string(size() - 1) + ")");
  return model_.pieces[static_cast<std::size_t>(id)].piece;
}

// Unigram: the best-scoring segmentation (sum of piece log-probabilities), found left to right with one
// best path per end position. A character no piece covers becomes the unknown piece with a score
// below every real piece (min score - 10), so it is only used when nothing else fits.
std::vector<EncodedPiece> Processor::segment_unigram(std::string_view text) const {
  struct BestPath {
    int id = -1;
    float score = 0;
    int starts_at = -1;
  };
  constexpr float kUnkPenalty = 10.0f;
  const float unk_score = min_score_ - kUnkPenalty;
  const std::size_t size = text.size();
  std::vector<BestPath> best(size + 1);
  const auto offer = [&](std::size_t end, std::size_t start, int id, float score) {
    BestPath& node = best[end];
    if (node.starts_at == -1 || score > node.score) node = {id, score, static_cast<int>(start)};
  };
  std::size_t start = 0;
  while (start < size) {
    const float score_here = best[start].score;
    const std::size_t char_len = std::min<std::size_t>(one_char_len(text[start]), size - start);
    bool has_single_char_piece = false;
    const std::size_t longest = std::min(max_piece_bytes_, size - start);
    for (std::size_t len = 1; len <= longest; ++len) {
      const auto id = find_segment_piece(text.substr(start, len));
      if (!id) continue;
      const auto& piece = model_.pieces[static_cast<std::size_t>(*id)];
      if (piece.type == PieceType::kUnused) continue;
      if (piece.type == PieceType::kUserDefined) {
        // User-defined symbols get a bonus so that they are always chosen (SentencePiece's formula).
        offer(start + len, start, *id, static_cast<float>(len * max_score_ - 0.1 + score_here));
      } else {
        offer(start + len, start, *id, piece.score + score_here);
      }
      if (len == char_len) has_single_char_piece = true;
    }
    if (!has_single_char_piece) offer(start + char_len, start, unk_id_, unk_score + score_here);
    start += char_len;
  }
  std::vector<EncodedPiece> out;
  for (std::size_t end = size; end > 0;) {
    const BestPath& node = best[end];
    const auto begin = static_cast<std::size_t>(node.starts_at);
    out.push_back({std::string(text.substr(begin, end - begin)), node.id});
    end = begin;
  }
  std::reverse(out.begin(), out.end());
  return out;
}

// BPE: start from characters (user-defined symbols stay whole and never merge), repeatedly merge the
// adjacent pair whose concatenation is the highest-scoring piece (leftmost on ties), then split any
// UNUSED result back into the pieces it was merged from.
std::vector<EncodedPiece> Processor::segment_bpe(std::string_view text) const {
  struct Symbol {
    int prev = -1, next = -1;
    bool frozen = false;
    std::string_view piece;
  };
  struct Pair {
    int left, right;
    float score;
    std::size_t size;
  };
  const auto worse = [](const Pair& a, const Pair& b) {
    return a.score == b.score ? a.left > b.left : a.score < b.score;
  };
  std::priority_queue<Pair, std::vector<Pair>, decltype(worse)> agenda(worse);
  std::vector<Symbol> symbols;
  std::map<std::string_view, std::pair<std::string_view, std::string_view>> merged_from;

  while (!text.empty()) {
    Symbol s;
    std::size_t len = 0;
    for (const auto& u : user_defined_)
      if (u.size() > len && text.substr(0, u.size()) == u) len = u.size();
    s.frozen = len > 0;
    if (!s.frozen) len = std::min<std::size_t>(one_char_len(text[0]), text.size());
    s.piece = text.substr(0, len);
    const int index = static_cast<int>(symbols.size());
    s.prev = index - 1;
    text.remove_prefix(len);
    s.next = text.empty() ? -1 : index + 1;
    symbols.push_back(s);
  }
  if (symbols.empty()) return {};

  const auto add_pair = [&](int left, int right) {
    if (left == -1 || right == -1 || symbols[left].frozen || symbols[right].frozen) return;
    const std::string_view joined(symbols[left].piece.data(), symbols[left].piece.size() + symbols[right].piece.size());
    const auto id = find_segment_piece(joined);
    if (!id) return;
    agenda.push({left, right, model_.pieces[static_cast<std::size_t>(*id)].score, joined.size()});
    merged_from[joined] = {symbols[left].piece, symbols[right].piece};
  };
  for (std::size_t i = 1; i < symbols.size(); ++i) add_pair(static_cast<int>(i) - 1, static_cast<int>(i));

  while (!agenda.empty()) {
    const Pair top = agenda.top();
    agenda.pop();
    Symbol& left = symbols[top.left];
    Symbol& right = symbols[top.right];
    // Stale entry: one side was merged away since it was queued.
    if (left.piece.empty() || right.piece.empty() || left.piece.size() + right.piece.size() != top.size) continue;
    left.piece = std::string_view(left.piece.data(), left.piece.size() + right.piece.size());
    left.next = right.next;
    if (right.next >= 0) symbols[right.next].prev = top.left;
    right.piece = {};
    add_pair(left.prev, top.left);
    add_pair(top.left, left.next);
  }

  std::vector<EncodedPiece> out;
  std::function<void(std::string_view)> resegment = [&](std::string_view w) {
    const int id = piece_to_id(w);
    const auto it = merged_from.find(w);
    if (type(id) != PieceType::kUnused || it == merged_from.end()) {
      out.push_back({std::string(w), id});
      return;
    }
    resegment(it->second.first);
    resegment(it->second.second);
  };
  for (int i = 0; i != -1; i = symbols[i].next) resegment(symbols[i].piece);
  return out;
}

std::vector<EncodedPiece> Processor::encode(std::string_view text) const {
  const std::string normalized = normalizer_->normalize(text);
  if (normalized.empty()) return {};
  const auto segments =
      model_.trainer_spec.model_type == ModelType::kBpe ? segment_bpe(normalized) : segment_unigram(normalized);
  std::vector<EncodedPiece> out;
  bool prev_unknown = false;
  for (const auto& s : segments) {
    const bool unknown = s.id == unk_id_;
    if (unknown && model_.trainer_spec.byte_fallback) {
      for (const char c : s.piece) {
        const int b = static_cast<std::uint8_t>(c);
        out.push_back({byte_piece(b), byte_ids_[b]});
      }
    } else if (unknown && prev_unknown) {
      out.back().piece += s.piece;  // a run of unknown characters is one unknown piece
    } else {
      out.push_back(s);
    }
    prev_unknown = unknown;
  }
  return out;
}

std::vector<std::int64_t> Processor::encode_ids(std::string_view text) const {
  std::vector<std::int64_t> ids;
  for (const auto& p : encode(text)) ids.push_back(p.id);
  return ids;
}

std::string Processor::decode(const std::vector<EncodedPiece>& pieces) const {
  std::string text;
  std::string bytes;  // a run of byte pieces, re-assembled before any other piece is written
  const auto flush_bytes = [&] {
    for (std::size_t offset = 0; offset < bytes.size();) {
      std::size_t len = 1;
      if (valid_utf8_prefix(std::string_view(bytes).substr(offset), len))
        text += bytes.substr(offset, len);
      else
        text += kReplacementChar;
      offset += len;
    }
    bytes.clear();
  };
  const auto& norm = model_.normalizer_spec;
  const bool strip_leading_space = norm.add_dummy_prefix || norm.remove_extra_whitespaces;
  for (const auto& p : pieces) {
    const PieceType t = type(p.id);
    if (t == PieceType::kByte) {
      bytes += static_cast<char>(byte_of_id_[static_cast<std::size_t>(p.id)]);
      continue;
    }
    flush_bytes();
    if (t == PieceType::kControl) continue;  // <s>, </s> have no surface
    if (t == PieceType::kUnknown) {
      text +=
          p.piece == model_.pieces[static_cast<std::size_t>(p.id)].piece ? model_.trainer_spec.unk_surface : p.piece;
      continue;
    }
    std::string_view piece = p.piece;
    if (text.empty() && strip_leading_space && piece.substr(0, kSpaceSymbol.size()) == kSpaceSymbol)
      piece.remove_prefix(kSpaceSymbol.size());
    for (std::size_t pos = 0; pos < piece.size();) {
      if (piece.substr(pos, kSpaceSymbol.size()) == kSpaceSymbol) {
        text += ' ';
        pos += kSpaceSymbol.size();
      } else {
        text += piece[pos++];
      }
    }
  }
  flush_bytes();
  return text;
}

std::string Processor::decode_ids(const std::vector<std::int64_t>& ids) const {
  std::vector<EncodedPiece> pieces;
  for (const auto id : ids) pieces.push_back({id_to_piece(id), static_cast<int>(id)});
  return decode(pieces);
}

std::string Processor::decode_pieces(const std::vector<std::string>& pieces) const {
  std::vector<EncodedPiece> out;
  for (const auto& p : pieces) out.push_back({p, piece_to_id(p)});
  return decode(out);
}

}  // namespace pictor::tokenizers::spm
