#include "caseledger/domain/catalog.h"

#include <algorithm>
#include <functional>
#include <nlohmann/json.hpp>
#include <set>
#include <stdexcept>
#include <string_view>
#include <utility>
#include <valijson/adapters/nlohmann_json_adapter.hpp>
#include <valijson/schema.hpp>
#include <valijson/schema_parser.hpp>
#include <valijson/validation_results.hpp>
#include <valijson/validator.hpp>

#include "engine/domain/src/embedded_schemas.h"
#include "engine/domain/src/upcasters.h"

namespace caseledger::domain {
namespace {

using Json = nlohmann::json;

// "RiskAssessed.v2.json" -> {"RiskAssessed", 2}; false for other names.
bool ParseSchemaFileName(const std::string& name, std::string* type,
                         uint32_t* version) {
  const std::string suffix = ".json";
  if (name.size() <= suffix.size() ||
      name.compare(name.size() - suffix.size(), suffix.size(), suffix) != 0) {
    return false;
  }
  std::string stem = name.substr(0, name.size() - suffix.size());
  size_t dot = stem.rfind(".v");
  if (dot == std::string::npos || dot == 0) return false;
  std::string digits = stem.substr(dot + 2);
  if (digits.empty() || !std::all_of(digits.begin(), digits.end(), [](char c) {
        return c >= '0' && c <= '9';
      })) {
    return false;
  }
  *type = stem.substr(0, dot);
  *version = static_cast<uint32_t>(std::stoul(digits));
  return true;
}

std::string EscapePointerToken(std::string_view token) {
  std::string out;
  for (char c : token) {
    if (c == '~') {
      out += "~0";
    } else if (c == '/') {
      out += "~1";
    } else {
      out += c;
    }
  }
  return out;
}

// valijson's context ["<root>", "[a]", "[0]"] -> JSON pointer "/a/0".
std::string ContextToPointer(const std::vector<std::string>& context) {
  std::string pointer;
  for (const std::string& part : context) {
    if (part.size() >= 2 && part.front() == '[' && part.back() == ']') {
      pointer += "/" + EscapePointerToken(
                           std::string_view(part).substr(1, part.size() - 2));
    }
  }
  return pointer;
}

using Key = std::pair<std::string, uint32_t>;  // (type, version)

}  // namespace

struct EventCatalog::Impl {
  std::map<std::string, Json> files;  // file name -> parsed document
  std::map<Key, std::unique_ptr<valijson::Schema>> schemas;
  std::map<Key, std::vector<std::string>> personal;
  std::map<Key, std::vector<std::string>> shareable;
  std::map<std::string, uint32_t, std::less<>> current;
  // The same, by the name's length (a rebuild asks for each event's
  // current version: a type is found among the one or two of its length,
  // quicker than by hashing its name).
  std::vector<std::vector<std::pair<std::string, uint32_t>>> current_by_size;

  const uint32_t* FindCurrent(std::string_view type) const {
    if (type.size() < current_by_size.size()) {
      for (const auto& [name, v] : current_by_size[type.size()]) {
        if (name == type) return &v;
      }
    }
    return nullptr;
  }
  internal::UpcasterMap upcasters;  // (type, from version) -> next
  // The largest maxItems and maxLength of any schema: a payload cut down to
  // one more than these still fails every limit the whole one fails.
  size_t max_items = 0;
  size_t max_length = 0;

  // Resolves "file#/definitions/x" or "#/definitions/x" within `file`.
  const Json* Resolve(const std::string& file, const std::string& ref,
                      std::string* target_file) const {
    size_t hash = ref.find('#');
    std::string doc = hash == std::string::npos ? ref : ref.substr(0, hash);
    std::string pointer = hash == std::string::npos ? "" : ref.substr(hash + 1);
    *target_file = doc.empty() ? file : doc;
    auto it = files.find(*target_file);
    if (it == files.end()) return nullptr;
    try {
      return &it->second.at(Json::json_pointer(pointer));
    } catch (const std::exception&) {
      return nullptr;
    }
  }

