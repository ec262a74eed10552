#include "caseledger/keys/sealer.h"

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <vector>

#include "caseledger/domain/catalog.h"
#include "engine/keys/src/aead.h"

namespace caseledger::keys {
namespace {

using Json = nlohmann::json;

constexpr std::string_view kMember = "$sealed";

// The associated data of a sealed field.
std::string FieldAd(std::string_view case_id, std::string_view event_id,
                    std::string_view path, std::string_view scope) {
  std::string ad = "caseledger field 1";
  for (std::string_view part : {case_id, event_id, path, scope}) {
    ad.push_back('\0');
    ad.append(part);
  }
  return ad;
}

std::vector<std::string> SplitPointer(const std::string& pointer) {
  std::vector<std::string> out;
  size_t from = 1;
  while (from <= pointer.size()) {
    size_t slash = pointer.find('/', from);
    if (slash == std::string::npos) slash = pointer.size();
    out.push_back(pointer.substr(from, slash - from));
    from = slash + 1;
  }
  return out;
}

std::string Unescape(std::string token) {
  for (size_t i = 0; (i = token.find('~', i)) != std::string::npos; ++i) {
    if (i + 1 < token.size() && token[i + 1] == '1')
      token.replace(i, 2, "/");
    else if (i + 1 < token.size() && token[i + 1] == '0')
      token.replace(i, 2, "~");
  }
  return token;
}

std::string Escape(const std::string& name) {
  std::string out;
  for (char c : name) {
    if (c == '~')
      out += "~0";
    else if (c == '/')
      out += "~1";
    else
      out += c;
  }
  return out;
}

struct Target {
  Json* value;
  std::string path;
  std::string scope;
};

// The fields `tokens` (a personal path, "-" for every item) reach from
// `node`, with the scope of the nearest object with a person_ref.
void Reach(Json* node, const std::vector<std::string>& tokens, size_t i,
           const std::string& path, std::string scope,
           std::vector<Target>* out) {
  if (node->is_object()) {
    auto ref = node->find("person_ref");
    if (ref != node->end() && ref->is_string()) {
      scope = Scope::Person(ref->get<std::string>());
    }
  }
  if (i == tokens.size()) {
    if (!node->is_null()) out->push_back({node, path, scope});
    return;
  }
  if (tokens[i] == "-") {
    if (!node->is_array()) return;
    for (size_t k = 0; k < node->size(); ++k) {
      Reach(&(*node)[k], tokens, i + 1, path + "/" + std::to_string(k), scope,
            out);
    }
    return;
  }
  if (!node->is_object()) return;
  auto it = node->find(Unescape(tokens[i]));
  if (it == node->end()) return;
  Reach(&*it, tokens, i + 1, path + "/" + tokens[i], scope, out);
}

struct Token {
  std::string scope, event_id, path, sealed;
};

std::optional<Token> ParseToken(const Json& value) {
  if (!Sealer::IsSealed(value)) return std::nullopt;
  const std::string& text = value.begin()->get_ref<const std::string&>();
  std::vector<std::string> parts;
  size_t from = 0;
  for (size_t bar = text.find('|'); bar != std::string::npos;
       from = bar + 1, bar = text.find('|', from)) {
    parts.push_back(text.substr(from, bar - from));
  }
  parts.push_back(text.substr(from));
  if (parts.size() != 5 || parts[0] != "1") return std::nullopt;
  auto bytes = internal::FromBase64(parts[4]);
  if (!bytes) return std::nullopt;
  return Token{parts[1], parts[2], parts[3], std::move(*bytes)};
}

// Keys looked up once per scope within one call.
class KeyLookup {
 public:
  KeyLookup(KeyStore* keys, std::string_view case_id)
      : keys_(keys), case_id_(case_id) {}
  // nullptr: destroyed.
  StatusOr<std::shared_ptr<const SecretKey>> Get(const std::string& scope) {
    auto it = found_.find(scope);
    if (it != found_.end()) return it->second;
    StatusOr<std::shared_ptr<const SecretKey>> key =
        keys_->Get(case_id_, scope);
    if (key.status().IsNotFound()) {
      return Status::Corruption("a sealed value of case " + case_id_ +
                                " names a data key (" + scope +
                                ") that was never stored");
    }
    if (!key.ok()) return key.status();
    found_.emplace(scope, *key);
    return key;
  }

