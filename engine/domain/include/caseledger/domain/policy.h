// Who may do what: the policy table the API enforces for every request.
//
// Roles are those of shared/domain.md. A command may be allowed to a role
// and still be refused for a particular case by decide() (a barred DSL, a
// governance review by a non-reviewer); reads of a case are further limited
// by CanReadCase().
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace caseledger::domain {

enum class Role { kReporter, kDsl, kAltDsl, kReviewer, kIntegration, kAdmin };

std::optional<Role> ParseRole(std::string_view name);
std::string_view RoleName(Role role);
std::vector<Role> AllRoles();

struct Actor {
  std::string id;
  Role role = Role::kReporter;
};

// The reads the API offers, by what they reveal.
enum class Read {
  kCaseList,       // list of cases (a reporter sees only their own)
  kCaseState,      // one case's current state
  kCaseHistory,    // every event with actor, time, rationale and hashes
  kCaseReplay,     // the case as it stood at a version or time
  kCaseVerify,     // the chain check of one case (reveals no contents)
  kCaseAccessLog,  // who read the case, when
  kCaseExport,     // subject access: everything held, to review and redact
  kGovernance,     // oversight views and the audit sample
  kLearningFeed,   // the anonymised learning feed and its summary
  kAdmin,          // tokens, store verification, rebuilds
};

// Whether `role` may issue command `command` at all (case-independent).
// False for an unknown command.
bool MayCommand(Role role, std::string_view command);

// Whether `role` may make read `read` at all.
bool MayRead(Role role, Read read);

// Every command name the domain knows, in a stable order.
const std::vector<std::string>& CommandNames();

}  // namespace caseledger::domain
