#pragma once
// Parsed form of a Jinja template (internal to jinja_parse.cpp / jinja_render.cpp).
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "tokenizers/jinja_template.hpp"

namespace pictor::tokenizers::jinja {

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;

struct Expr {
  enum class Kind { Literal, Name, Attr, Index, Slice, Call, Filter, Test, Unary, Binary, Cond, List, Dict };
  Kind kind;
  int line = 0;
  nlohmann::json literal;  // Literal
  std::string name;        // Name, Attr (attribute), Filter/Test (name), Unary/Binary (operator)
  ExprPtr a, b, c;         // operands: Attr/Index/Call/Filter/Test/Unary object in a; Binary a,b; Cond a if b else c;
                           // Index key in b; Slice start/stop/step in b/c/args[0]
  std::vector<ExprPtr> args;  // Call/Filter/Test arguments, List items, Dict keys+values interleaved
  std::vector<std::pair<std::string, ExprPtr>> kwargs;
  bool negated = false;  // Test: `is not`
};

}  // namespace pictor::tokenizers::jinja

namespace pictor::tokenizers {

struct JinjaTemplate::Node {
  enum class Kind { Sequence, Text, Output, If, For, Set, Break, Continue };
  Kind kind = Kind::Sequence;
  int line = 0;
  std::string text;                        // Text; Set: variable name
  std::string attribute;                   // Set: namespace attribute (ns.attr = ...)
  std::vector<std::string> loop_vars;      // For
  jinja::ExprPtr expr;                     // Output / For iterable / Set value
  jinja::ExprPtr filter;                   // For ... if filter
  std::vector<jinja::ExprPtr> conditions;  // If: one per if/elif branch
  std::vector<Node> branches;              // If: body (a Sequence) of each condition
  std::vector<Node> children;              // Sequence; For body
  std::vector<Node> else_body;             // If else / For else
};

}  // namespace pictor::tokenizers
