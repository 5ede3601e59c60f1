// Jinja evaluation: renders a parsed template (jinja_ast.hpp) with Python/Jinja value semantics.
#include <algorithm>
#include <cmath>
#include <ctime>
#include <map>

#include "core/error.hpp"
#include "tokenizers/jinja_ast.hpp"

namespace pictor::tokenizers {

namespace {

using jinja::Expr;
using json = nlohmann::json;
using Node = JinjaTemplate::Node;

// A Jinja value: JSON data, an undefined name, or a namespace() object (mutable, shared by reference).
struct Value {
  enum class Kind { Undefined, Data, Namespace };
  Kind kind = Kind::Undefined;
  json data;
  std::shared_ptr<json> ns;
  std::string name;  // what was undefined, for error messages

  static Value of(json j) { return {Kind::Data, std::move(j), nullptr, {}}; }
  static Value undefined(std::string what) { return {Kind::Undefined, nullptr, nullptr, std::move(what)}; }
  bool is_undefined() const { return kind == Kind::Undefined; }
  const json& j() const { return kind == Kind::Namespace ? *ns : data; }
};

// Python repr() of a string: single quotes unless the text has single and no double quotes.
std::string py_repr_string(const std::string& s) {
  const char q = (s.find('\'') != std::string::npos && s.find('"') == std::string::npos) ? '"' : '\'';
  std::string out(1, q);
  for (const char c : s) {
    if (c == q || c == '\\')
      out += '\\', out += c;
    else if (c == '\n')
      out += "\\n";
    else if (c == '\t')
      out += "\\t";
    else if (c == '\r')
      out += "\\r";
    else
      out += c;
  }
  return out + q;
}

std::string py_float(double d) {
  if (std::isnan(d)) return "nan";
  if (std::isinf(d)) return d > 0 ? "inf" : "-inf";
  std::string s = json(d).dump();
  if (s.find_first_of(".eE") == std::string::npos) s += ".0";
  return s;
}

std::string py_str(const json& v, bool nested = false) {
  switch (v.type()) {
    case json::value_t::null: return "None";
    case json::value_t::boolean: return v.get<bool>() ? "True" : "False";
    case json::value_t::number_float: return py_float(v.get<double>());
    case json::value_t::number_integer:
    case json::value_t::number_unsigned: return v.dump();
    case json::value_t::string: return nested ? py_repr_string(v.get<std::string>()) : v.get<std::string>();
    case json::value_t::array: {
      std::string out = "[";
      for (std::size_t i = 0; i < v.size(); ++i) out += (i ? ", " : "") + py_str(v[i], true);
      return out + "]";
    }
    case json::value_t::object: {
      std::string out = "{";
      bool first = true;
      for (const auto& [k, x] : v.items()) {
        out += (first ? "" : ", ") + py_repr_string(k) + ": " + py_str(x, true);
        first = false;
      }
      return out + "}";
    }
    default: return v.dump();
  }
}

// Python json.dumps (transformers' tojson): ", " / ": " separators, or indented; non-ASCII kept.
std::string py_json(const json& v, int indent, int depth = 0) {
  if (v.is_array() || v.is_object()) {
    if (v.empty()) return v.is_array() ? "[]" : "{}";
    const std::string pad = indent >= 0 ? "\n" + std::string(static_cast<std::size_t>(indent * (depth + 1)), ' ') : "";
    const std::string end_pad = indent >= 0 ? "\n" + std::string(static_cast<std::size_t>(indent * depth), ' ') : "";
    const std::string sep = indent >= 0 ? "," : ", ";
    std::string out(1, v.is_array() ? '[' : '{');
    bool first = true;
    for (auto it = v.begin(); it != v.end(); ++it) {
      out += (first ? "" : sep) + pad;
      if (v.is_object()) out += json(it.key()).dump(-1, ' ', false, json::error_handler_t::replace) + ": ";
      out += py_json(*it, indent, depth + 1);
      first = false;
    }
    return out + end_pad + (v.is_array() ? ']' : '}');
  }
  if (v.is_number_float()) return py_float(v.get<double>());
  if (v.is_boolean()) return v.get<bool>() ? "true" : "false";
  return v.dump(-1, ' ', false, json::error_handler_t::replace);
}

bool truthy(const Value& v) {
  if (v.is_undefined()) return false;
  const json& j = v.j();
  switch (j.type()) {
    case json::value_t::null: return false;
    case json::value_t::boolean: return j.get<bool>();
    case json::value_t::number_integer:
    case json::value_t::number_unsigned: return j.get<std::int64_t>() != 0;
    case json::value_t::number_float: return j.get<double>() != 0.0;
    case json::value_t::string:
    case json::value_t::array:
    case json::value_t::object: return !j.empty();
    default: return true;
  }
}

std::string to_text(const Value& v) {
  return v.is_undefined() ? "" : py_str(v.j());
}

enum class Flow { Normal, Break, Continue };

class Renderer {
 public:
  Renderer(const std::string& name, const json& globals) : name_(name) {
    scopes_.emplace_back();
    for (const auto& [k, v] : globals.items()) scopes_.back()[k] = Value::of(v);
  }

