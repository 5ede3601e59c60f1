#pragma once
// Stop strings for streamed text: generation ends at the first stop string, which is part of neither the
// answer nor the streamed pieces. A piece is only passed on once it can no longer turn out to be the
// start of a stop string (and trailing whitespace is held back too, since the final answer is stripped),
// so a client never sees text that the final answer does not have.
#include <functional>
#include <string>
#include <vector>

namespace pictor::api {

// Offset of the earliest occurrence of any of `stops` in `text` (npos when none; empty stops are ignored).
size_t find_first_stop(const std::string& text, const std::vector<std::string>& stops);

class StopStringStream {
 public:
  using Sink = std::function<bool(const std::string& piece)>;
  StopStringStream(std::vector<std::string> stops, Sink sink);

  // Feeds the next piece of generated text. Returns false when generation should end: a stop string was
  // completed (stopped()) or the sink returned false (sink_refused()).
  bool push(const std::string& piece);
  // Once generation ended: passes on what `final_text` has beyond what was already emitted (held-back
  // text that turned out not to start a stop string), when it extends the emitted text.
  void finish(const std::string& final_text);

  bool stopped() const { return stopped_; }
  bool sink_refused() const { return refused_; }
  std::string emitted() const { return received_.substr(0, emitted_); }

 private:
  bool emit_up_to(size_t end);
  size_t held_back_from() const;  // start of the tail that must wait for more text

  std::vector<std::string> stops_;
  Sink sink_;
  std::string received_;
  size_t emitted_ = 0;
  bool stopped_ = false, refused_ = false;
};

}  // namespace pictor::api
