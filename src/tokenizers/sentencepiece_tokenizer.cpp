#include "tokenizers/sentencepiece_tokenizer.hpp"

#include <algorithm>

#include "core/error.hpp"
#include "tokenizers/added_tokens.hpp"

namespace pictor::tokenizers {

namespace {

constexpr const char* kUnderline = "\xE2\x96\x81";  // U+2581, SentencePiece's space marker

std::vector<std::string> pieces_of(const std::vector<spm::EncodedPiece>& encoded) {
  std::vector<std::string> pieces;
  pieces.reserve(encoded.size());
  for (const auto& p : encoded) pieces.push_back(p.piece);
  return pieces;
}

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
  for (std::size_t pos = 0; (pos = s.find(from, pos)) != std::string::npos; pos += to.size())
    s.replace(pos, from.size(), to);
  return s;
}

}  // namespace

SentencePieceTokenizer SentencePieceTokenizer::load(const std::filesystem::path& model_file,
                                                    const SentencePieceOptions& options) {
  SentencePieceTokenizer tok;
  tok.source_ = model_file.string();
  const spm::ModelProto proto = spm::load_model_proto(model_file);
  tok.raw_ = std::make_shared<const spm::Processor>(proto, tok.source_);

  const TokenizerConfigInfo info = read_tokenizer_config(model_file.parent_path());
  tok.legacy_ = options.legacy.value_or(info.legacy.value_or(true));
  tok.add_prefix_space_ = info.add_prefix_space.value_or(true);
  tok.add_bos_ = info.add_bos_token.value_or(true);
  tok.add_eos_ = info.add_eos_token.value_or(false);
  tok.special_ = info.special;
  const auto& sp = *tok.raw_;
  // Without a config, the model's own control pieces (trainer_spec bos/eos piece) and its unknown piece.
  const auto control_piece = [&](const std::string& piece) {
    const auto id = sp.find_piece(piece);
    return id && sp.type(*id) == spm::PieceType::kControl ? piece : std::string();
  };
  if (tok.special_.bos.empty()) tok.special_.bos = control_piece(proto.trainer_spec.bos_piece);
  if (tok.special_.eos.empty()) tok.special_.eos = control_piece(proto.trainer_spec.eos_piece);
  if (tok.special_.unk.empty()) tok.special_.unk = sp.id_to_piece(sp.unk_id());

  if (tok.legacy_) {
    tok.model_ = tok.raw_;
  } else {
    // LlamaTokenizer(legacy=False) loads the model with normalizer_spec.add_dummy_prefix = False.
    spm::ModelProto no_prefix = proto;
    no_prefix.normalizer_spec.add_dummy_prefix = false;
    tok.model_ = std::make_shared<const spm::Processor>(std::move(no_prefix), tok.source_);
  }

  // Added tokens: added_tokens_decoder, plus the named special tokens (control pieces of the model).
  tok.added_ = info.added;
  std::vector<std::string> named = {tok.special_.bos, tok.special_.eos, tok.special_.unk, tok.special_.pad};
  named.insert(named.end(), tok.special_.additional.begin(), tok.special_.additional.end());
  for (const auto& content : named) {
    if (content.empty()) continue;
    if (std::any_of(tok.added_.begin(), tok.added_.end(), [&](const AddedToken& a) { return a.content == content; }))
      continue;
    const int id = sp.piece_to_id(content);
    if (id == sp.unk_id() && content != tok.special_.unk)
      throw Error(tok.source_ + ": special token '" + content + "' is not a piece of the model");
    tok.added_.push_back({content, id, true, false, false});
  }
  for (auto& a : tok.added_)
    if (std::find(named.begin(), named.end(), a.content) != named.end()) a.special = true;
  std::sort(tok.added_.begin(), tok.added_.end(), [](const auto& a, const auto& b) { return a.id < b.id; });
  if (tok.add_bos_ && !tok.bos_id()) throw Error(tok.source_ + ": add_bos_token is set but the model has no BOS");
  if (tok.add_eos_ && !tok.eos_id()) throw Error(tok.source_ + ": add_eos_token is set but the model has no EOS");
  if (!tok.special_.unk.empty()) tok.unk_token_length_ = tok.model_->encode(tok.special_.unk).size();
  return tok;
}