  Flow exec(const Node& n, std::string& out) {
    switch (n.kind) {
      case Node::Kind::Sequence:
        for (const auto& child : n.children) {
          const Flow f = exec(child, out);
          if (f != Flow::Normal) return f;
        }
        return Flow::Normal;
      case Node::Kind::Text: out += n.text; return Flow::Normal;
      case Node::Kind::Output: out += to_text(eval(*n.expr)); return Flow::Normal;
      case Node::Kind::If:
        for (std::size_t i = 0; i < n.conditions.size(); ++i)
          if (truthy(eval(*n.conditions[i]))) return exec(n.branches[i], out);
        return n.else_body.empty() ? Flow::Normal : exec(n.else_body[0], out);
      case Node::Kind::For: return exec_for(n, out);
      case Node::Kind::Set: {
        Value v = eval(*n.expr);
        if (n.attribute.empty()) {
          scopes_.back()[n.text] = std::move(v);
        } else {
          Value target = lookup(n.text);
          if (target.kind != Value::Kind::Namespace)
            fail(n.line, "cannot set attribute '" + n.attribute + "' of '" + n.text + "': not a namespace()");
          (*target.ns)[n.attribute] = v.is_undefined() ? json() : v.j();
        }
        return Flow::Normal;
      }
      case Node::Kind::Break: return Flow::Break;
      case Node::Kind::Continue: return Flow::Continue;
    }
    return Flow::Normal;
  }

 private:
  [[noreturn]] void fail(int line, const std::string& what) const {
    throw Error(name_ + ":" + std::to_string(line) + ": " + what);
  }

  Value lookup(const std::string& name) const {
    for (auto it = scopes_.rbegin(); it != scopes_.rend(); ++it) {
      const auto found = it->find(name);
      if (found != it->end()) return found->second;
    }
    return Value::undefined(name);
  }

  json items_of(const Value& v, int line) {
    if (v.is_undefined()) fail(line, "'" + v.name + "' is undefined (cannot iterate)");
    const json& j = v.j();
    if (j.is_array()) return j;
    json out = json::array();
    if (j.is_object())
      for (const auto& [k, x] : j.items()) out.push_back(k);
    else if (j.is_string())
      for (const auto& ch : utf8_chars(j.get<std::string>())) out.push_back(ch);
    else
      fail(line, "value of type " + std::string(j.type_name()) + " is not iterable");
    return out;
  }

  static std::vector<std::string> utf8_chars(const std::string& s) {
    std::vector<std::string> chars;
    for (std::size_t i = 0; i < s.size();) {
      const unsigned char c = static_cast<unsigned char>(s[i]);
      const std::size_t len = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
      chars.push_back(s.substr(i, len));
      i += len;
    }
    return chars;
  }

  void bind_loop_vars(const Node& n, const json& item) {
    if (n.loop_vars.size() == 1) {
      scopes_.back()[n.loop_vars[0]] = Value::of(item);
      return;
    }
    if (!item.is_array() || item.size() != n.loop_vars.size())
      fail(n.line, "cannot unpack a loop item into " + std::to_string(n.loop_vars.size()) + " variables");
    for (std::size_t k = 0; k < n.loop_vars.size(); ++k) scopes_.back()[n.loop_vars[k]] = Value::of(item[k]);
  }

