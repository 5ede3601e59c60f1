// Placeholder: this endpoint family is being implemented on its own branch and replaces this file.
#include "serve/routes.hpp"

namespace pictor::serve {

void add_session_routes(httplib::Server&, ServerContext&) {}

}  // namespace pictor::serve
