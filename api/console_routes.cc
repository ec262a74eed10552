#include <string>
#include <string_view>

#include "api/console_assets.h"
#include "api/handlers.h"

namespace caseledger::api {

namespace {

std::string_view ContentType(std::string_view name) {
  auto ends = [&](std::string_view ext) {
    return name.size() > ext.size() &&
           name.substr(name.size() - ext.size()) == ext;
  };
  if (ends(".html")) return "text/html; charset=utf-8";
  if (ends(".js")) return "text/javascript; charset=utf-8";
  if (ends(".css")) return "text/css; charset=utf-8";
  if (ends(".svg")) return "image/svg+xml";
  return "application/octet-stream";
}

HttpResponse Asset(std::string_view name) {
  for (const ConsoleAsset& a : ConsoleAssets()) {
    if (a.name != name) continue;
    HttpResponse r;
    r.content_type = std::string(ContentType(name));
    r.body = std::string(a.text);
    // Scripts and styles only from this server; no inline script, no
    // eval, no framing, no plugins, no <base>; forms post only here.
    r.headers.emplace_back(
        "Content-Security-Policy",
        "default-src 'self'; script-src 'self'; style-src 'self'; "
        "img-src 'self' data:; connect-src 'self'; object-src 'none'; "
        "base-uri 'none'; form-action 'self'; frame-ancestors 'none'");
    r.headers.emplace_back("X-Frame-Options", "DENY");
    r.headers.emplace_back("Referrer-Policy", "no-referrer");
    r.headers.emplace_back("Cross-Origin-Opener-Policy", "same-origin");
    r.headers.emplace_back("Cross-Origin-Resource-Policy", "same-origin");
    return r;
  }
  return Problem(404, "Not Found", "no such console file");
}

}  // namespace

void AddConsoleRoutes(Router& router) {
  router.Add("GET", "/", [](const HttpRequest&, const PathParams&) {
    return Asset("index.html");
  });
  router.Add("GET", "/console/{file}",
             [](const HttpRequest&, const PathParams& p) {
               return Asset(p.at("file"));
             });
}

}  // namespace caseledger::api