  Flow exec_for(const Node& n, std::string& out) {
    const json all = items_of(eval(*n.expr), n.line);
    std::vector<json> items;
    scopes_.emplace_back();
    for (const auto& item : all) {  // the `if` filter runs before loop.* is counted
      if (n.filter) {
        bind_loop_vars(n, item);
        if (!truthy(eval(*n.filter))) continue;
      }
      items.push_back(item);
    }
    scopes_.pop_back();
    const std::size_t len = items.size();
    for (std::size_t i = 0; i < len; ++i) {
      scopes_.emplace_back();
      bind_loop_vars(n, items[i]);
      json loop = {{"index", i + 1}, {"index0", i},         {"first", i == 0},         {"last", i + 1 == len},
                   {"length", len},  {"revindex", len - i}, {"revindex0", len - i - 1}};
      loop["previtem"] = i > 0 ? items[i - 1] : json();
      loop["nextitem"] = i + 1 < len ? items[i + 1] : json();
      scopes_.back()["loop"] = Value::of(std::move(loop));
      const Flow f = exec(n.children[0], out);
      scopes_.pop_back();
      if (f == Flow::Break) break;
    }
    if (len == 0 && !n.else_body.empty()) return exec(n.else_body[0], out);
    return Flow::Normal;
  }

  static std::int64_t as_int(const json& j) {
    return j.is_number_float() ? static_cast<std::int64_t>(j.get<double>()) : j.get<std::int64_t>();
  }

  Value attribute(const Value& obj, const std::string& key, int line) {
    if (obj.is_undefined()) fail(line, "'" + obj.name + "' is undefined (no attribute '" + key + "')");
    const json& j = obj.j();
    if (j.is_object() && j.contains(key)) return Value::of(j.at(key));
    if (j.is_array() && !key.empty() && std::all_of(key.begin(), key.end(), ::isdigit)) {
      const auto idx = std::stoull(key);
      if (idx < j.size()) return Value::of(j[idx]);
    }
    return Value::undefined(obj.name.empty() ? key : obj.name + "." + key);
  }

  Value index(const Value& obj, const Value& key, int line) {
    if (obj.is_undefined()) fail(line, "'" + obj.name + "' is undefined (cannot subscript)");
    const json& j = obj.j();
    const json& k = key.j();
    if (j.is_object() && k.is_string()) return attribute(obj, k.get<std::string>(), line);
    if ((j.is_array() || j.is_string()) && k.is_number()) {
      std::int64_t i = as_int(k);
      if (j.is_string()) {
        const auto chars = utf8_chars(j.get<std::string>());
        const auto n = static_cast<std::int64_t>(chars.size());
        if (i < 0) i += n;
        return i >= 0 && i < n ? Value::of(chars[static_cast<std::size_t>(i)]) : Value::undefined("index");
      }
      const auto n = static_cast<std::int64_t>(j.size());
      if (i < 0) i += n;
      return i >= 0 && i < n ? Value::of(j[static_cast<std::size_t>(i)])
                             : Value::undefined("index " + std::to_string(i));
    }
    return Value::undefined(obj.name + "[" + py_str(k, true) + "]");
  }

  Value slice(const Expr& e) {
    const Value obj = eval(*e.a);
    if (obj.is_undefined()) fail(e.line, "'" + obj.name + "' is undefined (cannot slice)");
    const bool is_string = obj.j().is_string();
    std::vector<json> seq;
    if (is_string)
      for (const auto& ch : utf8_chars(obj.j().get<std::string>())) seq.push_back(ch);
    else if (obj.j().is_array())
      seq.assign(obj.j().begin(), obj.j().end());
    else
      fail(e.line, "cannot slice a value of type " + std::string(obj.j().type_name()));
    const auto n = static_cast<std::int64_t>(seq.size());
    const std::int64_t step = e.args.empty() ? 1 : as_int(eval(*e.args[0]).j());
    if (step == 0) fail(e.line, "slice step cannot be zero");
    const auto bound = [&](const jinja::ExprPtr& x, std::int64_t fallback) {
      if (!x) return fallback;
      const Value v = eval(*x);
      if (v.is_undefined() || v.j().is_null()) return fallback;
      std::int64_t i = as_int(v.j());
      if (i < 0) i += n;
      return step > 0 ? std::clamp<std::int64_t>(i, 0, n) : std::clamp<std::int64_t>(i, -1, n - 1);
    };
    const std::int64_t start = bound(e.b, step > 0 ? 0 : n - 1), stop = bound(e.c, step > 0 ? n : -1);
    json out = json::array();
    std::string text;
    for (std::int64_t i = start; step > 0 ? i < stop : i > stop; i += step) {
      if (is_string)
        text += seq[static_cast<std::size_t>(i)].get<std::string>();
      else
        out.push_back(seq[static_cast<std::size_t>(i)]);
    }
    return is_string ? Value::of(text) : Value::of(out);
  }

