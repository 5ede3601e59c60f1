// Multi-turn chat in the public image-to-text API (ImageToText::chat) on the tiny random-weight SmolVLM
// folder, and the stop-string streaming filter it uses.
#include <gtest/gtest.h>

#include <cctype>
#include <string>
#include <vector>

#include "api/stop_strings.hpp"
#include "core/error.hpp"
#include "dev/make_tiny_vlm.hpp"
#include "image_samples.hpp"
#include "pictor/image_to_text.hpp"
#include "support.hpp"

using namespace pictor;
namespace fs = std::filesystem;

namespace {

using samples::pattern_image;

ImageToText& engine() {
  static std::unique_ptr<ImageToText> e = [] {
    const fs::path dir = test::temp_dir("chat-vlm") / "tiny";
    dev::make_tiny_vlm(dir);
    return ImageToText::load(dir.string(), 1);
  }();
  return *e;
}

ChatOptions one_turn(const std::string& text, int max_tokens = 24) {
  ChatOptions o;
  o.images = {pattern_image(64, 48, 0)};
  o.messages = {{"user", {ChatPart::image_part(0), ChatPart::text_part(text)}}};
  o.max_tokens = max_tokens;
  return o;
}

std::vector<std::string> pieces_of(const std::string& text, std::vector<std::string> stops) {
  std::vector<std::string> pieces;
  api::StopStringStream s(std::move(stops), [&](const std::string& p) {
    pieces.push_back(p);
    return true;
  });
  for (char c : text)
    if (!s.push(std::string(1, c))) break;
  return pieces;
}

std::string joined(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& p : v) out += p;
  return out;
}

}  // namespace

TEST(StopStrings, FirstStopWinsAndIsNeverStreamed) {
  EXPECT_EQ(api::find_first_stop("alpha beta gamma", {"gamma", "beta"}), 6u);
  EXPECT_EQ(api::find_first_stop("alpha", {"", "x"}), std::string::npos);

  // "be" is held back until it is clear whether "beta" follows.
  EXPECT_EQ(joined(pieces_of("alpha beta gamma", {"beta"})), "alpha");
  EXPECT_EQ(joined(pieces_of("alpha bet gamma", {"beta"})), "alpha bet gamma");
  // Trailing whitespace waits for the next word (the final answer is stripped).
  const auto p = pieces_of("one two ", {});
  EXPECT_EQ(joined(p), "one two");

  std::vector<std::string> out;
  api::StopStringStream s({"END"}, [&](const std::string& piece) {
    out.push_back(piece);
    return true;
  });
  EXPECT_TRUE(s.push("abc E"));
  EXPECT_EQ(joined(out), "abc");  // "E" and the space are held back
  EXPECT_TRUE(s.push("N"));
  EXPECT_FALSE(s.push("D and more"));
  EXPECT_TRUE(s.stopped());
  EXPECT_EQ(joined(out), "abc");

  // finish() passes on held-back text that the final answer kept.
  out.clear();
  api::StopStringStream t({"xyz"}, [&](const std::string& piece) {
    out.push_back(piece);
    return true;
  });
  t.push("hello x");
  t.finish("hello x");
  EXPECT_EQ(joined(out), "hello x");

  // A sink that refuses ends the stream.
  api::StopStringStream r({}, [](const std::string&) { return false; });
  EXPECT_FALSE(r.push("word more"));
  EXPECT_TRUE(r.sink_refused());
}

