import * as SqlClient from "@effect/sql/SqlClient"
import { assert, describe, layer } from "@effect/vitest"
import { Effect, Exit, Layer, Schema } from "effect"
import * as Database from "../../src/Layers/Database.js"
import * as Tracing from "../../src/Middleware/Tracing.js"
import * as Executor from "../../src/Query/Executor.js"
import * as Select from "../../src/Query/Select.js"
import * as Entity from "../../src/Schema/Entity.js"
import * as Tx from "../../src/Tx/Tx.js"
import { uniqueName } from "../support/databases.js"
import { execute, parentName, recordingTracer, session, statement } from "./support.js"

const table = uniqueName("tracing_users")

class User extends Schema.Class<User>("User")(
  { id: Schema.Number, name: Schema.String },
  Entity.table(table)
) {}

const fixtures = Layer.effectDiscard(
  Effect.flatMap(SqlClient.SqlClient, (sql) =>
    sql.unsafe(`CREATE TABLE ${table} (id INTEGER PRIMARY KEY, name TEXT NOT NULL)`)
  )
)

const database = Layer.provideMerge(
  Tracing.layer(),
  Layer.provideMerge(fixtures, Database.layer({ url: "sqlite::memory:" }))
)

describe("Tracing", () => {
  layer(database)((it) => {
    it.effect(
      "one client span per query named TYPE table, with the database attributes, under the caller's span",
      () =>
        Effect.gen(function* () {
          const { spans, tracer } = recordingTracer()
          yield* Select.from(User)
            .where((u) => u.id.eq(1))
            .getMulti()
            .pipe(Effect.withSpan("caller"), Effect.withTracer(tracer))
          const query = spans.filter((s) => s.name === `SELECT ${table}`)
          assert.strictEqual(query.length, 1)
          const [span] = query
          if (span === undefined) return
          assert.strictEqual(span.kind, "client")
          assert.strictEqual(parentName(span), "caller")
          // The query's only span: @effect/sql's own `sql.execute` span is not made.
          assert.deepStrictEqual(
            spans.map((s) => s.name),
            ["caller", `SELECT ${table}`]
          )
          assert.deepStrictEqual(Object.fromEntries(span.attributes), {
            "db.namespace": ":memory:",
            "db.system.name": "sqlite",
            "db.operation.name": "SELECT",
            "db.collection.name": table,
            "db.query.text": `SELECT "id", "name" FROM "${table}" WHERE "id" = ?`
          })
          assert.isTrue(span.exit !== undefined && Exit.isSuccess(span.exit))
        })
    )

    it.effect("a failure ends the span with the failing exit and sets error.type", () =>
      Effect.gen(function* () {
        const { spans, tracer } = recordingTracer()
        const s = yield* session
        yield* execute(statement(s, "SELECT * FROM missing_table")).pipe(
          Effect.withTracer(tracer),
          Effect.flip
        )
        const [span] = spans.filter((x) => x.name === "RAW")
        assert.strictEqual(span?.attributes.get("error.type"), "DatabaseError")
        assert.strictEqual(span?.attributes.get("db.operation.name"), "SELECT")
        assert.isTrue(span?.exit !== undefined && Exit.isFailure(span.exit))
      })
    )

    it.effect(
      "inside a transaction the span nests under the transaction's span and names the transaction",
      () =>
        Effect.gen(function* () {
          const { spans, tracer } = recordingTracer()
          yield* Tx.run(Select.from(User).getMulti()).pipe(
            Effect.withSpan("caller"),
            Effect.withTracer(tracer)
          )
          const [span] = spans.filter((s) => s.name === `SELECT ${table}`)
          const [txSpan] = spans.filter((s) => s.name === "db.transaction")
          assert.strictEqual(span !== undefined ? parentName(span) : undefined, "db.transaction")
          assert.strictEqual(txSpan !== undefined ? parentName(txSpan) : undefined, "caller")
          assert.isDefined(txSpan?.attributes.get(Tracing.transactionAttribute))
          assert.strictEqual(
            span?.attributes.get(Tracing.transactionAttribute),
            txSpan?.attributes.get(Tracing.transactionAttribute)
          )
        })
    )

    it.effect("db.system.name can be given", () =>
      Effect.gen(function* () {
        const { spans, tracer } = recordingTracer()
        yield* Executor.withMiddleware(Tracing.make({ systemName: "other-sql" }))(
          Select.from(User).getMulti()
        ).pipe(Effect.withTracer(tracer))
        const names = spans
          .filter((s) => s.name === `SELECT ${table}`)
          .map((s) => s.attributes.get("db.system.name"))
        // The per-effect middleware is outside the installed one: two spans, outer first.
        assert.deepStrictEqual(names, ["other-sql", "sqlite"])
      })
    )
  })
})
