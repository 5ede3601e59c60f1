// Chat templates: every golden VLM folder's template rendered with its case.json messages equals
// prompt_rendered*.txt byte for byte, and the image-expanded prompt re-encodes to the golden input_ids;
// plus Jinja semantics and errors.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "core/error.hpp"
#include "core/json_file.hpp"
#include "formats/tensor_store.hpp"
#include "support.hpp"
#include "tokenizers/bpe_tokenizer.hpp"
#include "tokenizers/chat_template.hpp"
#include "tokenizers/jinja_template.hpp"

using namespace pictor;
using tokenizers::ChatTemplate;
using tokenizers::JinjaTemplate;

namespace {

std::string slurp(const std::filesystem::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

// Ids of row `row` of input_ids where attention_mask is 1 (left padding removed).
std::vector<int64_t> unpadded_row(const TensorStore& inputs, int64_t row) {
  const at::Tensor ids = inputs.get("input_ids")[row];
  const at::Tensor mask = inputs.has("attention_mask") ? inputs.get("attention_mask")[row] : at::ones_like(ids);
  const at::Tensor kept = ids.masked_select(mask.to(at::kBool)).contiguous();
  return {kept.data_ptr<int64_t>(), kept.data_ptr<int64_t>() + kept.numel()};
}

void check_folder(const std::string& name) {
  PICTOR_REQUIRE_GOLDEN();
  const auto dir = test::golden_dir() / "vlm" / name;
  const json spec = read_json_file(dir / "case.json");
  const json conversations =
      spec.contains("conversations") ? spec.at("conversations") : json::array({spec.at("messages")});
  const auto tmpl = ChatTemplate::load(dir);
  const auto tok = tokenizers::BpeTokenizer::load_tokenizer_json(dir / "tokenizer.json");
  const TensorStore inputs = TensorStore::open_file(dir / "inputs.safetensors");
  for (std::size_t i = 0; i < conversations.size(); ++i) {
    const std::string suffix = conversations.size() > 1 ? "_" + std::to_string(i) : "";
    const std::string rendered = tmpl.render(conversations[i], /*add_generation_prompt=*/true);
    EXPECT_EQ(rendered, slurp(dir / ("prompt_rendered" + suffix + ".txt"))) << name << " conversation " << i;
    const auto expanded_path = dir / ("prompt_expanded" + suffix + ".txt");
    std::string expanded;
    if (std::filesystem::exists(expanded_path)) {
      expanded = slurp(expanded_path);
    } else {  // LLaVA: "<image>" stands for (image_size / patch_size)^2 = 16 image tokens
      for (std::size_t pos = 0, hit;
           (hit = rendered.find("<image>", pos)) != std::string::npos || pos < rendered.size();) {
        if (hit == std::string::npos) {
          expanded += rendered.substr(pos);
          break;
        }
        expanded += rendered.substr(pos, hit - pos);
        for (int k = 0; k < 16; ++k) expanded += "<image>";
        pos = hit + 7;
      }
    }
    EXPECT_EQ(tok.encode(expanded), unpadded_row(inputs, static_cast<int64_t>(i))) << name << " row " << i;
  }
}

std::string render(const std::string& source, const json& vars = json::object()) {
  return JinjaTemplate::parse(source, "test").render(vars);
}

}  // namespace

TEST(ChatTemplateGolden, Idefics3Split) {
  check_folder("idefics3_split");
}
TEST(ChatTemplateGolden, Idefics3NoSplit) {
  check_folder("idefics3_nosplit");
}
TEST(ChatTemplateGolden, Idefics3Batch) {
  check_folder("idefics3_batch");
}
TEST(ChatTemplateGolden, Llava) {
  check_folder("llava");
}

TEST(ChatTemplateGolden, ChatMLFromTokenizerConfig) {
  PICTOR_REQUIRE_GOLDEN();
  const auto dir = test::golden_dir() / "vlm/tokenizer_bpe";
  const json ex = read_json_file(dir / "case.json").at("chat_template_example");
  EXPECT_EQ(ChatTemplate::load(dir).render(ex.at("messages"), true), ex.at("rendered").get<std::string>());
}

TEST(JinjaTemplate, WhitespaceControlAndBlocks) {
  // trim_blocks + lstrip_blocks (as transformers), {%- -%}, and the dropped final newline.
  EXPECT_EQ(render("{% for x in xs %}\n  {{ x }}\n{% endfor %}\n", {{"xs", {1, 2}}}), "  1\n  2\n");
  EXPECT_EQ(render("a  {%- if true -%}  b  {%- endif %}", {}), "ab");
  EXPECT_EQ(render("{{ 'x' }}\n"), "x");
  EXPECT_EQ(render("{# note #}\nA"), "A");
}

TEST(JinjaTemplate, ExpressionsLoopsAndNamespaces) {
  EXPECT_EQ(
      render("{% for m in ms %}{{ loop.index }}{{ '/' if not loop.last }}{% endfor %}", {{"ms", {"a", "b", "c"}}}),
      "1/2/3");
  EXPECT_EQ(
      render("{% set ns = namespace(n=0) %}{% for i in range(4) %}{% set ns.n = ns.n + i %}{% endfor %}{{ ns.n }}"),
      "6");
  EXPECT_EQ(render("{% set x = 1 %}{% for i in [5] %}{% set x = i %}{% endfor %}{{ x }}"), "1");  // loop scope
  EXPECT_EQ(render("{{ ms[1:] | length }} {{ ms[-1] }} {{ 'ab' ~ 3 }} {{ 7 // 2 }} {{ 7 / 2 }}", {{"ms", {1, 2, 3}}}),
            "2 3 ab3 3 3.5");
  EXPECT_EQ(render("{{ m['role'] | capitalize }}{{ m.content | trim | upper }}",
                   {{"m", {{"role", "user"}, {"content", " hi "}}}}),
            "UserHI");
  EXPECT_EQ(render("{{ x is defined }} {{ y is not none }} {{ 'a' in 'cat' }} {{ {'k': [1, 'v']} | tojson }}",
                   {{"x", 1}, {"y", nullptr}}),
            "True False True {\"k\": [1, \"v\"]}");
  EXPECT_EQ(render("{% for c in cs | selectattr('type', 'equalto', 'text') %}{{ c.text }}{% else %}none{% endfor %}",
                   {{"cs", {{{"type", "image"}}, {{"type", "text"}, {"text", "T"}}}}}),
            "T");
  EXPECT_EQ(render("{% for i in range(5) %}{% if i == 3 %}{% break %}{% endif %}{% if i == 1 %}{% continue %}{% endif "
                   "%}{{ i }}{% endfor %}"),
            "02");
  EXPECT_EQ(render("{% if a %}A{% elif b %}B{% else %}C{% endif %}", {{"a", false}, {"b", 0}}), "C");
  EXPECT_EQ(render("{{ 'x,y'.split(',') | join('+') }} {{ 'Hi'.lower().startswith('h') }}"), "x+y True");
}

TEST(JinjaTemplate, ErrorsAreClear) {
  const auto expect_error = [](const std::string& source, const std::string& needle,
                               const json& vars = json::object()) {
    try {
      render(source, vars);
      ADD_FAILURE() << "no error for " << source;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("test:"), std::string::npos) << e.what();  // names the template
    }
  };
  expect_error("{{ x | frobnicate }}", "unknown filter 'frobnicate'", {{"x", 1}});
  expect_error("{{ raise_exception('Conversation roles must alternate') }}", "Conversation roles must alternate");
  expect_error("line1\n{% if x %}", "missing '{% endif %}'");
  expect_error("{{ 'unterminated }}", "unterminated string");
  expect_error("{% macro m() %}{% endmacro %}", "macro");
  expect_error("{{ missing.attr }}", "'missing' is undefined");
  expect_error("{{ 1 + 'a' }}", "unsupported operand");
  EXPECT_THROW(ChatTemplate::load(test::temp_dir("no_template")), Error);
}
