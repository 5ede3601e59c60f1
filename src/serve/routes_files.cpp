// GET /v1/files/images/<id>.<ext>: images stored by the server (results of `response_format: url`,
// session nodes). The id is validated before any lookup, so no request can name another file.
#include <httplib.h>

#include "serve/http_util.hpp"
#include "serve/routes.hpp"
#include "serve/server_context.hpp"

namespace pictor::serve {

void add_file_routes(httplib::Server& http, ServerContext& ctx) {
  http.Get(R"(/v1/files/images/([A-Za-z0-9_]+)\.(png|jpg|webp))",
           [&ctx](const httplib::Request& req, httplib::Response& res) {
             auto id = path_match(req, 1), ext = path_match(req, 2);
             auto img = ctx.images.get(id);
             std::string want = ext == "jpg" ? "jpeg" : ext;
             if (!img || img->format != want) throw not_found("no image " + id + "." + ext);
             auto bytes = ctx.images.read(*img);
             res.set_header("Cache-Control", "private, max-age=31536000, immutable");
             res.set_header("Content-Disposition", "inline; filename=\"" + id + "." + ext + "\"");
             send_bytes(res, std::string(bytes.begin(), bytes.end()), storage::ImageStore::mime_type(img->format));
           });
}

}  // namespace pictor::serve
