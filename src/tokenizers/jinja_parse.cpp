// Jinja lexer and parser: template text -> JinjaTemplate::Node tree (see jinja_ast.hpp).
#include <algorithm>
#include <cctype>
#include <cstring>

#include "core/error.hpp"
#include "tokenizers/jinja_ast.hpp"

namespace pictor::tokenizers {

namespace {

using jinja::Expr;
using jinja::ExprPtr;
using Node = JinjaTemplate::Node;

struct Token {
  enum class Kind { Text, BlockBegin, BlockEnd, VarBegin, VarEnd, Name, String, Number, Op, End };
  Kind kind;
  std::string text;
  nlohmann::json number;
  int line;
};

class Lexer {
 public:
  Lexer(const std::string& src, const std::string& name) : src_(src), name_(name) {
    // keep_trailing_newline=False: one final newline of the template is dropped.
    if (!src_.empty() && src_.back() == '\n') {
      src_.pop_back();
      if (!src_.empty() && src_.back() == '\r') src_.pop_back();
    }
  }

  std::vector<Token> run() {
    std::size_t pos = 0;
    bool strip_next = false, trim_newline = false;
    while (pos < src_.size()) {
      std::size_t open = find_tag(pos);
      std::string text = src_.substr(pos, open - pos);
      if (strip_next)
        text.erase(0, text.find_first_not_of(" \t\r\n") == std::string::npos ? text.size()
                                                                             : text.find_first_not_of(" \t\r\n"));
      else if (trim_newline && !text.empty()) {  // trim_blocks: the first newline after a block tag goes
        if (text[0] == '\n')
          text.erase(0, 1);
        else if (text.rfind("\r\n", 0) == 0)
          text.erase(0, 2);
      }
      strip_next = trim_newline = false;
      if (open == src_.size()) {
        push_text(text);
        break;
      }
      const char type = src_[open + 1];  // '{', '%' or '#'
      std::size_t inner = open + 2;
      bool lstrip = type != '{';  // lstrip_blocks applies to block tags and comments
      if (inner < src_.size() && src_[inner] == '-') {
        const auto last = text.find_last_not_of(" \t\r\n");
        text.erase(last == std::string::npos ? 0 : last + 1);
        lstrip = false;
        ++inner;
      } else if (inner < src_.size() && src_[inner] == '+') {
        lstrip = false;
        ++inner;
      }
      if (lstrip) {  // lstrip_blocks: only spaces/tabs between the line start (in the source) and the tag
        std::size_t k = open;
        while (k > 0 && (src_[k - 1] == ' ' || src_[k - 1] == '\t')) --k;
        if (k == 0 || src_[k - 1] == '\n') text.erase(text.size() - std::min(text.size(), open - k));
      }
      push_text(text);
      line_ += count_lines(pos, open);
      if (type == '#') {
        const std::size_t close = src_.find("#}", inner);
        if (close == std::string::npos) fail("unterminated comment");
        strip_next = close > inner && src_[close - 1] == '-';
        trim_newline = !strip_next;
        line_ += count_lines(open, close + 2);
        pos = close + 2;
        continue;
      }
      tokens_.push_back({type == '{' ? Token::Kind::VarBegin : Token::Kind::BlockBegin, "", {}, line_});
      pos = lex_tag(inner, type == '{' ? '}' : '%', strip_next);
      trim_newline = type == '%' && !strip_next;
    }
    tokens_.push_back({Token::Kind::End, "", {}, line_});
    return std::move(tokens_);
  }

 private:
  [[noreturn]] void fail(const std::string& what) const {
    throw Error(name_ + ":" + std::to_string(line_) + ": " + what);
  }
  int count_lines(std::size_t from, std::size_t to) const {
    int n = 0;
    for (std::size_t i = from; i < to && i < src_.size(); ++i) n += src_[i] == '\n';
    return n;
  }
  std::size_t find_tag(std::size_t from) const {
    for (std::size_t i = from; i + 1 < src_.size(); ++i)
      if (src_[i] == '{' && (src_[i + 1] == '{' || src_[i + 1] == '%' || src_[i + 1] == '#')) return i;
    return src_.size();
  }
  void push_text(const std::string& text) {
    if (!text.empty()) tokens_.push_back({Token::Kind::Text, text, {}, line_});
  }

