#include "api/stop_strings.hpp"

#include <algorithm>
#include <cctype>

namespace pictor::api {

size_t find_first_stop(const std::string& text, const std::vector<std::string>& stops) {
  size_t first = std::string::npos;
  for (const std::string& s : stops) {
    if (s.empty()) continue;
    const size_t at = text.find(s);
    if (at != std::string::npos) first = std::min(first, at);
  }
  return first;
}

StopStringStream::StopStringStream(std::vector<std::string> stops, Sink sink)
    : stops_(std::move(stops)), sink_(std::move(sink)) {
  stops_.erase(std::remove(stops_.begin(), stops_.end(), std::string()), stops_.end());
}

bool StopStringStream::emit_up_to(size_t end) {
  if (end <= emitted_ || refused_) return !refused_;
  const std::string piece = received_.substr(emitted_, end - emitted_);
  emitted_ = end;
  if (sink_ && !sink_(piece)) refused_ = true;
  return !refused_;
}

size_t StopStringStream::held_back_from() const {
  const size_t n = received_.size();
  size_t from = n;
  // The longest tail that is a proper prefix of a stop string.
  for (const std::string& s : stops_)
    for (size_t len = std::min(s.size() - 1, n); len > 0; --len)
      if (received_.compare(n - len, len, s, 0, len) == 0) {
        from = std::min(from, n - len);
        break;
      }
  // Whitespace before the held tail (or at the end): the final answer is stripped, and whitespace right
  // before a stop string is cut with it, so it may never belong to the text.
  while (from > emitted_ && std::isspace(static_cast<unsigned char>(received_[from - 1]))) --from;
  return std::max(emitted_, from);
}

bool StopStringStream::push(const std::string& piece) {
  if (stopped_ || refused_) return false;
  received_ += piece;
  const size_t stop = find_first_stop(received_, stops_);
  if (stop != std::string::npos) {
    stopped_ = true;
    // Whitespace before the stop string is not part of the (stripped) answer either.
    size_t end = stop;
    while (end > emitted_ && std::isspace(static_cast<unsigned char>(received_[end - 1]))) --end;
    emit_up_to(end);
    return false;
  }
  return emit_up_to(held_back_from());
}

void StopStringStream::finish(const std::string& final_text) {
  if (refused_) return;
  const std::string done = emitted();
  if (final_text.size() > done.size() && final_text.compare(0, done.size(), done) == 0 && sink_) {
    if (!sink_(final_text.substr(done.size()))) refused_ = true;
  }
}

}  // namespace pictor::api
