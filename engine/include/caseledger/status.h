// Status and StatusOr<T>: how every fallible engine call reports its result.
//
// No exception crosses the engine's public face. A call returns a Status (or a
// StatusOr<T> holding either a value or a non-OK Status); both are
// [[nodiscard]], so an unchecked result is a compile error under -Werror.
//
// The codes are a small, closed set. Each says what the caller may do next:
//
//   kOk                  success.
//   kInvalidArgument     the request itself is malformed (bad id, empty type,
//                        payload that is not JSON). Retrying it unchanged will
//                        fail again.
//   kNotFound            the named thing (event, case) does not exist.
//   kAlreadyExists       an event id is already stored with different content
//                        (or only some ids of a request are stored). The
//                        request conflicts with history; nothing was written.
//   kAborted             optimistic-concurrency conflict: the expected version
//                        did not match. current_version() holds the case's
//                        actual version; re-read and decide again.
//   kPermissionDenied    the actor may not do this (their role, or a conflict
//                        of interest with this case).
//   kFailedPrecondition  the operation is not allowed in the current state
//                        (e.g. a store opened read-only, an inconsistent head).
//   kUnavailable         the store is closing or closed; nothing was written.
//   kIOError             the storage layer failed (an fsync or I/O error).
//                        Nothing partial was written; the store refuses
//                        further appends until it recovers (fail closed).
//   kNoSpace             the storage is full. As kIOError, and the store
//                        resumes by itself once space is freed.
//   kCorruption          stored bytes do not decode or do not match their
//                        hashes.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace caseledger {

enum class StatusCode : uint8_t {
  kOk = 0,
  kInvalidArgument,
  kNotFound,
  kAlreadyExists,
  kAborted,
  kPermissionDenied,
  kFailedPrecondition,
  kUnavailable,
  kIOError,
  kCorruption,
  kNoSpace,
};

std::string_view StatusCodeName(StatusCode code);

// One field a request got wrong: its JSON pointer (RFC 6901) and why.
struct FieldError {
  std::string pointer;
  std::string detail;
  bool operator==(const FieldError&) const = default;
};

class [[nodiscard]] Status {
 public:
  Status() = default;  // OK

  static Status OK() { return Status(); }
  static Status InvalidArgument(std::string msg) {
    return Status(StatusCode::kInvalidArgument, std::move(msg));
  }
  // An InvalidArgument that names the offending field by its JSON pointer
  // (RFC 6901, "" for the whole document), for problem+json responses.
  static Status InvalidField(std::string pointer, std::string msg) {
    Status s(StatusCode::kInvalidArgument, std::move(msg));
    s.field_ = std::move(pointer);
    return s;
  }
  // An InvalidArgument naming every field that failed (at least one); the
  // first is field() and its detail the message.
  static Status InvalidFields(std::vector<FieldError> errors) {
    Status s(StatusCode::kInvalidArgument,
             errors.empty() ? std::string("invalid") : errors[0].detail);
    if (!errors.empty()) s.field_ = errors[0].pointer;
    s.fields_ = std::move(errors);
    return s;
  }
  // A FailedPrecondition caused by one field: the request is well formed,
  // but what the field says does not fit the case as it is (a reference to
  // something the case does not have, a rule its history decides).
  static Status ConflictField(std::string pointer, std::string msg) {
    Status s(StatusCode::kFailedPrecondition, std::move(msg));
    s.field_ = std::move(pointer);
    return s;
  }
  static Status NotFound(std::string msg) {
    return Status(StatusCode::kNotFound, std::move(msg));
  }
  static Status AlreadyExists(std::string msg) {
    return Status(StatusCode::kAlreadyExists, std::move(msg));
  }
  // An expected-version mismatch; `current_version` is the stream's actual
  // version at the moment of the check (0 when the stream does not exist).
  static Status WrongExpectedVersion(uint64_t current_version,
                                     std::string msg) {
    Status s(StatusCode::kAborted, std::move(msg));
    s.current_version_ = current_version;
    return s;
  }
  static Status PermissionDenied(std::string msg) {
    return Status(StatusCode::kPermissionDenied, std::move(msg));
  }
  static Status FailedPrecondition(std::string msg) {
    return Status(StatusCode::kFailedPrecondition, std::move(msg));
  }
  static Status Unavailable(std::string msg) {
    return Status(StatusCode::kUnavailable, std::move(msg));
  }
  static Status IOError(std::string msg) {
    return Status(StatusCode::kIOError, std::move(msg));
  }
  static Status Corruption(std::string msg) {
    return Status(StatusCode::kCorruption, std::move(msg));
  }
  static Status NoSpace(std::string msg) {
    return Status(StatusCode::kNoSpace, std::move(msg));
  }

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  // Set only on kAborted from an expected-version check.
  std::optional<uint64_t> current_version() const { return current_version_; }
  // Set on kInvalidArgument from InvalidField(s), and on
  // kFailedPrecondition from ConflictField.
  const std::optional<std::string>& field() const { return field_; }
  // Every field named: InvalidFields' list, else field() with the message
  // (empty when no field is named).
  std::vector<FieldError> field_errors() const {
    if (!fields_.empty()) return fields_;
    if (field_) return {FieldError{*field_, message_}};
    return {};
  }