  // Expression tokens up to the closing "}}" / "%}"; returns the position after it.
  std::size_t lex_tag(std::size_t pos, char closer, bool& strip_after) {
    static const char* const kOps[] = {"==", "!=", "<=", ">=", "//", "**", "+", "-", "*", "/", "%", "~", "<",
                                       ">",  "|",  ".",  ",",  ":",  "(",  ")", "[", "]", "{", "}", "="};
    while (pos < src_.size()) {
      const char c = src_[pos];
      if (c == '\n') ++line_;
      if (std::isspace(static_cast<unsigned char>(c))) {
        ++pos;
        continue;
      }
      const bool dash =
          c == '-' && pos + 2 < src_.size() + 1 && src_.compare(pos + 1, 2, std::string(1, closer) + "}") == 0;
      if (dash || (c == closer && pos + 1 < src_.size() && src_[pos + 1] == '}')) {
        strip_after = dash;
        tokens_.push_back({closer == '}' ? Token::Kind::VarEnd : Token::Kind::BlockEnd, "", {}, line_});
        return pos + (dash ? 3 : 2);
      }
      if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
        std::size_t end = pos;
        while (end < src_.size() && (std::isalnum(static_cast<unsigned char>(src_[end])) || src_[end] == '_')) ++end;
        tokens_.push_back({Token::Kind::Name, src_.substr(pos, end - pos), {}, line_});
        pos = end;
      } else if (std::isdigit(static_cast<unsigned char>(c))) {
        std::size_t end = pos;
        bool is_float = false;
        while (end < src_.size() && (std::isdigit(static_cast<unsigned char>(src_[end])) || src_[end] == '_' ||
                                     (src_[end] == '.' && !is_float && end + 1 < src_.size() &&
                                      std::isdigit(static_cast<unsigned char>(src_[end + 1])))))
          is_float = is_float || src_[end++] == '.';
        std::string digits;
        for (std::size_t i = pos; i < end; ++i)
          if (src_[i] != '_') digits += src_[i];
        tokens_.push_back({Token::Kind::Number, digits,
                           is_float ? nlohmann::json(std::stod(digits)) : nlohmann::json(std::stoll(digits)), line_});
        pos = end;
      } else if (c == '\'' || c == '"') {
        std::string value;
        std::size_t i = pos + 1;
        for (; i < src_.size() && src_[i] != c; ++i) {
          if (src_[i] != '\\' || i + 1 >= src_.size()) {
            value += src_[i];
            continue;
          }
          const char e = src_[++i];
          switch (e) {
            case 'n': value += '\n'; break;
            case 't': value += '\t'; break;
            case 'r': value += '\r'; break;
            case '\\': value += '\\'; break;
            case '\'': value += '\''; break;
            case '"': value += '"'; break;
            default: value += '\\', value += e;
          }
        }
        if (i >= src_.size()) fail("unterminated string literal");
        for (std::size_t k = pos; k < i; ++k) line_ += src_[k] == '\n';
        tokens_.push_back({Token::Kind::String, value, {}, line_});
        pos = i + 1;
      } else {
        bool matched = false;
        for (const char* op : kOps) {
          if (src_.compare(pos, std::strlen(op), op) == 0) {
            tokens_.push_back({Token::Kind::Op, op, {}, line_});
            pos += std::strlen(op);
            matched = true;
            break;
          }
        }
        if (!matched) fail(std::string("unexpected character '") + c + "'");
      }
    }
    fail(std::string("unterminated tag (missing '") + closer + "}')");
  }

  std::string src_;
  std::string name_;
  int line_ = 1;
  std::vector<Token> tokens_;
};

class Parser {
 public:
  Parser(std::vector<Token> tokens, std::string name) : t_(std::move(tokens)), name_(std::move(name)) {}

  Node parse_template() {
    Node root = parse_body({});
    if (peek().kind != Token::Kind::End) fail("unexpected '{% " + block_keyword() + " %}'");
    return root;
  }

