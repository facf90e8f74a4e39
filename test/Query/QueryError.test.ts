import * as SqlClient from "@effect/sql/SqlClient"
import { describe, expect, it, layer } from "@effect/vitest"
import { Effect, Layer } from "effect"
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
    [{ errno: 1020, code: "ER_CHECKREAD" }, "serialization"],
    [{ errno: 1064 }, "syntax"],
    [{ code: "23505" }, "unique"],
    [{ code: "23503" }, "foreign_key"],
    [{ code: "23502" }, "not_null"],
    [{ code: "40P01" }, "deadlock"],
    [{ code: "55P03" }, "lock_timeout"],
    [{ code: "40001" }, "serialization"],
    [{ code: "57P01" }, "connection"],
    [{ code: "08006" }, "connection"],
    [{ code: "SQLITE_CONSTRAINT_UNIQUE" }, "unique"],
    [{ code: "SQLITE_CONSTRAINT_NOTNULL" }, "not_null"],
    [{ code: "SQLITE_BUSY" }, "lock_timeout"],
    [{ code: "SQLITE_BUSY_SNAPSHOT" }, "serialization"],
    [{ code: "ECONNREFUSED" }, "connection"],
    [new Error("Can't add new command when connection is in closed state"), "connection"],
    [new Error("Client has encountered a connection error and is not queryable"), "connection"],
    [{ code: "XX000" }, "other"],
    [new Error("boom"), "other"]
  ] as const)("%o → %s", (driverError, reason) => {
    expect(QueryError.classify({ _tag: "SqlError", cause: driverError })).toBe(reason)
  })

  it("keeps the cause and the statement", () => {
    const cause = { cause: { errno: 1062, message: "Duplicate entry" } }
    const error = QueryError.fromDriver(cause, "INSERT ...")
    expect(error).toMatchObject({ reason: "unique", detail: "Duplicate entry", sql: "INSERT ...", cause })
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
        builder: sql,
        expects: "exec",
        session: ex.session
      })
    )

  describe.skipIf(!db.available)(`${db.label}: SqlError reasons from the real driver`, () => {
    layer(Layer.provideMerge(fixtures, db.layer))((it) => {
      it.effect("unique, not_null and syntax", () =>
        Effect.gen(function* () {
          yield* run(`INSERT INTO ${table} (id, name) VALUES (1, 'a')`)
          expect(yield* Effect.flip(run(`INSERT INTO ${table} (id, name) VALUES (1, 'b')`))).toMatchObject({
            _tag: "SqlError",
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