  Value eval(const Expr& e) {
    switch (e.kind) {
      case Expr::Kind::Literal: return Value::of(e.literal);
      case Expr::Kind::Name: return lookup(e.name);
      case Expr::Kind::Attr: return attribute(eval(*e.a), e.name, e.line);
      case Expr::Kind::Index: return index(eval(*e.a), eval(*e.b), e.line);
      case Expr::Kind::Slice: return slice(e);
      case Expr::Kind::List: {
        json out = json::array();
        for (const auto& x : e.args) out.push_back(data_of(eval(*x), x->line));
        return Value::of(out);
      }
      case Expr::Kind::Dict: {
        json out = json::object();
        for (std::size_t i = 0; i + 1 < e.args.size(); i += 2) {
          const Value k = eval(*e.args[i]);
          if (!k.j().is_string()) fail(e.line, "dict keys must be strings");
          out[k.j().get<std::string>()] = data_of(eval(*e.args[i + 1]), e.line);
        }
        return Value::of(out);
      }
      case Expr::Kind::Cond:
        if (truthy(eval(*e.b))) return eval(*e.a);
        return e.c ? eval(*e.c) : Value::undefined("conditional");
      case Expr::Kind::Unary: {
        const Value v = eval(*e.a);
        if (e.name == "not") return Value::of(!truthy(v));
        const json& j = data_of(v, e.line);
        if (!j.is_number()) fail(e.line, "unary " + e.name + " needs a number");
        if (e.name == "+") return v;
        return Value::of(j.is_number_float() ? json(-j.get<double>()) : json(-j.get<std::int64_t>()));
      }
      case Expr::Kind::Binary: return binary(e);
      case Expr::Kind::Call: return call(e);
      case Expr::Kind::Filter: return filter(e);
      case Expr::Kind::Test: {
        const bool r = test(e.name, eval(*e.a), e, e.args.empty() ? Value() : eval(*e.args[0]));
        return Value::of(e.negated ? !r : r);
      }
    }
    return Value();
  }

  const json& data_of(const Value& v, int line) {
    if (v.is_undefined()) fail(line, "'" + v.name + "' is undefined");
    return v.j();
  }

  static bool equal(const Value& a, const Value& b) {
    if (a.is_undefined() || b.is_undefined()) return a.is_undefined() && b.is_undefined();
    return a.j() == b.j();
  }