 private:
  const Token& peek(std::size_t k = 0) const { return t_[std::min(i_ + k, t_.size() - 1)]; }
  const Token& next() { return t_[std::min(i_++, t_.size() - 1)]; }
  [[noreturn]] void fail(const std::string& what) const {
    throw Error(name_ + ":" + std::to_string(peek().line) + ": " + what);
  }
  bool is_op(const char* op, std::size_t k = 0) const { return peek(k).kind == Token::Kind::Op && peek(k).text == op; }
  bool is_name(const char* n, std::size_t k = 0) const {
    return peek(k).kind == Token::Kind::Name && peek(k).text == n;
  }
  void expect_op(const char* op) {
    if (!is_op(op)) fail(std::string("expected '") + op + "'");
    ++i_;
  }
  void expect(Token::Kind kind, const char* what) {
    if (peek().kind != kind) fail(std::string("expected ") + what);
    ++i_;
  }
  std::string expect_name() {
    if (peek().kind != Token::Kind::Name) fail("expected a name");
    return next().text;
  }
  // Keyword of the block tag at the cursor ("" when not at a block tag).
  std::string block_keyword() const {
    return peek().kind == Token::Kind::BlockBegin && peek(1).kind == Token::Kind::Name ? peek(1).text : "";
  }

  // Statements until one of the `stops` block keywords (left unconsumed) or the end.
  Node parse_body(const std::vector<std::string>& stops) {
    Node seq;
    seq.kind = Node::Kind::Sequence;
    while (peek().kind != Token::Kind::End) {
      const Token& tok = peek();
      if (tok.kind == Token::Kind::Text) {
        Node n;
        n.kind = Node::Kind::Text;
        n.text = next().text;
        seq.children.push_back(std::move(n));
      } else if (tok.kind == Token::Kind::VarBegin) {
        next();
        Node n;
        n.kind = Node::Kind::Output;
        n.line = tok.line;
        n.expr = parse_expr();
        expect(Token::Kind::VarEnd, "'}}'");
        seq.children.push_back(std::move(n));
      } else if (tok.kind == Token::Kind::BlockBegin) {
        const std::string kw = block_keyword();
        if (std::find(stops.begin(), stops.end(), kw) != stops.end()) return seq;
        parse_block(seq);
      } else {
        fail("unexpected token");
      }
    }
    if (!stops.empty()) fail("missing '{% " + stops.back() + " %}'");
    return seq;
  }

  void end_block() { expect(Token::Kind::BlockEnd, "'%}'"); }

  void parse_block(Node& seq) {
    const int line = next().line;  // BlockBegin
    const std::string kw = expect_name();
    Node n;
    n.line = line;
    if (kw == "if") {
      n.kind = Node::Kind::If;
      n.conditions.push_back(parse_expr());
      end_block();
      n.branches.push_back(parse_body({"elif", "else", "endif"}));
      while (true) {
        next();
        const std::string k = expect_name();
        if (k == "elif") {
          n.conditions.push_back(parse_expr());
          end_block();
          n.branches.push_back(parse_body({"elif", "else", "endif"}));
        } else if (k == "else") {
          end_block();
          n.else_body.push_back(parse_body({"endif"}));
        } else {
          end_block();
          break;
        }
      }
    } else if (kw == "for") {
      n.kind = Node::Kind::For;
      n.loop_vars.push_back(expect_name());
      while (is_op(",")) {
        next();
        n.loop_vars.push_back(expect_name());
      }
      if (!is_name("in")) fail("expected 'in' in for loop");
      next();
      n.expr = parse_or();  // no conditional expression here: `if` starts the loop filter
      if (is_name("if")) {
        next();
        n.filter = parse_expr();
      }
      end_block();
      n.children.push_back(parse_body({"else", "endfor"}));
      if (block_keyword() == "else") {
        next(), next();
        end_block();
        n.else_body.push_back(parse_body({"endfor"}));
      }
      next(), next();
      end_block();
    } else if (kw == "set") {
      n.kind = Node::Kind::Set;
      n.text = expect_name();
      if (is_op(".")) {
        next();
        n.attribute = expect_name();
      }
      if (!is_op("=")) fail("{% set %} blocks are not supported; use {% set x = value %}");
      next();
      n.expr = parse_expr();
      end_block();
    } else if (kw == "break" || kw == "continue") {
      n.kind = kw == "break" ? Node::Kind::Break : Node::Kind::Continue;
      end_block();
    } else if (kw == "generation") {  // transformers' AssistantTracker: only marks assistant text
      end_block();
      Node body = parse_body({"endgeneration"});
      next(), next();
      end_block();
      seq.children.push_back(std::move(body));
      return;
    } else {
      fail("unsupported or unexpected tag '{% " + kw + " %}'");
    }
    seq.children.push_back(std::move(n));
  }

