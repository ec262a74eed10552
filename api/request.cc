#include "api/request.h"

#include <algorithm>
#include <array>
#include <exception>

namespace caseledger::api {

using Json = nlohmann::json;
using domain::Actor;

std::string Header(const HttpRequest& req, const std::string& name) {
  auto it = req.headers.find(name);
  return it == req.headers.end() ? "" : it->second;
}

size_t JsonDepth(const std::string& text, size_t limit) {
  size_t depth = 0, max_depth = 0;
  bool in_string = false, escaped = false;
  for (char c : text) {
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      max_depth = std::max(max_depth, ++depth);
      if (max_depth > limit) return max_depth;
    } else if ((c == '}' || c == ']') && depth > 0) {
      --depth;
    }
  }
  return max_depth;
}

StatusOr<Json> ParseBody(const HttpRequest& req, size_t max_depth,
                         HttpResponse* error) {
  std::string type = Header(req, "content-type");
  if (type.substr(0, type.find(';')) != "application/json") {
    *error = Problem(415, "Unsupported Media Type",
                     "the request body must be application/json");
    return Status::InvalidArgument("media type");
  }
  if (JsonDepth(req.body, max_depth) > max_depth) {
    *error = Problem(
        400, "Bad Request",
        "the JSON nests deeper than " + std::to_string(max_depth) + " levels");
    return Status::InvalidArgument("depth");
  }
  Json body = Json::parse(req.body, nullptr, /*allow_exceptions=*/false);
  if (body.is_discarded()) {
    *error = Problem(400, "Bad Request", "the request body is not valid JSON");
    return Status::InvalidArgument("json");
  }
  return body;
}

std::string Quote(uint64_t version) {
  return "\"" + std::to_string(version) + "\"";
}

std::optional<uint64_t> ParseIfMatch(const std::string& value, bool* bad) {
  *bad = false;
  if (value.empty()) return std::nullopt;
  std::string v = value;
  if (v.size() >= 2 && v.front() == '"' && v.back() == '"') {
    v = v.substr(1, v.size() - 2);
  }
  try {
    size_t used = 0;
    uint64_t n = std::stoull(v, &used);
    if (used == v.size()) return n;
  } catch (const std::exception&) {
  }
  *bad = true;
  return std::nullopt;
}

std::optional<EventId> IdempotentEventId(const Actor& actor,
                                         const std::string& key) {
  if (key.empty() || key.size() > 255) return std::nullopt;
  for (char c : key) {
    if (c < 0x21 || c > 0x7e) return std::nullopt;
  }
  const std::string hex =
      Sha256Hex("idempotency-key\n" + actor.id + '\n' + key);
  std::array<uint8_t, 16> bytes{};
  for (size_t i = 0; i < bytes.size(); ++i) {
    bytes[i] =
        static_cast<uint8_t>(std::stoi(hex.substr(2 * i, 2), nullptr, 16));
  }
  bytes[6] = static_cast<uint8_t>((bytes[6] & 0x0F) | 0x80);  // version 8
  bytes[8] = static_cast<uint8_t>((bytes[8] & 0x3F) | 0x80);  // RFC variant
  return EventId(bytes);
}

}  // namespace caseledger::api