  bool IsInvalidArgument() const {
    return code_ == StatusCode::kInvalidArgument;
  }
  bool IsNotFound() const { return code_ == StatusCode::kNotFound; }
  bool IsAlreadyExists() const { return code_ == StatusCode::kAlreadyExists; }
  bool IsAborted() const { return code_ == StatusCode::kAborted; }
  bool IsPermissionDenied() const {
    return code_ == StatusCode::kPermissionDenied;
  }
  bool IsFailedPrecondition() const {
    return code_ == StatusCode::kFailedPrecondition;
  }
  bool IsUnavailable() const { return code_ == StatusCode::kUnavailable; }
  bool IsIOError() const { return code_ == StatusCode::kIOError; }
  bool IsCorruption() const { return code_ == StatusCode::kCorruption; }
  bool IsNoSpace() const { return code_ == StatusCode::kNoSpace; }

  // "OK" or "<CodeName>: <message>".
  std::string ToString() const;

 private:
  Status(StatusCode code, std::string msg)
      : code_(code), message_(std::move(msg)) {}

  StatusCode code_ = StatusCode::kOk;
  std::string message_;
  std::optional<uint64_t> current_version_;
  std::optional<std::string> field_;
  std::vector<FieldError> fields_;
};

// Either a T or a non-OK Status. Accessing value() of a non-OK StatusOr is a
// programming error (checked by assertion in debug builds).
template <typename T>
class [[nodiscard]] StatusOr {
 public:
  StatusOr(Status status) : rep_(std::move(status)) {}  // NOLINT: implicit
  StatusOr(T value) : rep_(std::move(value)) {}         // NOLINT: implicit

  bool ok() const { return std::holds_alternative<T>(rep_); }
  const Status& status() const {
    static const Status kOkStatus;
    return ok() ? kOkStatus : std::get<Status>(rep_);
  }
  T& value() & { return std::get<T>(rep_); }
  const T& value() const& { return std::get<T>(rep_); }
  T&& value() && { return std::get<T>(std::move(rep_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

 private:
  std::variant<Status, T> rep_;
};

}  // namespace caseledger

#define CL_CONCAT_INNER_(a, b) a##b
#define CL_CONCAT_(a, b) CL_CONCAT_INNER_(a, b)

// Returns from the enclosing function if `expr` yields a non-OK Status.
#define RETURN_IF_ERROR(expr)                 \
  do {                                        \
    ::caseledger::Status cl_status_ = (expr); \
    if (!cl_status_.ok()) return cl_status_;  \
  } while (0)

// `ASSIGN_OR_RETURN(auto x, Foo());` binds the value or returns the Status.
#define ASSIGN_OR_RETURN(lhs, expr) \
  ASSIGN_OR_RETURN_IMPL_(CL_CONCAT_(cl_statusor_, __LINE__), lhs, expr)
// (tmp is a name and lhs may be a declaration: neither can be parenthesised.)
// NOLINTBEGIN(bugprone-macro-parentheses)
#define ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                           \
  if (!tmp.ok()) return tmp.status();          \
  lhs = std::move(tmp).value()
// NOLINTEND(bugprone-macro-parentheses)