  ExprPtr make(Expr::Kind kind, int line) {
    auto e = std::make_unique<Expr>();
    e->kind = kind;
    e->line = line;
    return e;
  }

  ExprPtr parse_expr() {
    ExprPtr value = parse_or();
    if (is_name("if")) {
      const int line = next().line;
      auto cond = make(Expr::Kind::Cond, line);
      cond->b = parse_or();
      if (is_name("else")) {
        next();
        cond->c = parse_expr();
      }
      cond->a = std::move(value);
      return cond;
    }
    return value;
  }

  ExprPtr binary(const std::string& op, ExprPtr a, ExprPtr b, int line) {
    auto e = make(Expr::Kind::Binary, line);
    e->name = op;
    e->a = std::move(a);
    e->b = std::move(b);
    return e;
  }

  ExprPtr parse_or() {
    ExprPtr left = parse_and();
    while (is_name("or")) left = binary("or", std::move(left), (next(), parse_and()), peek().line);
    return left;
  }
  ExprPtr parse_and() {
    ExprPtr left = parse_not();
    while (is_name("and")) left = binary("and", std::move(left), (next(), parse_not()), peek().line);
    return left;
  }
  ExprPtr parse_not() {
    if (is_name("not")) {
      auto e = make(Expr::Kind::Unary, next().line);
      e->name = "not";
      e->a = parse_not();
      return e;
    }
    return parse_compare();
  }
  ExprPtr parse_compare() {
    ExprPtr left = parse_math1();
    while (true) {
      std::string op;
      if (peek().kind == Token::Kind::Op && (peek().text == "==" || peek().text == "!=" || peek().text == "<" ||
                                             peek().text == ">" || peek().text == "<=" || peek().text == ">="))
        op = next().text;
      else if (is_name("in"))
        op = (next(), "in");
      else if (is_name("not") && is_name("in", 1))
        op = (next(), next(), "not in");
      else
        return left;
      left = binary(op, std::move(left), parse_math1(), peek().line);
    }
  }
  ExprPtr parse_math1() {
    ExprPtr left = parse_concat();
    while (is_op("+") || is_op("-")) {
      const std::string op = next().text;
      left = binary(op, std::move(left), parse_concat(), peek().line);
    }
    return left;
  }
  ExprPtr parse_concat() {
    ExprPtr left = parse_math2();
    while (is_op("~")) left = binary("~", std::move(left), (next(), parse_math2()), peek().line);
    return left;
  }
  ExprPtr parse_math2() {
    ExprPtr left = parse_unary();
    while (is_op("*") || is_op("/") || is_op("//") || is_op("%")) {
      const std::string op = next().text;
      left = binary(op, std::move(left), parse_unary(), peek().line);
    }
    return left;
  }
  ExprPtr parse_unary() {
    if (is_op("-") || is_op("+")) {
      auto e = make(Expr::Kind::Unary, peek().line);
      e->name = next().text;
      e->a = parse_unary();
      return e;
    }
    return parse_filters(parse_postfix(parse_primary()));
  }

  void parse_call_args(Expr& e) {
    expect_op("(");
    while (!is_op(")")) {
      if (peek().kind == Token::Kind::Name && is_op("=", 1)) {
        std::string key = next().text;
        next();
        e.kwargs.emplace_back(std::move(key), parse_expr());
      } else {
        e.args.push_back(parse_expr());
      }
      if (!is_op(",")) break;
      next();
    }
    expect_op(")");
  }