  Value binary(const Expr& e) {
    if (e.name == "and") {
      Value a = eval(*e.a);
      return truthy(a) ? eval(*e.b) : a;
    }
    if (e.name == "or") {
      Value a = eval(*e.a);
      return truthy(a) ? a : eval(*e.b);
    }
    const Value a = eval(*e.a), b = eval(*e.b);
    if (e.name == "~") return Value::of(to_text(a) + to_text(b));
    if (e.name == "==") return Value::of(equal(a, b));
    if (e.name == "!=") return Value::of(!equal(a, b));
    if (e.name == "in" || e.name == "not in") {
      const json& hay = data_of(b, e.line);
      bool found = false;
      if (hay.is_string()) {
        const json& needle = data_of(a, e.line);
        if (!needle.is_string()) fail(e.line, "'in <string>' requires a string on the left");
        found = hay.get<std::string>().find(needle.get<std::string>()) != std::string::npos;
      } else if (hay.is_object()) {
        found = a.j().is_string() && hay.contains(a.j().get<std::string>());
      } else if (hay.is_array()) {
        found = std::find(hay.begin(), hay.end(), a.j()) != hay.end();
      } else {
        fail(e.line, "'in' needs a string, list or mapping on the right");
      }
      return Value::of(e.name == "in" ? found : !found);
    }
    const json& x = data_of(a, e.line);
    const json& y = data_of(b, e.line);
    if (e.name == "+" && x.is_string() && y.is_string()) return Value::of(x.get<std::string>() + y.get<std::string>());
    if (e.name == "+" && x.is_array() && y.is_array()) {
      json out = x;
      out.insert(out.end(), y.begin(), y.end());
      return Value::of(out);
    }
    if (e.name == "*" && x.is_string() && y.is_number_integer()) {
      std::string out;
      for (std::int64_t i = 0; i < y.get<std::int64_t>(); ++i) out += x.get<std::string>();
      return Value::of(out);
    }
    if ((e.name == "<" || e.name == ">" || e.name == "<=" || e.name == ">=") && x.is_string() && y.is_string()) {
      const int c = x.get<std::string>().compare(y.get<std::string>());
      return Value::of(e.name == "<" ? c < 0 : e.name == ">" ? c > 0 : e.name == "<=" ? c <= 0 : c >= 0);
    }
    const bool numbers = (x.is_number() || x.is_boolean()) && (y.is_number() || y.is_boolean());
    if (!numbers)
      fail(e.line, "unsupported operand types for " + e.name + ": " + x.type_name() + " and " + y.type_name());
    const bool ints = !x.is_number_float() && !y.is_number_float();
    const double p = x.is_boolean() ? x.get<bool>() : x.get<double>();
    const double q = y.is_boolean() ? y.get<bool>() : y.get<double>();
    const std::int64_t pi = x.is_boolean() ? x.get<bool>() : as_int(x), qi = y.is_boolean() ? y.get<bool>() : as_int(y);
    if (e.name == "<") return Value::of(p < q);
    if (e.name == ">") return Value::of(p > q);
    if (e.name == "<=") return Value::of(p <= q);
    if (e.name == ">=") return Value::of(p >= q);
    if (e.name == "+") return Value::of(ints ? json(pi + qi) : json(p + q));
    if (e.name == "-") return Value::of(ints ? json(pi - qi) : json(p - q));
    if (e.name == "*") return Value::of(ints ? json(pi * qi) : json(p * q));
    if ((e.name == "/" || e.name == "//" || e.name == "%") && q == 0) fail(e.line, "division by zero");
    if (e.name == "/") return Value::of(p / q);
    if (e.name == "//")
      return Value::of(ints ? json(static_cast<std::int64_t>(std::floor(p / q))) : json(std::floor(p / q)));
    if (e.name == "%") {
      if (ints) return Value::of(((pi % qi) + qi) % qi);
      return Value::of(p - q * std::floor(p / q));
    }
    fail(e.line, "unsupported operator " + e.name);
  }

  // Positional argument i or keyword `key` of a call/filter.
  Value arg(const Expr& e, std::size_t i, const char* key, std::size_t skip = 0) {
    for (const auto& [k, x] : e.kwargs)
      if (k == key) return eval(*x);
    if (i + skip < e.args.size()) return eval(*e.args[i + skip]);
    return Value::undefined(key);
  }

  static std::string strip_chars(const std::string& s, const std::string& chars, bool left, bool right) {
    std::size_t a = 0, b = s.size();
    while (left && a < b && chars.find(s[a]) != std::string::npos) ++a;
    while (right && b > a && chars.find(s[b - 1]) != std::string::npos) --b;
    return s.substr(a, b - a);
  }

  static std::string capitalize(const std::string& s) {
    std::string out = s;
    for (std::size_t i = 0; i < out.size(); ++i)
      out[i] = static_cast<char>(i == 0 ? std::toupper(static_cast<unsigned char>(out[i]))
                                        : std::tolower(static_cast<unsigned char>(out[i])));
    return out;
  }
  static std::string title(const std::string& s) {
    std::string out = s;
    bool start = true;
    for (char& c : out) {
      const bool alpha = std::isalpha(static_cast<unsigned char>(c));
      c = static_cast<char>(
          alpha ? (start ? std::toupper(static_cast<unsigned char>(c)) : std::tolower(static_cast<unsigned char>(c)))
                : c);
      start = !alpha;
    }
    return out;
  }
  static std::string map_chars(std::string s, int (*f)(int)) {
    for (char& c : s) c = static_cast<char>(f(static_cast<unsigned char>(c)));
    return s;
  }
  static std::string replace_all(std::string s, const std::string& from, const std::string& to) {
    if (from.empty()) return s;
    for (std::size_t pos = 0; (pos = s.find(from, pos)) != std::string::npos; pos += to.size())
      s.replace(pos, from.size(), to);
    return s;
  }

