#include "caseledger/status.h"

#include <gtest/gtest.h>

namespace caseledger {
namespace {

StatusOr<int> Half(int x) {
  if (x % 2 != 0) return Status::InvalidArgument("odd");
  return x / 2;
}

Status Quarter(int x, int* out) {
  ASSIGN_OR_RETURN(int h, Half(x));
  ASSIGN_OR_RETURN(*out, Half(h));
  return Status::OK();
}

Status FailsThrough() {
  RETURN_IF_ERROR(Status::NotFound("inner"));
  return Status::OK();
}

TEST(StatusTest, OkIsOkAndPrintsOk) {
  Status s;
  EXPECT_TRUE(s.ok());
  EXPECT_EQ(s.ToString(), "OK");
}

TEST(StatusTest, WrongExpectedVersionCarriesTheActualVersion) {
  Status s = Status::WrongExpectedVersion(7, "case x is at 7");
  EXPECT_TRUE(s.IsAborted());
  EXPECT_EQ(s.current_version(), 7u);
  EXPECT_EQ(s.ToString(), "Aborted: case x is at 7");
  EXPECT_FALSE(Status::IOError("x").current_version().has_value());
}

TEST(StatusTest, MacrosPropagateTheFirstError) {
  int out = 0;
  EXPECT_TRUE(Quarter(8, &out).ok());
  EXPECT_EQ(out, 2);
  EXPECT_TRUE(Quarter(6, &out).IsInvalidArgument());
  EXPECT_TRUE(FailsThrough().IsNotFound());
}

TEST(StatusTest, StatusOrOfErrorReportsTheError) {
  StatusOr<int> r = Half(3);
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "odd");
  StatusOr<int> good = Half(4);
  EXPECT_TRUE(good.status().ok());
  EXPECT_EQ(*good, 2);
}

}  // namespace
}  // namespace caseledger
