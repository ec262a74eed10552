#include "caseledger/domain/policy.h"

#include <algorithm>
#include <map>

namespace caseledger::domain {
namespace {

constexpr Role kR = Role::kReporter, kD = Role::kDsl, kA = Role::kAltDsl,
               kV = Role::kReviewer, kI = Role::kIntegration, kM = Role::kAdmin;

// The command table: who may issue each command. Leads (DSL and alternative
// DSL) run cases; reviewers run governance; anyone in the organisation may
// report; integrations and admins never touch case contents.
const std::vector<std::pair<std::string, std::vector<Role>>>& CommandTable() {
  static const std::vector<std::pair<std::string, std::vector<Role>>> kTable = {
      {"report", {kR, kD, kA, kV}},
      {"assign-lead", {kD, kA}},
      {"reassign-lead", {kD, kA}},
      {"triage", {kD, kA}},
      {"record-outcomes", {kD, kA}},
      {"agree-participation", {kD, kA}},
      {"assess-capacity", {kD, kA}},
      {"record-consent", {kD, kA}},
      {"override-consent", {kD, kA}},
      {"share-information", {kD, kA}},
      {"inform-person", {kD, kA}},
      {"assess-risk", {kD, kA}},
      {"agree-safety-plan", {kD, kA}},
      {"raise-escalation", {kD, kA}},
      {"acknowledge-escalation", {kD, kA}},
      {"record-escalation-outcome", {kD, kA}},
      {"schedule-review", {kD, kA, kV}},
      {"complete-review", {kD, kA, kV}},
      {"close", {kD, kA}},
      {"reopen", {kD, kA}},
      {"amend", {kD, kA}},
      {"record-learning", {kD, kA, kV}},
      {"screen-learning", {kV}},
      {"assign-action", {kD, kA, kV}},
      {"complete-action", {kD, kA, kV}},
      {"sample-for-audit", {kV}},
      {"record-audit-finding", {kV}},
      {"schedule-reaudit", {kV}},
      // Erasure takes two people: a lead asks, governance decides. Legal
      // holds are the DSL's or the administrator's (who answers to the
      // organisation's legal advisers); the retention sweep runs as admin.
      {"request-erasure", {kD, kA}},
      {"approve-erasure", {kV, kM}},
      {"refuse-erasure", {kV, kM}},
      {"place-legal-hold", {kD, kM}},
      {"lift-legal-hold", {kD, kM}},
      {"apply-retention", {kM}},
  };
  return kTable;
}

const std::map<Read, std::vector<Role>>& ReadTable() {
  static const std::map<Read, std::vector<Role>> kTable = {
      // A reporter lists and reads only the cases they reported (the API
      // filters; CanRead... by case is the service's job).
      {Read::kCaseList, {kR, kD, kA, kV}},
      {Read::kCaseState, {kR, kD, kA, kV}},
      {Read::kCaseHistory, {kD, kA, kV}},
      {Read::kCaseReplay, {kD, kA, kV}},
      {Read::kCaseVerify, {kD, kA, kV, kM}},
      {Read::kCaseAccessLog, {kD, kA, kV}},
      // Subject access requests are the DSL's to answer.
      {Read::kCaseExport, {kD, kA}},
      {Read::kGovernance, {kD, kA, kV}},
      {Read::kLearningFeed, {kD, kA, kV, kI}},
      {Read::kAdmin, {kM}},
  };
  return kTable;
}

bool Contains(const std::vector<Role>& roles, Role r) {
  return std::find(roles.begin(), roles.end(), r) != roles.end();
}

}  // namespace

std::optional<Role> ParseRole(std::string_view name) {
  for (Role r : AllRoles()) {
    if (RoleName(r) == name) return r;
  }
  return std::nullopt;
}

std::string_view RoleName(Role role) {
  switch (role) {
    case Role::kReporter:
      return "reporter";
    case Role::kDsl:
      return "dsl";
    case Role::kAltDsl:
      return "alt_dsl";
    case Role::kReviewer:
      return "reviewer";
    case Role::kIntegration:
      return "integration";
    case Role::kAdmin:
      return "admin";
  }
  return "unknown";
}

std::vector<Role> AllRoles() { return {kR, kD, kA, kV, kI, kM}; }

bool MayCommand(Role role, std::string_view command) {
  for (const auto& [name, roles] : CommandTable()) {
    if (name == command) return Contains(roles, role);
  }
  return false;
}

bool MayRead(Role role, Read read) {
  auto it = ReadTable().find(read);
  return it != ReadTable().end() && Contains(it->second, role);
}

const std::vector<std::string>& CommandNames() {
  static const std::vector<std::string> kNames = [] {
    std::vector<std::string> n;
    for (const auto& [name, roles] : CommandTable()) n.push_back(name);
    return n;
  }();
  return kNames;
}

}  // namespace caseledger::domain
