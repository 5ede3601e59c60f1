#pragma once
// Pictor reports every user-facing failure (bad file, bad config, bad flag) as pictor::Error with a
// message that names the offending file/field/limit. Internal invariants use assertions instead.
#include <stdexcept>
#include <string>

namespace pictor {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

// Thrown when a checkpoint or config asks for something Pictor does not implement: it must never be
// silently ignored (a wrong image is worse than an error).
class Unsupported : public Error {
 public:
  explicit Unsupported(const std::string& what) : Error("unsupported: " + what) {}
};

}  // namespace pictor

namespace pictor {
// Thrown when a progress callback asks to stop a running job.
class Cancelled : public Error {
 public:
  Cancelled() : Error("cancelled") {}
};
}  // namespace pictor