  ExprPtr parse_primary() {
    const Token& tok = peek();
    if (tok.kind == Token::Kind::String) {
      auto e = make(Expr::Kind::Literal, tok.line);
      e->literal = next().text;
      while (peek().kind == Token::Kind::String) e->literal = e->literal.get<std::string>() + next().text;  // "a" "b"
      return e;
    }
    if (tok.kind == Token::Kind::Number) {
      auto e = make(Expr::Kind::Literal, tok.line);
      e->literal = next().number;
      return e;
    }
    if (tok.kind == Token::Kind::Name) {
      const std::string n = next().text;
      auto e = make(Expr::Kind::Literal, tok.line);
      if (n == "true" || n == "True")
        e->literal = true;
      else if (n == "false" || n == "False")
        e->literal = false;
      else if (n == "none" || n == "None")
        e->literal = nullptr;
      else {
        e->kind = Expr::Kind::Name;
        e->name = n;
      }
      return e;
    }
    if (is_op("(")) {
      next();
      ExprPtr inner = parse_expr();
      if (is_op(",")) {  // tuple: evaluated as a list
        auto list = make(Expr::Kind::List, tok.line);
        list->args.push_back(std::move(inner));
        while (is_op(",")) {
          next();
          if (is_op(")")) break;
          list->args.push_back(parse_expr());
        }
        inner = std::move(list);
      }
      expect_op(")");
      return inner;
    }
    if (is_op("[")) {
      next();
      auto list = make(Expr::Kind::List, tok.line);
      while (!is_op("]")) {
        list->args.push_back(parse_expr());
        if (!is_op(",")) break;
        next();
      }
      expect_op("]");
      return list;
    }
    if (is_op("{")) {
      next();
      auto dict = make(Expr::Kind::Dict, tok.line);
      while (!is_op("}")) {
        dict->args.push_back(parse_expr());
        expect_op(":");
        dict->args.push_back(parse_expr());
        if (!is_op(",")) break;
        next();
      }
      expect_op("}");
      return dict;
    }
    fail("expected an expression");
  }

  ExprPtr parse_postfix(ExprPtr e) {
    while (true) {
      const int line = peek().line;
      if (is_op(".")) {
        next();
        auto attr = make(Expr::Kind::Attr, line);
        attr->name = peek().kind == Token::Kind::Number ? next().text : expect_name();
        attr->a = std::move(e);
        e = std::move(attr);
      } else if (is_op("[")) {
        next();
        ExprPtr start = is_op(":") ? nullptr : parse_expr();
        if (is_op(":")) {
          next();
          auto slice = make(Expr::Kind::Slice, line);
          slice->a = std::move(e);
          slice->b = std::move(start);
          if (!is_op("]") && !is_op(":")) slice->c = parse_expr();
          if (is_op(":")) {
            next();
            if (!is_op("]")) slice->args.push_back(parse_expr());
          }
          e = std::move(slice);
        } else {
          auto index = make(Expr::Kind::Index, line);
          index->a = std::move(e);
          index->b = std::move(start);
          e = std::move(index);
        }
        expect_op("]");
      } else if (is_op("(")) {
        auto call = make(Expr::Kind::Call, line);
        call->a = std::move(e);
        parse_call_args(*call);
        e = std::move(call);
      } else {
        return e;
      }
    }
  }

  ExprPtr parse_filters(ExprPtr e) {
    while (true) {
      const int line = peek().line;
      if (is_op("|")) {
        next();
        auto f = make(Expr::Kind::Filter, line);
        f->name = expect_name();
        f->a = std::move(e);
        if (is_op("(")) parse_call_args(*f);
        e = parse_postfix(std::move(f));
      } else if (is_name("is")) {
        next();
        auto t = make(Expr::Kind::Test, line);
        if (is_name("not")) {
          next();
          t->negated = true;
        }
        t->name = peek().kind == Token::Kind::Name ? next().text : std::string();
        if (t->name.empty() && peek().kind == Token::Kind::Op && (is_op("==") || is_op("!="))) t->name = next().text;
        if (t->name.empty()) fail("expected a test name after 'is'");
        t->a = std::move(e);
        if (is_op("("))
          parse_call_args(*t);
        else if (peek().kind == Token::Kind::String || peek().kind == Token::Kind::Number ||
                 (peek().kind == Token::Kind::Name && !is_name("and") && !is_name("or") && !is_name("if") &&
                  !is_name("else") && !is_name("in") && !is_name("not") && !is_name("is")))
          t->args.push_back(parse_primary());
        e = std::move(t);
      } else {
        return e;
      }
    }
  }

  std::vector<Token> t_;
  std::string name_;
  std::size_t i_ = 0;
};

}  // namespace

JinjaTemplate JinjaTemplate::parse(const std::string& source, const std::string& name) {
  JinjaTemplate t;
  t.name_ = name;
  Parser parser(Lexer(source, name).run(), name);
  t.root_ = std::make_shared<const Node>(parser.parse_template());
  return t;
}

}  // namespace pictor::tokenizers