  Value string_method(const std::string& s, const Expr& call, const std::string& m) {
    const auto str_arg = [&](std::size_t i, const char* key) {
      const Value v = arg(call, i, key);
      if (v.is_undefined() || v.j().is_null()) return std::optional<std::string>();
      if (!v.j().is_string()) fail(call.line, "str." + m + "() expects a string argument");
      return std::optional<std::string>(v.j().get<std::string>());
    };
    const std::string ws = " \t\n\r\f\v";
    if (m == "strip" || m == "lstrip" || m == "rstrip") {
      const std::string chars = str_arg(0, "chars").value_or(ws);
      return Value::of(strip_chars(s, chars, m != "rstrip", m != "lstrip"));
    }
    if (m == "upper") return Value::of(map_chars(s, ::toupper));
    if (m == "lower") return Value::of(map_chars(s, ::tolower));
    if (m == "capitalize") return Value::of(capitalize(s));
    if (m == "title") return Value::of(title(s));
    if (m == "startswith" || m == "endswith") {
      const auto x = str_arg(0, "prefix");
      if (!x) fail(call.line, "str." + m + "() needs an argument");
      const bool r = m == "startswith" ? s.rfind(*x, 0) == 0
                                       : (s.size() >= x->size() && s.compare(s.size() - x->size(), x->size(), *x) == 0);
      return Value::of(r);
    }
    if (m == "replace") {
      const auto from = str_arg(0, "old"), to = str_arg(1, "new");
      if (!from || !to) fail(call.line, "str.replace() needs two arguments");
      return Value::of(replace_all(s, *from, *to));
    }
    if (m == "split") {
      const auto sep = str_arg(0, "sep");
      json out = json::array();
      if (sep) {
        if (sep->empty()) fail(call.line, "str.split(): empty separator");
        std::size_t pos = 0;
        for (std::size_t hit; (hit = s.find(*sep, pos)) != std::string::npos; pos = hit + sep->size())
          out.push_back(s.substr(pos, hit - pos));
        out.push_back(s.substr(pos));
      } else {
        std::size_t pos = 0;
        while ((pos = s.find_first_not_of(ws, pos)) != std::string::npos) {
          const std::size_t end = s.find_first_of(ws, pos);
          out.push_back(s.substr(pos, end - pos));
          pos = end;
        }
      }
      return Value::of(out);
    }
    fail(call.line, "unknown string method '" + m + "'");
  }

  Value call(const Expr& e) {
    if (e.a->kind == Expr::Kind::Attr) {  // method call
      const Value obj = eval(*e.a->a);
      const std::string& m = e.a->name;
      if (obj.is_undefined()) fail(e.line, "'" + obj.name + "' is undefined (no method '" + m + "')");
      const json& j = obj.j();
      if (j.is_string()) return string_method(j.get<std::string>(), e, m);
      if (j.is_object()) {
        if (m == "items" || m == "keys" || m == "values") {
          json out = json::array();
          for (const auto& [k, v] : j.items())
            out.push_back(m == "items" ? json::array({k, v}) : m == "keys" ? json(k) : v);
          return Value::of(out);
        }
        if (m == "get") {
          const Value key = arg(e, 0, "key");
          if (key.j().is_string() && j.contains(key.j().get<std::string>()))
            return Value::of(j.at(key.j().get<std::string>()));
          const Value fallback = arg(e, 1, "default");
          return fallback.is_undefined() ? Value::of(nullptr) : fallback;
        }
      }
      fail(e.line, "unknown method '" + m + "' of a " + std::string(j.type_name()));
    }
    if (e.a->kind != Expr::Kind::Name) fail(e.line, "only functions and methods can be called");
    const std::string& f = e.a->name;
    if (f == "raise_exception") {
      const Value msg = arg(e, 0, "message");
      throw Error(name_ + ":" + std::to_string(e.line) + ": raise_exception: " + to_text(msg));
    }
    if (f == "namespace") {
      Value ns;
      ns.kind = Value::Kind::Namespace;
      ns.ns = std::make_shared<json>(json::object());
      for (const auto& [k, x] : e.kwargs) (*ns.ns)[k] = data_of(eval(*x), e.line);
      return ns;
    }
    if (f == "range") {
      std::vector<std::int64_t> a;
      for (const auto& x : e.args) {
        const json& v = data_of(eval(*x), e.line);
        if (!v.is_number_integer()) fail(e.line, "range() arguments must be integers");
        a.push_back(v.get<std::int64_t>());
      }
      if (a.empty() || a.size() > 3) fail(e.line, "range() takes 1 to 3 arguments");
      const std::int64_t start = a.size() == 1 ? 0 : a[0], stop = a.size() == 1 ? a[0] : a[1],
                         step = a.size() == 3 ? a[2] : 1;
      if (step == 0) fail(e.line, "range() step must not be zero");
      json out = json::array();
      for (std::int64_t i = start; step > 0 ? i < stop : i > stop; i += step) out.push_back(i);
      return Value::of(out);
    }
    if (f == "strftime_now") {
      const Value fmt = arg(e, 0, "format");
      const std::time_t now = std::time(nullptr);
      std::tm tm{};
      localtime_r(&now, &tm);
      char buf[256];
      const std::size_t n = std::strftime(buf, sizeof(buf), to_text(fmt).c_str(), &tm);
      return Value::of(std::string(buf, n));
    }
    if (f == "dict") {
      json out = json::object();
      for (const auto& [k, x] : e.kwargs) out[k] = data_of(eval(*x), e.line);
      return Value::of(out);
    }
    fail(e.line, "unknown function '" + f + "'");
  }

