// What the alerting tests report, and the webhook secret they sign with.
#pragma once

#include <openssl/evp.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "caseledger/domain/policy.h"
#include "tests/support/test_support.h"

namespace caseledger::testing {

inline const domain::Actor kReporter{"user:reporter-1",
                                     domain::Role::kReporter};
inline const domain::Actor kDsl{"user:dsl-1", domain::Role::kDsl};

// What a report with every kind of personal field holds: none of it may
// appear in a notification.
inline const std::vector<std::string> kPersonal = {"Dana Example",
                                                   "Robin Sample",
                                                   "robin.sample@example.net",
                                                   "followed on the way home",
                                                   "07700 900123",
                                                   "the blue door"};

// A report naming people, with their contact details; `naming_dsl`: one of
// them, alleged to have caused harm, is the DSL kDsl.
inline nlohmann::json PersonalReport(bool urgent, bool naming_dsl) {
  nlohmann::json r = ReportBody(urgent);
  r["facts"] = "Dana Example was followed on the way home by Robin Sample.";
  r["people_involved"][0]["name"] = "Dana Example";
  r["people_involved"][0]["contact"] = {{"email", "robin.sample@example.net"},
                                        {"phone", "07700 900123"},
                                        {"address", "the blue door"}};
  if (naming_dsl) {
    r["people_involved"].push_back({{"person_ref", "person-2"},
                                    {"roles", {"person_alleged_to_cause_harm"}},
                                    {"name", "Robin Sample"},
                                    {"is_dsl", true},
                                    {"actor_id", kDsl.id}});
  }
  return r;
}

// A Standard Webhooks secret: "whsec_" + base64 of 32 bytes.
inline std::string WebhookSecret() {
  const std::string key = "a 32-byte key for the test sink!";
  std::string b64(64, '\0');
  b64.resize(static_cast<size_t>(
      EVP_EncodeBlock(reinterpret_cast<unsigned char*>(b64.data()),
                      reinterpret_cast<const unsigned char*>(key.data()),
                      static_cast<int>(key.size()))));
  return "whsec_" + b64;
}

}  // namespace caseledger::testing
