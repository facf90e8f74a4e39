import { describe, expect, it } from "@effect/vitest"
import { Either, Schema } from "effect"
import * as Delete from "../../src/Query/Delete.js"
import * as Dialect from "../../src/Query/Dialect.js"
import * as Expr from "../../src/Query/Expr.js"
import * as Select from "../../src/Query/Select.js"
import { compileError, expectSql, portable } from "../support/compile.js"

class User extends Schema.Class<User>("User")({
  id: Schema.Number,
  email: Schema.String,
  age: Schema.Number
}) {}
class Post extends Schema.Class<Post>("Post")({ id: Schema.Number, userId: Schema.Number }) {}

describe("Delete compiles to exact SQL and parameters on every dialect", () => {
  it("with a where", () => {
    expectSql(
      Delete.from(User).where((u) => u.age.lt(18)),
      portable(`DELETE FROM "user" WHERE "age" < ?`, [18])
    )
  })

  it("several where calls are joined with AND; subqueries bind in order", () => {
    expectSql(
      Delete.from(User)
        .where((u) => u.age.gt(1))
        .where((u) =>
          u.id.notIn(
            Select.from(Post)
              .columns("userId")
              .where((p) => p.id.gt(2))
          )
        ),
      portable(
        `DELETE FROM "user" WHERE "age" > ? AND "id" NOT IN (SELECT "user_id" FROM "post" WHERE "id" > ?)`,
        [1, 2]
      )
    )
  })

  it("without WHERE it deletes every row (refusing that is the SafeDml middleware's job)", () => {
    expectSql(Delete.from(User), portable(`DELETE FROM "user"`, []))
  })

  it("returning every field or named ones, on every dialect (MariaDB 10.5+ at run time)", () => {
    expectSql(
      Delete.from(User).where(Expr.columns(User)("id").eq(3)).returning(),
      portable(`DELETE FROM "user" WHERE "id" = ? RETURNING "id", "email", "age"`, [3])
    )
    expect(Either.getOrThrow(Delete.from(User).returning("email").compile(Dialect.mysql)).sql).toBe(
      "DELETE FROM `user` RETURNING `email`"
    )
  })

  it("a field the entity does not have is an UnknownFieldError", () => {
    const typo = Delete.from(User).where(Expr.columns(User).field("mail").eq("x"))
    expect(compileError(typo)).toMatchObject({ _tag: "UnknownFieldError", field: "mail" })
  })
})
