import * as SqlClient from "@effect/sql/SqlClient"
import { describe, expect, it, layer } from "@effect/vitest"
import { Cause, Effect, Exit, Layer, Metric, Schema } from "effect"
import * as Metrics from "../../src/Middleware/Metrics.js"
import * as QueryLog from "../../src/Middleware/QueryLog.js"
import * as Tracing from "../../src/Middleware/Tracing.js"
import { describeRaw } from "../../src/Query/Description.js"
import * as Executor from "../../src/Query/Executor.js"
import * as Insert from "../../src/Query/Insert.js"
import * as QueryError from "../../src/Query/QueryError.js"
import * as Entity from "../../src/Schema/Entity.js"
import * as Tx from "../../src/Tx/Tx.js"
import { captureLogs, recordingTracer } from "../Middleware/support.js"
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
const secrets = uniqueName("errors_secrets")

class Secret extends Schema.Class<Secret>("Secret")(
  { id: Schema.Number, email: Schema.String.pipe(Entity.sensitive) },
  Entity.table(secrets)
) {}

for (const db of testDatabases()) {
  const fixtures = Layer.scopedDiscard(
    Effect.acquireRelease(
      Effect.flatMap(SqlClient.SqlClient, (sql) =>
        Effect.zipRight(
          sql.unsafe(`CREATE TABLE ${table} (id INT PRIMARY KEY, name VARCHAR(20) NOT NULL)`),
          sql.unsafe(`CREATE TABLE ${secrets} (id INT PRIMARY KEY, email VARCHAR(50) NOT NULL UNIQUE)`)
        )
      ),
      () =>
        Effect.orDie(
          Effect.flatMap(SqlClient.SqlClient, (sql) =>
            Effect.all([sql.unsafe(`DROP TABLE ${table}`), sql.unsafe(`DROP TABLE ${secrets}`)])
          )
        )
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
          // Incomplete input (SQLite: "incomplete input") is a syntax error too.
          expect(yield* Effect.flip(run(`SELECT * FROM ${table} WHERE`))).toMatchObject({ reason: "syntax" })
        })
      )

      it.effect(
        "a driver message quoting a sensitive value leaves through no exit: logs, spans, rendering",
        () =>
          Effect.gen(function* () {
            const email = `secret-${Math.random().toString(36).slice(2)}@x.org`
            yield* Insert.into(Secret)
              .values(new Secret({ id: 1, email }))
              .exec()
            const logs = captureLogs()
            const { spans, tracer } = recordingTracer()
            const entries: Array<QueryLog.Entry> = []
            const error = yield* Effect.flip(
              Insert.into(Secret)
                .values(new Secret({ id: 2, email }))
                .exec()
                .pipe(
                  Executor.withMiddleware(
                    Tracing.make(),
                    Metrics.make,
                    QueryLog.make(),
                    QueryLog.make({ sink: (e) => Effect.sync(() => void entries.push(e)) })
                  ),
                  Effect.withSpan("caller"),
                  Effect.withTracer(tracer),
                  Effect.provide(logs.layer)
                )
            )
            expect(error).toMatchObject({ _tag: "DatabaseError", reason: "unique" })
            // The program still has the driver's own error; MariaDB's message quotes the value.
            const unredacted = (error as QueryError.DatabaseError).unredactedCause
            expect(unredacted).not.toBe((error as QueryError.DatabaseError).cause)
            if (db.dialect === "mysql") {
              expect(String((unredacted as { cause: { message: string } }).cause.message)).toContain(email)
            }
            const rendered = [
              error.message,
              String(error),
              JSON.stringify(error),
              Cause.pretty(Cause.fail(error), { renderErrorCause: true }),
              JSON.stringify(logs.lines),
              logs.lines.map((l) => `${l.message} ${String(l.annotations["query.error"])}`).join("\n"),
              JSON.stringify(entries.map((e) => ({ ...e, error: e.error?.message }))),
              JSON.stringify(
                spans.map((s) => ({
                  name: s.name,
                  attributes: Object.fromEntries(s.attributes),
                  exit:
                    s.exit === undefined
                      ? undefined
                      : Exit.isFailure(s.exit)
                        ? Cause.pretty(s.exit.cause, { renderErrorCause: true })
                        : "ok"
                }))
              ),
              JSON.stringify(yield* Metric.snapshot)
            ]
            for (const text of rendered) expect(text).not.toContain(email)
            expect(entries[0]?.params).toEqual([2, QueryLog.redacted])
          })
      )

      it.effect("a statement after an explicit commit fails with the TxError as its direct cause", () =>
        Effect.gen(function* () {
          const error = yield* Effect.scoped(
            Effect.gen(function* () {
              const tx = yield* Tx.begin()
              yield* tx.commit
              return yield* Effect.flip(run(`INSERT INTO ${table} (id, name) VALUES (50, 'late')`))
            })
          )
          expect(error).toMatchObject({ _tag: "DatabaseError" })
          expect((error as QueryError.DatabaseError).cause).toMatchObject({
            _tag: "TxError",
            reason: "finished"
          })
        })
      )
    })
  })
}
