import { describe, expect, it } from "@effect/vitest"
import { Either, Schema } from "effect"
import * as Dialect from "../../src/Query/Dialect.js"
import * as Expr from "../../src/Query/Expr.js"
import * as Select from "../../src/Query/Select.js"
import * as Update from "../../src/Query/Update.js"
import * as Entity from "../../src/Schema/Entity.js"
import { compileError, expectSql, portable } from "../support/compile.js"

class User extends Schema.Class<User>("User")({
  id: Schema.Number,
  email: Schema.String,
  age: Schema.Number,
  nick: Schema.optional(Schema.String),
  seenAt: Schema.NullOr(Schema.Date),
  cached: Schema.optional(Schema.String).pipe(Entity.ignore)
}) {}

const at = new Date(Date.UTC(2024, 5, 1))

describe("Update compiles to exact SQL and parameters on every dialect", () => {
  it("values, encoded through each field's schema", () => {
    expectSql(
      Update.table(User)
        .set({ email: "a@b.c", seenAt: at })
        .where((u) => u.id.eq(1)),
      portable(`UPDATE "user" SET "email" = ?, "seen_at" = ? WHERE "id" = ?`, ["a@b.c", at.toISOString(), 1])
    )
  })

  it("expressions of the current row", () => {
    expectSql(
      Update.table(User)
        .set((u) => ({ age: u.age.add(1) }))
        .where((u) => u.age.lt(18)),
      portable(`UPDATE "user" SET "age" = ("age" + ?) WHERE "age" < ?`, [1, 18])
    )
  })

  it("null writes NULL, undefined is skipped, later sets win per field", () => {
    expectSql(
      Update.table(User).set({ age: 1, email: "x" }).set({ age: 2, seenAt: null, nick: undefined }),
      portable(`UPDATE "user" SET "email" = ?, "age" = ?, "seen_at" = ?`, ["x", 2, null])
    )
  })

  it("setPartial skips undefined, the primary key and ignored fields, and writes null as NULL", () => {
    const patch: Update.Patch<User> = { id: 5, email: "e", age: undefined, nick: null, cached: "c" }
    expectSql(
      Update.table(User)
        .setPartial(patch)
        .where((u) => u.id.eq(5)),
      portable(`UPDATE "user" SET "email" = ?, "nick" = ? WHERE "id" = ?`, ["e", null, 5])
    )
  })

  it("several where calls are joined with AND; a subquery may correlate with the table by name", () => {
    const users = Expr.table(User, "user")
    expectSql(
      Update.table(User)
        .set({ age: 0 })
        .where((u) => u.age.gt(1))
        .where(Expr.exists(Select.from(User, "o").where((o) => o.email.eq(users.email)))),
      portable(
        `UPDATE "user" SET "age" = ? WHERE "age" > ? AND EXISTS (SELECT "o"."id", "o"."email", "o"."age", "o"."nick", "o"."seen_at" FROM "user" AS "o" WHERE "o"."email" = "user"."email")`,
        [0, 1]
      )
    )
  })

  it("without WHERE it updates every row (refusing that is the SafeDml middleware's job)", () => {
    expectSql(Update.table(User).set({ age: 0 }), portable(`UPDATE "user" SET "age" = ?`, [0]))
  })

  it("returning on PostgreSQL and SQLite; MySQL and MariaDB have no UPDATE ... RETURNING", () => {
    const returning = Update.table(User)
      .set({ age: 0 })
      .where((u) => u.id.eq(1))
      .returning("id", "age")
    expect(Either.getOrThrow(returning.compile(Dialect.pg)).sql).toBe(
      `UPDATE "user" SET "age" = $1 WHERE "id" = $2 RETURNING "id", "age"`
    )
    expect(Either.getOrThrow(returning.compile(Dialect.sqlite)).sql).toBe(
      `UPDATE "user" SET "age" = ? WHERE "id" = ? RETURNING "id", "age"`
    )
    expect(compileError(returning, Dialect.mysql)).toMatchObject({ _tag: "QueryBuildError" })
  })

  it("nothing to set, and unknown fields, are typed errors", () => {
    expect(compileError(Update.table(User))).toMatchObject({ _tag: "QueryBuildError" })
    expect(compileError(Update.table(User).setPartial({ age: undefined }))).toMatchObject({
      _tag: "QueryBuildError"
    })
    const typo = Update.table(User).set({ agee: 1 } as unknown as Update.Assignments<User>)
    expect(compileError(typo)).toMatchObject({ _tag: "UnknownFieldError", field: "agee" })
  })

  it("a value that does not encode is a QueryBuildError, not a crash", () => {
    const bad = Update.table(User).set({ seenAt: new Date(Number.NaN) })
    expect(compileError(bad)).toMatchObject({ _tag: "QueryBuildError" })
  })
})