 private:
  KeyStore* keys_;
  std::string case_id_;
  std::map<std::string, std::shared_ptr<const SecretKey>> found_;
};

// Opens every sealed value under `node`; `expect_event` set: each must name
// it and the path where it is.
Status Open(Json* node, const std::string& path, std::string_view case_id,
            const std::string* expect_event, KeyLookup* keys) {
  if (node->is_object()) {
    if (Sealer::IsSealed(*node)) {
      std::optional<Token> t = ParseToken(*node);
      if (!t) {
        return Status::Corruption("a sealed value at " + path +
                                  " is malformed");
      }
      if (expect_event && (t->event_id != *expect_event || t->path != path)) {
        return Status::Corruption("the sealed value at " + path +
                                  " was made for another event or field");
      }
      ASSIGN_OR_RETURN(std::shared_ptr<const SecretKey> key,
                       keys->Get(t->scope));
      if (!key) {
        *node = std::string(kErasedMarker);
        return Status::OK();
      }
      std::optional<std::string> plain = internal::Decrypt(
          key->data(), FieldAd(case_id, t->event_id, t->path, t->scope),
          t->sealed);
      if (!plain) {
        return Status::Corruption("the sealed value at " + path +
                                  " does not open: altered, or moved from "
                                  "another case, event or field");
      }
      Json value = Json::parse(*plain, nullptr, false);
      if (value.is_discarded()) {
        return Status::Corruption("the sealed value at " + path +
                                  " opens to something that is not JSON");
      }
      *node = std::move(value);
      return Status::OK();
    }
    for (auto& [k, v] : node->items()) {
      if (v.is_object() || v.is_array()) {
        RETURN_IF_ERROR(
            Open(&v, path + "/" + Escape(k), case_id, expect_event, keys));
      }
    }
  } else if (node->is_array()) {
    for (size_t i = 0; i < node->size(); ++i) {
      Json& v = (*node)[i];
      if (v.is_object() || v.is_array()) {
        RETURN_IF_ERROR(Open(&v, path + "/" + std::to_string(i), case_id,
                             expect_event, keys));
      }
    }
  }
  return Status::OK();
}

}  // namespace

Sealer::Sealer(std::shared_ptr<const domain::EventCatalog> catalog,
               KeyStore* keys)
    : catalog_(std::move(catalog)), keys_(keys) {}

bool Sealer::IsSealed(const Json& value) {
  return value.is_object() && value.size() == 1 &&
         value.begin().key() == kMember && value.begin()->is_string();
}

Status Sealer::Seal(std::string_view case_id, const EventId& event_id,
                    std::string_view type, uint32_t version,
                    Json* payload) const {
  std::vector<std::string> paths = catalog_->PersonalPaths(type, version);
  // Text written for sharing is sealed too until it is shared: before a
  // reviewer screens it, it may name someone (the released copy is in
  // LearningScreened).
  for (std::string& p : catalog_->ShareablePaths(type, version)) {
    paths.push_back(std::move(p));
  }
  if (type == "EventAmended") {
    // The corrected fields are personal as the amended event's schema says,
    // field by field: a corrected code stays readable to the rules.
    auto amended_type = payload->find("amends_event_type");
    auto amended_version = payload->find("amends_schema_version");
    if (amended_type != payload->end() && amended_type->is_string() &&
        amended_version != payload->end() &&
        amended_version->is_number_integer() &&
        amended_version->get<int64_t>() > 0 &&
        amended_version->get<int64_t>() <= UINT32_MAX &&
        catalog_->Knows(amended_type->get<std::string>())) {
      std::erase(paths, "/corrected_fields");
      const std::string amended = amended_type->get<std::string>();
      const auto version_of = amended_version->get<uint32_t>();
      std::vector<std::string> inner =
          catalog_->PersonalPaths(amended, version_of);
      for (std::string& p : catalog_->ShareablePaths(amended, version_of)) {
        inner.push_back(std::move(p));
      }
      for (const std::string& p : inner) {
        paths.push_back("/corrected_fields" + p);
      }
    }
  }
  std::vector<Target> targets;
  for (const std::string& p : paths) {
    Reach(payload, SplitPointer(p), 0, "", Scope::Case(), &targets);
  }
  if (targets.empty()) return Status::OK();
  std::vector<std::string> scopes;
  for (const Target& t : targets) {
    if (std::find(scopes.begin(), scopes.end(), t.scope) == scopes.end()) {
      scopes.push_back(t.scope);
    }
  }
  ASSIGN_OR_RETURN(auto keys, keys_->GetOrCreate(case_id, scopes));
  const std::string id = event_id.ToString();
  for (Target& t : targets) {
    const size_t k = static_cast<size_t>(
        std::find(scopes.begin(), scopes.end(), t.scope) - scopes.begin());
    const std::string plain =
        t.value->dump(-1, ' ', false, Json::error_handler_t::replace);
    const std::string sealed = internal::Encrypt(
        keys[k]->data(), FieldAd(case_id, id, t.path, t.scope), plain);
    *t.value =
        Json{{std::string(kMember), "1|" + t.scope + "|" + id + "|" + t.path +
                                        "|" + internal::Base64(sealed)}};
  }
  return Status::OK();
}

Status Sealer::UnsealEvent(std::string_view case_id, const EventId& event_id,
                           Json* payload) const {
  KeyLookup keys(keys_, case_id);
  const std::string id = event_id.ToString();
  return Open(payload, "", case_id, &id, &keys);
}

Status Sealer::UnsealDocument(std::string_view case_id, Json* doc) const {
  KeyLookup keys(keys_, case_id);
  return Open(doc, "", case_id, nullptr, &keys);
}

void Sealer::Withhold(std::string_view case_id, Json* doc) const {
  if (IsSealed(*doc)) {
    std::optional<Token> t = ParseToken(*doc);
    *doc = std::string(t && keys_->IsDestroyed(case_id, t->scope)
                           ? kErasedMarker
                           : kWithheldMarker);
    return;
  }
  if (doc->is_object() || doc->is_array()) {
    for (auto& v : *doc) {
      if (v.is_object() || v.is_array()) Withhold(case_id, &v);
    }
  }
}

}  // namespace caseledger::keys