TEST(Chat, MultiTurnRendersEveryTurnInOrder) {
  const std::vector<ChatMessage> messages = {
      {"system", {ChatPart::text_part("Be brief.")}},
      {"user", {ChatPart::image_part(0), ChatPart::text_part("What is this?")}},
      {"assistant", {ChatPart::text_part("A gradient.")}},
      {"user", {ChatPart::text_part("Which colours?")}},
  };
  const std::string p = engine().render_chat(messages);
  const size_t sys = p.find("System: Be brief."), user = p.find("User:<image>What is this?"),
               assistant = p.find("Assistant: A gradient."), again = p.find("User: Which colours?");
  ASSERT_NE(sys, std::string::npos) << p;
  ASSERT_NE(user, std::string::npos) << p;
  ASSERT_NE(assistant, std::string::npos) << p;
  ASSERT_NE(again, std::string::npos) << p;
  EXPECT_LT(sys, user);
  EXPECT_LT(user, assistant);
  EXPECT_LT(assistant, again);
  EXPECT_EQ(p.substr(p.size() - 10), "Assistant:");

  // The whole conversation is what the model reads: more turns, more prompt tokens.
  ChatOptions single = one_turn("What is this?", 4);
  ChatOptions multi = single;
  multi.messages = messages;
  const Description a = engine().chat(single), b = engine().chat(multi);
  EXPECT_GT(b.prompt_tokens, a.prompt_tokens + 8);
  EXPECT_TRUE(b.finish_reason == "stop" || b.finish_reason == "length");
}

TEST(Chat, StopStringsCutTheAnswerAndTheStream) {
  const Description full = engine().chat(one_turn("Describe it.", 32));
  ASSERT_GE(full.text.size(), 12u) << "the tiny model should say something: '" << full.text << "'";
  EXPECT_EQ(full.finish_reason, full.truncated ? "length" : "stop");
  // A stop string from the middle of the unconstrained answer (two ASCII letters: the tiny model's text
  // has no spaces and some invalid UTF-8).
  size_t k = 4;
  while (k + 1 < full.text.size() && !(std::isalnum(uint8_t(full.text[k])) && std::isalnum(uint8_t(full.text[k + 1]))))
    ++k;
  ASSERT_LT(k + 1, full.text.size()) << full.text;
  const std::string stop = full.text.substr(k, 2);
  const size_t at = full.text.find(stop);

  ChatOptions o = one_turn("Describe it.", 32);
  o.stop = {"never-said", stop};
  std::string streamed;
  const Description cut = engine().chat(o, [&](const std::string& piece) {
    streamed += piece;
    return true;
  });
  std::string expected = full.text.substr(0, at);
  while (!expected.empty() && expected.back() == ' ') expected.pop_back();
  EXPECT_EQ(cut.text, expected);
  EXPECT_EQ(cut.finish_reason, "stop");
  EXPECT_FALSE(cut.truncated);
  EXPECT_EQ(streamed, cut.text);
  EXPECT_EQ(streamed.find(stop), std::string::npos);
  EXPECT_LT(cut.new_tokens, full.new_tokens);

  // Without a stream callback the answer is cut the same way.
  EXPECT_EQ(engine().chat(o).text, expected);
}

TEST(Chat, SameSeedSameTextAndDescribeAgrees) {
  ChatOptions o = one_turn("Tell me.", 16);
  o.temperature = 1.0;
  o.seed = 7;
  const Description a = engine().chat(o), b = engine().chat(o);
  EXPECT_EQ(a.text, b.text);
  EXPECT_EQ(a.seed, 7u);
  o.seed = 8;
  EXPECT_NE(engine().chat(o).text, a.text);

  // describe() is a one-turn chat: the same prompt gives the same raw answer.
  DescribeOptions d;
  d.images = {pattern_image(64, 48, 0)};
  d.prompt = "Tell me.";
  d.max_tokens = 16;
  o.temperature = 0;
  o.seed.reset();
  EXPECT_EQ(engine().describe(d).raw_text, engine().chat(o).text);
}

TEST(Chat, BadConversationsAreErrors) {
  ChatOptions o = one_turn("x", 4);
  o.messages[0].role = "robot";
  EXPECT_THROW(engine().chat(o), Error);
  o = one_turn("x", 4);
  o.messages[0].parts[0] = ChatPart::image_part(3);
  EXPECT_THROW(engine().chat(o), Error);
  o = one_turn("x", 4);
  o.messages[0].parts = {ChatPart::text_part("no image")};
  EXPECT_THROW(engine().chat(o), Error);
  o = one_turn("x", 0);
  EXPECT_THROW(engine().chat(o), Error);
  o = one_turn("x", 4);
  o.top_p = 0;
  EXPECT_THROW(engine().chat(o), Error);
}
