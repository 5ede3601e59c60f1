#pragma once
// A small Jinja2 interpreter for chat templates (tokenizer_config.json / chat_template.json), rendering
// them as transformers' apply_chat_template does: jinja2 ImmutableSandboxedEnvironment with
// trim_blocks=True, lstrip_blocks=True, the loopcontrols extension, the final newline of the template
// dropped, and transformers' tojson / raise_exception / strftime_now.
// Supported: {{ }}, {% if/elif/else %}, {% for x[, y] in ... [if cond] %} with loop.* and {% else %},
// {% set x = ... %} and namespace attributes, break/continue, {% generation %} (rendered as its body),
// whitespace control {%- -%} {{- -}}, comments; expressions with literals, lists, dicts, attribute /
// subscript / slice access, ~ + - * / // % and comparisons, and/or/not, in, `x if c else y`, filters
// (trim, upper, lower, capitalize, title, length, first, last, join, default, string, int, float, list,
// tojson, selectattr, rejectattr, map, items, replace, reverse, safe, abs), tests (defined, none, string,
// number, mapping, iterable, sequence, boolean, equalto, true/false, even/odd) and string/dict methods.
// Anything else (macros, unknown filters) is a pictor::Error naming the template and line.
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

namespace pictor::tokenizers {

class JinjaTemplate {
 public:
  // Throws pictor::Error("<name>:<line>: ...") on a syntax error.
  static JinjaTemplate parse(const std::string& source, const std::string& name = "template");
  // Renders with `variables` (a JSON object) as the global context. Throws pictor::Error naming the
  // template and line on an evaluation error or raise_exception().
  std::string render(const nlohmann::json& variables) const;

  struct Node;  // parsed template (internal)

 private:
  std::shared_ptr<const Node> root_;
  std::string name_;
};

}  // namespace pictor::tokenizers