std::vector<std::string> SentencePieceTokenizer::model_tokenize(const std::string& text) const {
  const bool starts_with_space = text.rfind(kUnderline, 0) == 0 || text.rfind(' ', 0) == 0;
  if (legacy_ || !starts_with_space) return pieces_of(model_->encode(text));
  // The dummy prefix is off, so a leading space would be dropped as "extra whitespace": encode behind the
  // unk token text and cut its pieces off again (LlamaTokenizer._tokenize).
  std::vector<std::string> pieces = pieces_of(model_->encode(special_.unk + text));
  if (pieces.size() >= unk_token_length_)
    pieces.erase(pieces.begin(), pieces.begin() + static_cast<long>(unk_token_length_));
  return pieces;
}

std::vector<std::string> SentencePieceTokenizer::tokenize(const std::string& raw_text) const {
  std::string text = raw_text;
  if (!legacy_ && !text.empty()) {
    text = replace_all(text, kUnderline, " ");
    if (add_prefix_space_) text = kUnderline + text;
  }
  std::vector<std::string> tokens;
  for (const auto& piece : split_on_added_tokens(text, added_)) {
    if (piece.token) {
      tokens.push_back(piece.token->content);
    } else {
      auto part = model_tokenize(piece.text);
      tokens.insert(tokens.end(), part.begin(), part.end());
    }
  }
  if (!legacy_ && !raw_text.empty() && tokens.size() > 1 && tokens[0] == kUnderline && is_special_token(tokens[1]))
    tokens.erase(tokens.begin());
  return tokens;
}

std::vector<std::int64_t> SentencePieceTokenizer::encode(const std::string& text, bool add_special_tokens) const {
  std::vector<std::int64_t> ids;
  if (add_special_tokens && add_bos_) ids.push_back(*bos_id());
  for (const auto& token : tokenize(text)) ids.push_back(*token_to_id(token));
  if (add_special_tokens && add_eos_) ids.push_back(*eos_id());
  return ids;
}

bool SentencePieceTokenizer::is_special_token(const std::string& token) const {
  return std::any_of(added_.begin(), added_.end(),
                     [&](const AddedToken& a) { return a.special && a.content == token; });
}

std::string SentencePieceTokenizer::decode(const std::vector<std::int64_t>& ids, bool skip_special_tokens) const {
  std::vector<std::string> tokens;
  for (const auto id : ids) {
    if (skip_special_tokens && is_special_id(id)) continue;
    tokens.push_back(id_to_token(id));
  }
  if (tokens.empty()) return "";
  // LlamaTokenizer.convert_tokens_to_string: the hand-added prefix space goes, special tokens are copied
  // verbatim (legacy: with a space in front), runs of ordinary pieces are decoded by SentencePiece.
  if (add_prefix_space_ && tokens[0].rfind(kUnderline, 0) == 0) tokens[0] = tokens[0].substr(3);
  std::string out;
  std::vector<std::string> run;
  bool prev_special = false;
  for (std::size_t i = 0; i < tokens.size(); ++i) {
    if (is_special_token(tokens[i])) {
      if (!prev_special && i != 0 && legacy_) out += " ";
      out += model_->decode_pieces(run) + tokens[i];
      run.clear();
      prev_special = true;
    } else {
      if (prev_special && i == 1 && add_prefix_space_ && tokens[i].rfind(kUnderline, 0) != 0) out += " ";
      run.push_back(tokens[i]);
      prev_special = false;
    }
  }
  return out + model_->decode_pieces(run);
}

std::optional<std::int64_t> SentencePieceTokenizer::token_to_id(const std::string& token) const {
  for (const auto& a : added_)
    if (a.content == token) return a.id;
  return raw_->piece_to_id(token);  // unknown pieces give the unk id, as sp_model.piece_to_id
}

std::string SentencePieceTokenizer::id_to_token(std::int64_t id) const {
  for (const auto& a : added_)
    if (a.id == id) return a.content;
  return raw_->id_to_piece(id);  // throws for an id outside the vocabulary
}

std::size_t SentencePieceTokenizer::vocab_size() const {
  std::size_t n = static_cast<std::size_t>(raw_->size());
  for (const auto& a : added_) n = std::max(n, static_cast<std::size_t>(a.id) + 1);
  return n;
}

std::vector<std::int64_t> SentencePieceTokenizer::sp_encode(const std::string& text) const {
  return raw_->encode_ids(text);
}

std::vector<std::string> SentencePieceTokenizer::sp_encode_pieces(const std::string& text) const {
  return pieces_of(raw_->encode(text));
}

std::string SentencePieceTokenizer::sp_decode(const std::vector<std::int64_t>& ids) const {
  return raw_->decode_ids(ids);
}

}  // namespace pictor::tokenizers
