#pragma once
// Identifiers for stored objects: a prefix naming the kind ("img", "job", "ses", "node") and 24 random hex
// digits. They appear in URLs and file names, so is_valid_id() is checked before any lookup: an id can
// never carry a path separator or "..".
#include <string>

namespace pictor::storage {

std::string new_id(const std::string& prefix);
bool is_valid_id(const std::string& id, const std::string& prefix);

// Seconds since the Unix epoch (with fractions).
double now_seconds();

}  // namespace pictor::storage