  bool test(const std::string& t, const Value& v, const Expr& e, const Value& arg0) {
    if (t == "defined") return !v.is_undefined();
    if (t == "undefined") return v.is_undefined();
    if (v.is_undefined()) return false;
    const json& j = v.j();
    if (t == "none") return j.is_null();
    if (t == "string") return j.is_string();
    if (t == "number") return j.is_number();
    if (t == "integer") return j.is_number_integer();
    if (t == "float") return j.is_number_float();
    if (t == "boolean") return j.is_boolean();
    if (t == "true") return j.is_boolean() && j.get<bool>();
    if (t == "false") return j.is_boolean() && !j.get<bool>();
    if (t == "mapping") return j.is_object() || v.kind == Value::Kind::Namespace;
    if (t == "iterable") return j.is_array() || j.is_object() || j.is_string();
    if (t == "sequence") return j.is_array() || j.is_string() || j.is_object();
    if (t == "even" || t == "odd") return j.is_number_integer() && (j.get<std::int64_t>() % 2 == 0) == (t == "even");
    if (t == "equalto" || t == "eq" || t == "==" || t == "sameas") return equal(v, arg0);
    if (t == "ne" || t == "!=") return !equal(v, arg0);
    if (t == "in")
      return !arg0.is_undefined() &&
             ((arg0.j().is_array() && std::find(arg0.j().begin(), arg0.j().end(), j) != arg0.j().end()) ||
              (arg0.j().is_object() && j.is_string() && arg0.j().contains(j.get<std::string>())));
    if (t == "lower" || t == "upper")
      return j.is_string() &&
             j.get<std::string>() == map_chars(j.get<std::string>(), t == "lower" ? ::tolower : ::toupper);
    fail(e.line, "unknown test '" + t + "'");
  }

