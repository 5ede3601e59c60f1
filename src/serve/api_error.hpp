#pragma once
// Every failure an HTTP handler reports is an ApiError: the server turns it into the OpenAI error shape
// {"error":{"message","type","param","code"}} with `status` as the HTTP status, so clients written for the
// OpenAI API (and the official SDKs' exception classes) understand it.
#include <string>

#include "core/error.hpp"

namespace pictor::serve {

class ApiError : public Error {
 public:
  ApiError(int status, std::string type, const std::string& message, std::string param = "", std::string code = "")
      : Error(message), status(status), type(std::move(type)), param(std::move(param)), code(std::move(code)) {}
  int status;
  std::string type;       // "invalid_request_error", "authentication_error", "rate_limit_error", "server_error" ...
  std::string param;      // the request field at fault ("" when none)
  std::string code;       // machine-readable detail ("" when none)
  int retry_after_s = 0;  // > 0: sent as a Retry-After header (429, 503)
};

// 400 naming the field at fault, e.g. invalid_param("size", "size must be WIDTHxHEIGHT, got \"big\"").
inline ApiError invalid_param(const std::string& param, const std::string& message,
                              const std::string& code = "invalid_value") {
  return ApiError(400, "invalid_request_error", message, param, code);
}
inline ApiError not_found(const std::string& message, const std::string& param = "") {
  return ApiError(404, "invalid_request_error", message, param, "not_found");
}

}  // namespace pictor::serve