  // The pointers of the fields annotated `annotation` ("x-personal",
  // "x-shareable"), "-" for every item.
  void CollectAnnotated(const char* annotation, const std::string& file,
                        const Json& node, const std::string& pointer, int depth,
                        std::set<std::string>* out) const {
    if (depth > 32 || !node.is_object()) return;
    if (auto p = node.find(annotation);
        p != node.end() && p->is_boolean() && p->get<bool>()) {
      out->insert(pointer);
      return;
    }
    if (auto ref = node.find("$ref"); ref != node.end() && ref->is_string()) {
      std::string target_file;
      if (const Json* target = Resolve(file, *ref, &target_file)) {
        CollectAnnotated(annotation, target_file, *target, pointer, depth + 1,
                         out);
      }
    }
    if (auto props = node.find("properties");
        props != node.end() && props->is_object()) {
      for (const auto& [name, child] : props->items()) {
        CollectAnnotated(annotation, file, child,
                         pointer + "/" + EscapePointerToken(name), depth + 1,
                         out);
      }
    }
    if (auto items = node.find("items"); items != node.end()) {
      CollectAnnotated(annotation, file, *items, pointer + "/-", depth + 1,
                       out);
    }
    for (const char* key : {"allOf", "anyOf", "oneOf"}) {
      if (auto list = node.find(key); list != node.end() && list->is_array()) {
        for (const auto& sub : *list) {
          CollectAnnotated(annotation, file, sub, pointer, depth + 1, out);
        }
      }
    }
    for (const char* key : {"then", "else"}) {
      if (auto sub = node.find(key); sub != node.end()) {
        CollectAnnotated(annotation, file, *sub, pointer, depth + 1, out);
      }
    }
  }
};

namespace {

// The schemas as valijson checks them: its "format" checks for dates and
// times compile a std::regex on every value they check (most of a command's
// CPU time), while "pattern" expressions are compiled once per validator. So
// each of these formats becomes the equivalent pattern, month lengths
// included (as valijson's own check: 29 days for any February).
Json ForValidation(Json node) {
  static const std::string kDate =
      "[0-9]{4}-(?:(?:0[13578]|1[02])-(?:0[1-9]|[12][0-9]|3[01])|"
      "(?:0[469]|11)-(?:0[1-9]|[12][0-9]|30)|02-(?:0[1-9]|[12][0-9]))";
  static const std::string kTime =
      "([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\\.[0-9]{1,9})?"
      "([Zz]|[+-]([01][0-9]|2[0-3]):[0-5][0-9])";
  if (node.is_array()) {
    for (auto& item : node) item = ForValidation(std::move(item));
    return node;
  }
  if (!node.is_object()) return node;
  for (auto& [key, value] : node.items())
    value = ForValidation(std::move(value));
  auto format = node.find("format");
  if (format == node.end() || !format->is_string()) return node;
  std::string pattern;
  if (*format == "date") pattern = "^" + kDate + "$";
  if (*format == "date-time") pattern = "^" + kDate + "[Tt]" + kTime + "$";
  if (pattern.empty()) return node;
  node.erase("format");
  if (node.contains("pattern")) {
    // valijson checks allOf before maxLength: the length comes first inside
    // it, so no expression runs on a string longer than its limit.
    if (!node.contains("allOf")) node["allOf"] = Json::array();
    if (node.contains("maxLength")) {
      node["allOf"].push_back(Json{{"maxLength", node["maxLength"]}});
    }
    node["allOf"].push_back(Json{{"pattern", pattern}});
  } else {
    node["pattern"] = pattern;
  }
  return node;
}

// The largest "maxItems" and "maxLength" anywhere in `node`.
void CollectLimits(const Json& node, size_t* max_items, size_t* max_length) {
  if (node.is_array()) {
    for (const auto& item : node) CollectLimits(item, max_items, max_length);
    return;
  }
  if (!node.is_object()) return;
  for (const auto& [key, value] : node.items()) {
    if (value.is_number_unsigned()) {
      if (key == "maxItems") {
        *max_items = std::max(*max_items, value.get<size_t>());
      }
      if (key == "maxLength") {
        *max_length = std::max(*max_length, value.get<size_t>());
      }
    }
    CollectLimits(value, max_items, max_length);
  }
}

// `payload` with every array cut to `items` elements and every string to
// `length` code points (UTF-8), for the second, error-collecting pass.
Json CutDown(const Json& payload, size_t items, size_t length) {
  if (payload.is_array()) {
    Json out = Json::array();
    for (size_t i = 0; i < payload.size() && i < items; ++i) {
      out.push_back(CutDown(payload[i], items, length));
    }
    return out;
  }
  if (payload.is_object()) {
    Json out = Json::object();
    for (const auto& [key, value] : payload.items()) {
      out[key] = CutDown(value, items, length);
    }
    return out;
  }
  if (payload.is_string()) {
    const std::string& text = payload.get_ref<const std::string&>();
    size_t points = 0;
    for (size_t i = 0; i < text.size(); ++i) {
      // A byte that does not continue a sequence starts a code point.
      if ((static_cast<unsigned char>(text[i]) & 0xC0) != 0x80 &&
          points++ == length) {
        return Json(text.substr(0, i));
      }
    }
  }
  return payload;
}

}  // namespace

EventCatalog::EventCatalog(std::unique_ptr<Impl> impl)
    : impl_(std::move(impl)) {}
EventCatalog::~EventCatalog() = default;

StatusOr<std::shared_ptr<const EventCatalog>> EventCatalog::Load() {
  auto impl = std::make_unique<Impl>();
  for (const auto& f : internal::EmbeddedSchemas()) {
    Json doc = Json::parse(f.text, nullptr, /*allow_exceptions=*/false);
    if (doc.is_discarded()) {
      return Status::InvalidArgument("schema " + std::string(f.name) +
                                     " is not JSON");
    }
    impl->files.emplace(f.name, std::move(doc));
  }

  const Impl& lookup = *impl;
  auto fetch = [&lookup](const std::string& uri) -> const Json* {
    std::string name = uri.substr(
        uri.rfind('/') == std::string::npos ? 0 : uri.rfind('/') + 1);
    auto it = lookup.files.find(name);
    if (it == lookup.files.end()) return nullptr;
    return new Json(ForValidation(it->second));
  };
  auto free_doc = [](const Json* doc) { delete doc; };

  for (const auto& [name, doc] : impl->files) {
    std::string type;
    uint32_t version = 0;
    if (!ParseSchemaFileName(name, &type, &version) || type == "common") {
      continue;
    }
    auto schema = std::make_unique<valijson::Schema>();
    try {
      valijson::SchemaParser parser(valijson::SchemaParser::kDraft7);
      const Json checked = ForValidation(doc);
      valijson::adapters::NlohmannJsonAdapter adapter(checked);
      parser.populateSchema(adapter, *schema, fetch, free_doc);
    } catch (const std::exception& e) {
      return Status::InvalidArgument("schema " + name + ": " + e.what());
    }
    CollectLimits(doc, &impl->max_items, &impl->max_length);
    Key key{type, version};
    impl->schemas.emplace(key, std::move(schema));
    std::set<std::string> personal, shareable;
    impl->CollectAnnotated("x-personal", name, doc, "", 0, &personal);
    impl->CollectAnnotated("x-shareable", name, doc, "", 0, &shareable);
    impl->personal.emplace(
        key, std::vector<std::string>(personal.begin(), personal.end()));
    impl->shareable.emplace(
        key, std::vector<std::string>(shareable.begin(), shareable.end()));
    uint32_t& current = impl->current[type];
    current = std::max(current, version);
  }

  if (auto common = impl->files.find("common.v1.json");
      common != impl->files.end()) {
    CollectLimits(common->second, &impl->max_items, &impl->max_length);
  }
  // Every version above 1 needs an upcaster from the one before it.
  impl->upcasters = internal::Upcasters();
  for (const auto& [type, current] : impl->current) {
    for (uint32_t v = 1; v < current; ++v) {
      if (!impl->upcasters.count(Key{type, v})) {
        return Status::InvalidArgument("no upcaster for " + type + " v" +
                                       std::to_string(v) + " -> v" +
                                       std::to_string(v + 1));
      }
    }
  }
  for (const auto& [type, v] : impl->current) {
    if (type.size() >= impl->current_by_size.size()) {
      impl->current_by_size.resize(type.size() + 1);
    }
    impl->current_by_size[type.size()].emplace_back(type, v);
  }
  return std::shared_ptr<const EventCatalog>(new EventCatalog(std::move(impl)));
}

std::vector<std::string> EventCatalog::Types() const {
  std::vector<std::string> out;
  for (const auto& [type, v] : impl_->current) out.push_back(type);
  return out;
}

std::optional<std::string_view> EventCatalog::SchemaDocument(
    std::string_view file) {
  for (const auto& f : internal::EmbeddedSchemas()) {
    if (f.name == file) return f.text;
  }
  return std::nullopt;
}

std::vector<std::string> EventCatalog::Vocabulary(std::string_view name) const {
  std::vector<std::string> out;
  auto file = impl_->files.find("common.v1.json");
  if (file == impl_->files.end()) return out;
  const Json& defs = file->second.value("definitions", Json::object());
  auto def = defs.find(std::string(name));
  if (def == defs.end() || !def->is_object()) return out;
  for (const auto& code : def->value("enum", Json::array())) {
    if (code.is_string()) out.push_back(code.get<std::string>());
  }
  return out;
}

bool EventCatalog::Knows(std::string_view type) const {
  return impl_->FindCurrent(type) != nullptr;
}

uint32_t EventCatalog::CurrentVersion(std::string_view type) const {
  const uint32_t* current = impl_->FindCurrent(type);
  return current != nullptr ? *current : 0;
}

Status EventCatalog::Validate(std::string_view type, uint32_t version,
                              const Json& payload) const {
  auto it = impl_->schemas.find(Key{std::string(type), version});
  if (it == impl_->schemas.end()) {
    return Status::InvalidArgument("unknown event type " + std::string(type) +
                                   " v" + std::to_string(version));
  }
  // One validator per thread, kept: it caches the compiled regular
  // expressions of the schemas' patterns (compiling them afresh for each
  // event was most of a command's CPU time). Not shared: the cache is not
  // thread-safe.
  //
  // Validation costs time linear in the payload, whatever a client sends.
  // The first pass stops at the first constraint that fails, and valijson
  // checks an array's maxItems before its uniqueItems (quadratic) and a
  // string's maxLength before its pattern, so neither runs on more than
  // its limit allows. A payload that fails is checked again to say where,
  // a pass that checks every constraint: on a copy cut down to one element
  // and one character past the largest limit of any schema, which fails
  // every limit the whole payload fails and bounds the rest.
  thread_local valijson::Validator validator;
  bool ok = false;
  try {
    valijson::adapters::NlohmannJsonAdapter target(payload);
    ok = validator.validate(*it->second, target, nullptr);
  } catch (const std::exception& e) {
    return Status::InvalidField("",
                                std::string("cannot validate: ") + e.what());
  }
  if (ok) return Status::OK();
  valijson::ValidationResults results;
  try {
    const Json cut =
        CutDown(payload, impl_->max_items + 1, impl_->max_length + 1);
    valijson::adapters::NlohmannJsonAdapter target(cut);
    if (validator.validate(*it->second, target, &results)) {
      return Status::InvalidField("", "the payload does not match its schema");
    }
  } catch (const std::exception& e) {
    return Status::InvalidField("",
                                std::string("cannot validate: ") + e.what());
  }
  // Every field that failed, by its pointer. A missing property is named
  // by where it should be. valijson also reports each enclosing object that
  // failed because of a member: those, and repeats, are left out. The
  // first is the most specific (the deepest).
  std::vector<FieldError> all;
  valijson::ValidationResults::Error error;
  static constexpr std::string_view kMissing = "Missing required property '";
  while (results.popError(error)) {
    std::string pointer = ContextToPointer(error.context);
    if (std::string_view(error.description).substr(0, kMissing.size()) ==
        kMissing) {
      const size_t end = error.description.find('\'', kMissing.size());
      if (end != std::string::npos) {
        pointer += '/';
        pointer += EscapePointerToken(
            std::string_view(error.description)
                .substr(kMissing.size(), end - kMissing.size()));
      }
    }
    all.push_back({std::move(pointer), std::move(error.description)});
  }
  const auto encloses = [](const std::string& outer, const std::string& inner) {
    return inner.size() > outer.size() &&
           inner.compare(0, outer.size(), outer) == 0 &&
           inner[outer.size()] == '/';
  };
  std::vector<FieldError> leaves;
  for (const FieldError& e : all) {
    bool keep = true;
    for (const FieldError& other : all) {
      if (encloses(e.pointer, other.pointer)) keep = false;
    }
    for (const FieldError& kept : leaves) {
      if (kept.pointer == e.pointer) keep = false;
    }
    if (keep) leaves.push_back(e);
  }
  if (leaves.empty()) {
    return Status::InvalidField("", "the payload does not match its schema");
  }
  std::stable_sort(leaves.begin(), leaves.end(),
                   [](const FieldError& a, const FieldError& b) {
                     return std::count(a.pointer.begin(), a.pointer.end(),
                                       '/') >
                            std::count(b.pointer.begin(), b.pointer.end(), '/');
                   });
  for (FieldError& e : leaves) {
    e.detail = (e.pointer.empty() ? std::string("the payload") : e.pointer) +
               ": " + e.detail;
  }
  return Status::InvalidFields(std::move(leaves));
}

std::vector<std::string> EventCatalog::PersonalPaths(std::string_view type,
                                                     uint32_t version) const {
  auto it = impl_->personal.find(Key{std::string(type), version});
  return it == impl_->personal.end() ? std::vector<std::string>{} : it->second;
}

std::vector<std::string> EventCatalog::ShareablePaths(std::string_view type,
                                                      uint32_t version) const {
  auto it = impl_->shareable.find(Key{std::string(type), version});
  return it == impl_->shareable.end() ? std::vector<std::string>{} : it->second;
}

StatusOr<Json> EventCatalog::Upcast(std::string_view type, uint32_t version,
                                    Json payload) const {
  uint32_t current = CurrentVersion(type);
  if (current == 0) {
    return Status::InvalidArgument("unknown event type " + std::string(type));
  }
  if (version == 0 || version > current) {
    return Status::InvalidArgument(std::string(type) + " v" +
                                   std::to_string(version) +
                                   " is not a version this build knows");
  }
  for (uint32_t v = version; v < current; ++v) {
    const auto& up = impl_->upcasters.at(Key{std::string(type), v});
    ASSIGN_OR_RETURN(payload, up(std::move(payload)));
  }
  return payload;
}

}  // namespace caseledger::domain