  Value filter(const Expr& e) {
    const std::string& f = e.name;
    static const char* const kKnown[] = {
        "default", "d",       "safe",  "string", "trim",       "upper",      "lower", "capitalize", "title",
        "replace", "length",  "count", "tojson", "int",        "float",      "abs",   "list",       "first",
        "last",    "reverse", "join",  "items",  "selectattr", "rejectattr", "map"};
    if (std::none_of(std::begin(kKnown), std::end(kKnown), [&](const char* k) { return f == k; }))
      fail(e.line, "unknown filter '" + f + "'");
    const Value v = eval(*e.a);
    if (f == "default" || f == "d") {
      const bool boolean = truthy(arg(e, 1, "boolean"));
      if (v.is_undefined() || (boolean && !truthy(v))) {
        const Value fallback = arg(e, 0, "default_value");
        return fallback.is_undefined() ? Value::of("") : fallback;
      }
      return v;
    }
    if (f == "safe") return v;
    if (f == "string") return Value::of(to_text(v));
    const json& j = data_of(v, e.line);
    const auto need_string = [&]() -> std::string {
      if (!j.is_string()) fail(e.line, "filter '" + f + "' expects a string");
      return j.get<std::string>();
    };
    if (f == "trim") return Value::of(strip_chars(need_string(), " \t\n\r\f\v", true, true));
    if (f == "upper") return Value::of(map_chars(need_string(), ::toupper));
    if (f == "lower") return Value::of(map_chars(need_string(), ::tolower));
    if (f == "capitalize") return Value::of(capitalize(need_string()));
    if (f == "title") return Value::of(title(need_string()));
    if (f == "replace") {
      const Value a = arg(e, 0, "old"), b = arg(e, 1, "new");
      return Value::of(replace_all(need_string(), to_text(a), to_text(b)));
    }
    if (f == "length" || f == "count") {
      if (j.is_string()) return Value::of(utf8_chars(j.get<std::string>()).size());
      if (j.is_array() || j.is_object()) return Value::of(j.size());
      fail(e.line, "filter '" + f + "' needs a string, list or mapping");
    }
    if (f == "tojson") {
      const Value indent = arg(e, 0, "indent");
      return Value::of(
          py_json(j, indent.is_undefined() || indent.j().is_null() ? -1 : static_cast<int>(as_int(indent.j()))));
    }
    if (f == "int")
      return Value::of(j.is_number()   ? json(as_int(j))
                       : j.is_string() ? json(std::atoll(j.get<std::string>().c_str()))
                                       : json(0));
    if (f == "float")
      return Value::of(j.is_number()   ? json(j.get<double>())
                       : j.is_string() ? json(std::atof(j.get<std::string>().c_str()))
                                       : json(0.0));
    if (f == "abs") {
      if (!j.is_number()) fail(e.line, "filter 'abs' expects a number");
      return Value::of(j.is_number_float() ? json(std::fabs(j.get<double>()))
                                           : json(std::llabs(j.get<std::int64_t>())));
    }
    const json list = items_of(v, e.line);
    if (f == "list") return Value::of(list);
    if (f == "first") return list.empty() ? Value::undefined("first") : Value::of(list.front());
    if (f == "last") return list.empty() ? Value::undefined("last") : Value::of(list.back());
    if (f == "reverse") {
      if (j.is_string()) {
        auto chars = utf8_chars(j.get<std::string>());
        std::string out;
        for (auto it = chars.rbegin(); it != chars.rend(); ++it) out += *it;
        return Value::of(out);
      }
      json out = json::array();
      for (auto it = list.rbegin(); it != list.rend(); ++it) out.push_back(*it);
      return Value::of(out);
    }
    if (f == "join") {
      const Value sep = arg(e, 0, "d");
      std::string out;
      for (std::size_t i = 0; i < list.size(); ++i) out += (i ? to_text(sep) : "") + py_str(list[i]);
      return Value::of(out);
    }
    if (f == "items") {
      json out = json::array();
      if (j.is_object())
        for (const auto& [k, x] : j.items()) out.push_back(json::array({k, x}));
      return Value::of(out);
    }
    if (f == "selectattr" || f == "rejectattr") {
      const Value attr = arg(e, 0, "attr");
      if (!attr.j().is_string()) fail(e.line, "filter '" + f + "' needs an attribute name");
      const std::string test_name = e.args.size() > 1 ? to_text(eval(*e.args[1])) : "";
      const Value test_arg = e.args.size() > 2 ? eval(*e.args[2]) : Value();
      json out = json::array();
      for (const auto& item : list) {
        const Value field = attribute(Value::of(item), attr.j().get<std::string>(), e.line);
        const bool ok = test_name.empty() ? truthy(field) : test(test_name, field, e, test_arg);
        if (ok == (f == "selectattr")) out.push_back(item);
      }
      return Value::of(out);
    }
    if (f == "map") {
      json out = json::array();
      const Value attr = arg(e, 99, "attribute");
      if (!attr.is_undefined()) {
        for (const auto& item : list) {
          const Value field = attribute(Value::of(item), to_text(attr), e.line);
          out.push_back(field.is_undefined() ? json() : field.j());
        }
        return Value::of(out);
      }
      if (e.args.empty()) fail(e.line, "filter 'map' needs attribute= or a filter name");
      const std::string inner = to_text(eval(*e.args[0]));
      for (const auto& item : list) {
        Expr sub;
        sub.kind = Expr::Kind::Filter;
        sub.line = e.line;
        sub.name = inner;
        sub.a = std::make_unique<Expr>();
        sub.a->kind = Expr::Kind::Literal;
        sub.a->literal = item;
        out.push_back(data_of(filter(sub), e.line));
      }
      return Value::of(out);
    }
    fail(e.line, "unknown filter '" + f + "'");
  }

  std::string name_;
  std::vector<std::map<std::string, Value>> scopes_;
};

}  // namespace

std::string JinjaTemplate::render(const nlohmann::json& variables) const {
  if (!variables.is_object() && !variables.is_null())
    throw Error(name_ + ": render() needs a JSON object of variables");
  Renderer renderer(name_, variables.is_null() ? nlohmann::json::object() : variables);
  std::string out;
  renderer.exec(*root_, out);
  return out;
}

}  // namespace pictor::tokenizers
