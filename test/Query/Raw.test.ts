import { describe, expect, it } from "@effect/vitest"
import { Either, Schema } from "effect"
import * as Dialect from "../../src/Query/Dialect.js"
import * as Raw from "../../src/Query/Raw.js"
import { compileError, expectSql, portable } from "../support/compile.js"

const User = Schema.Struct({ id: Schema.Number, email: Schema.String }).annotations({ identifier: "User" })

describe("Raw SQL binds every value as a parameter", () => {
  it("? placeholders become $n on PostgreSQL", () => {
    expectSql(
      Raw.query(User, "SELECT * FROM users WHERE age > ? AND email = ?", [18, "a@b.c"]),
      portable("SELECT * FROM users WHERE age > ? AND email = ?", [18, "a@b.c"])
    )
  })

  it("a placeholder count that does not match the arguments is a QueryBuildError", () => {
    expect(compileError(Raw.query(User, "SELECT * FROM t WHERE a = ? AND b = ?", [1]))).toMatchObject({
      _tag: "QueryBuildError"
    })
    expect(compileError(Raw.query("DELETE FROM t", [1]))).toMatchObject({ _tag: "QueryBuildError" })
  })

  it("a tagged template binds each interpolated value; a literal ? in its text stays text", () => {
    const email = "x' OR '1'='1"
    expectSql(Raw.sql(User)`SELECT * FROM "user" WHERE email = ${email} AND note <> '?' AND age > ${3}`, {
      mysql: [`SELECT * FROM "user" WHERE email = ? AND note <> '?' AND age > ?`, [email, 3]],
      pg: [`SELECT * FROM "user" WHERE email = $1 AND note <> '?' AND age > $2`, [email, 3]],
      sqlite: [`SELECT * FROM "user" WHERE email = ? AND note <> '?' AND age > ?`, [email, 3]]
    })
  })

  it("identifiers are quoted by the dialect, never bound", () => {
    const table = 'we"ird`name'
    expectSql(Raw.sql`DELETE FROM ${Raw.identifier(table)} WHERE id = ${1}`, {
      mysql: ['DELETE FROM `we"ird``name` WHERE id = ?', [1]],
      pg: [`DELETE FROM "we""ird\`name" WHERE id = $1`, [1]],
      sqlite: [`DELETE FROM "we""ird\`name" WHERE id = ?`, [1]]
    })
  })

  it("values go through the dialect's binding (SQLite takes booleans as 0/1 and dates as text)", () => {
    const at = new Date(Date.UTC(2024, 0, 1))
    const statement = Either.getOrThrow(Raw.query("SELECT ?, ?", [true, at]).compile(Dialect.sqlite))
    expect(statement.params).toEqual([1, at.toISOString()])
    expect(Either.getOrThrow(Raw.query("SELECT ?, ?", [true, at]).compile(Dialect.pg)).params).toEqual([
      true,
      at
    ])
  })
})
