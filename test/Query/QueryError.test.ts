import * as SqlClient from "@effect/sql/SqlClient"
import { describe, expect, it, layer } from "@effect/vitest"
import { Cause, Effect, Layer } from "effect"
import { describeRaw } from "../../src/Query/Description.js"
import * as Executor from "../../src/Query/Executor.js"
import * as QueryError from "../../src/Query/QueryError.js"
import { testDatabases, uniqueName } from "../support/databases.js"

describe("classify", () => {
  it.each([
    [{ errno: 1062, code: "ER_DUP_ENTRY" }, "unique"],
    [{ errno: 1452 }, "foreign_key"],
    [{ errno: 1048 }, "not_null"],
    [{ errno: 1213 }, "deadlock"],
    [{ errno: 1205 }, "lock_timeout"],
    [{ errno: 1064 }, "syntax"],
    [{ code: "23505" }, "unique"],
    [{ code: "23503" }, "foreign_key"],
    [{ code: "23502" }, "not_null"],
    [{ code: "40P01" }, "deadlock"],
    [{ code: "55P03" }, "lock_timeout"],
    [{ code: "57P01" }, "connection"],
    [{ code: "08006" }, "connection"],
    [{ code: "SQLITE_CONSTRAINT_UNIQUE" }, "unique"],
    [{ code: "SQLITE_CONSTRAINT_NOTNULL" }, "not_null"],
    [{ code: "SQLITE_BUSY" }, "lock_timeout"],
    [{ code: "ECONNREFUSED" }, "connection"],
    [new Error("Can't add new command when connection is in closed state"), "connection"],
    [new Error("Client has encountered a connection error and is not queryable"), "connection"],
    [{ code: "XX000" }, "other"],
    [new Error("boom"), "other"]
  ] as const)("%o → %s", (driverError, reason) => {
    expect(QueryError.classify({ _tag: "SqlError", cause: driverError })).toBe(reason)
  })

  it("keeps the statement and the unredacted cause; the rendered error and its cause are redacted", () => {
    const cause = { cause: { errno: 1062, message: "Duplicate entry 'ann@x.org' for key 'email'" } }
    const error = QueryError.fromDriver(cause, "INSERT ...")
    expect(error).toMatchObject({
      _tag: "DatabaseError",
      reason: "unique",
      detail: "Duplicate entry '<redacted>' for key 'email'",
      sql: "INSERT ..."
    })
    expect(error.unredactedCause).toBe(cause)
    expect(error.cause).toMatchObject({
      errno: 1062,
      message: "Duplicate entry '<redacted>' for key 'email'"
    })
    for (const rendered of [
      error.message,
      String(error),
      JSON.stringify(error),
      Cause.pretty(Cause.fail(error), { renderErrorCause: true })
    ]) {
      expect(rendered).not.toContain("ann@x.org")
    }
  })
})

const table = uniqueName("errors")

for (const db of testDatabases()) {
  const fixtures = Layer.scopedDiscard(
    Effect.acquireRelease(
      Effect.flatMap(SqlClient.SqlClient, (sql) =>
        sql.unsafe(`CREATE TABLE ${table} (id INT PRIMARY KEY, name VARCHAR(20) NOT NULL)`)
      ),
      () => Effect.orDie(Effect.flatMap(SqlClient.SqlClient, (sql) => sql.unsafe(`DROP TABLE ${table}`)))
    )
  )
  const run = (sql: string) =>
    Effect.flatMap(Executor.Executor, (ex) =>
      ex.execute({
        type: "RAW",
        model: undefined,
        table,
        statement: { sql, params: [] },
        description: describeRaw(sql, ex.session.dialect),
        expects: "exec",
        session: ex.session
      })
    )

  describe.skipIf(!db.available)(`${db.label}: DatabaseError reasons from the real driver`, () => {
    layer(Layer.provideMerge(fixtures, db.layer))((it) => {
      it.effect("unique, not_null and syntax", () =>
        Effect.gen(function* () {
          yield* run(`INSERT INTO ${table} (id, name) VALUES (1, 'a')`)
          expect(yield* Effect.flip(run(`INSERT INTO ${table} (id, name) VALUES (1, 'b')`))).toMatchObject({
            _tag: "DatabaseError",
            reason: "unique"
          })
          expect(yield* Effect.flip(run(`INSERT INTO ${table} (id, name) VALUES (2, NULL)`))).toMatchObject({
            reason: "not_null"
          })
          expect(yield* Effect.flip(run(`SELEC * FROM ${table}`))).toMatchObject({ reason: "syntax" })
        })
      )
    })
  })
}
