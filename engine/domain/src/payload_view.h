// Read-only views of an event's payload with the few operations evolve()
// needs, over nlohmann's document (NlohmannView) or over simdjson's parse
// of the stored text (SimdjsonView), so that one fold serves both: a
// rebuild folds stored events without building a document per event.
// Internal to the domain.
//
// Both read the same text the same way: a missing member, or a member of
// another type than asked for, reads as empty (""/false/no elements); a
// repeated key reads as its last value (as nlohmann's parser keeps it);
// each() visits what a range-for over the nlohmann value visits (an
// array's elements, an object's values, a scalar itself once, nothing for
// null or a missing member).
#pragma once

#include <simdjson.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <string_view>
#include <vector>

namespace caseledger::domain::internal {

class NlohmannView {
 public:
  explicit NlohmannView(const nlohmann::json* j) : j_(j) {}

  NlohmannView operator[](std::string_view key) const {
    if (j_ == nullptr || !j_->is_object()) return NlohmannView(nullptr);
    auto it = j_->find(key);
    return NlohmannView(it != j_->end() ? &*it : nullptr);
  }
  bool has(std::string_view key) const { return (*this)[key].exists(); }
  bool exists() const { return j_ != nullptr; }
  bool is_string() const { return j_ != nullptr && j_->is_string(); }
  bool is_array() const { return j_ != nullptr && j_->is_array(); }
  bool is_object() const { return j_ != nullptr && j_->is_object(); }
  bool is_true() const {
    return j_ != nullptr && j_->is_boolean() && j_->get<bool>();
  }
  std::string_view str() const {
    return is_string() ? std::string_view(j_->get_ref<const std::string&>())
                       : std::string_view();
  }
  template <typename F>
  void each(F f) const {
    if (j_ == nullptr) return;
    for (const auto& v : *j_) f(NlohmannView(&v));
  }

 private:
  const nlohmann::json* j_;
};

class SimdjsonView {
 public:
  SimdjsonView() = default;
  explicit SimdjsonView(simdjson::dom::element e) : e_(e), exists_(true) {}

  SimdjsonView operator[](std::string_view key) const {
    SimdjsonView found;
    if (!is_object()) return found;
    const simdjson::dom::object object(e_);
    for (auto [k, v] : object) {
      if (k == key) found = SimdjsonView(v);  // the last one wins
    }
    return found;
  }
  bool has(std::string_view key) const { return (*this)[key].exists(); }
  bool exists() const { return exists_; }
  bool is_string() const { return exists_ && e_.is_string(); }
  bool is_array() const { return exists_ && e_.is_array(); }
  bool is_object() const { return exists_ && e_.is_object(); }
  bool is_true() const { return exists_ && e_.is_bool() && bool(e_); }
  std::string_view str() const {
    return is_string() ? std::string_view(e_) : std::string_view();
  }
  template <typename F>
  void each(F f) const {
    if (!exists_ || e_.is_null()) return;
    if (e_.is_array()) {
      const simdjson::dom::array array(e_);
      for (simdjson::dom::element v : array) f(SimdjsonView(v));
    } else if (e_.is_object()) {
      // nlohmann visits an object's values in key order, each key once
      // (its last value); evolve() never depends on the order of an
      // object's values, but does on each key being seen once.
      std::vector<std::string_view> seen;
      const simdjson::dom::object object(e_);
      for (auto [k, v] : object) seen.push_back(k);
      std::sort(seen.begin(), seen.end());
      seen.erase(std::unique(seen.begin(), seen.end()), seen.end());
      for (std::string_view k : seen) f((*this)[k]);
    } else {
      f(*this);
    }
  }

 private:
  simdjson::dom::element e_;
  bool exists_ = false;
};

}  // namespace caseledger::domain::internal
