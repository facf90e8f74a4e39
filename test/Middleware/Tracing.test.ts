import * as NodeSdk from "@effect/opentelemetry/NodeSdk"
import * as SqlClient from "@effect/sql/SqlClient"
import { assert, describe, layer } from "@effect/vitest"
import { SpanKind } from "@opentelemetry/api"
import { InMemorySpanExporter, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base"
import { Effect, Exit, Layer, Schema, Stream } from "effect"
import * as Database from "../../src/Layers/Database.js"
import * as Tracing from "../../src/Middleware/Tracing.js"
import * as Executor from "../../src/Query/Executor.js"
import * as Select from "../../src/Query/Select.js"
import * as Update from "../../src/Query/Update.js"
import * as Entity from "../../src/Schema/Entity.js"
import * as Tx from "../../src/Tx/Tx.js"
import { testDatabases, uniqueName } from "../support/databases.js"
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

const otelTable = uniqueName("tracing_otel")

class Note extends Schema.Class<Note>("Note")(
  { id: Schema.Number, body: Schema.String },
  Entity.table(otelTable)
) {}

/** Runs `effect` under OpenTelemetry's SDK with an in-memory exporter; returns the finished spans. */
const exported = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.gen(function* () {
    const exporter = new InMemorySpanExporter()
    const sdk = NodeSdk.layer(() => ({
      resource: { serviceName: "effect-dal-test" },
      spanProcessor: new SimpleSpanProcessor(exporter)
    }))
    // Read before the SDK shuts down: shutting the exporter down empties it.
    return yield* Effect.provide(
      Effect.map(effect, (result) => ({ result, spans: [...exporter.getFinishedSpans()] })),
      sdk
    )
  })

for (const db of testDatabases()) {
  const notes = Layer.scopedDiscard(
    Effect.acquireRelease(
      Effect.flatMap(SqlClient.SqlClient, (sql) =>
        Effect.zipRight(
          sql.unsafe(`CREATE TABLE ${otelTable} (id INT PRIMARY KEY, body VARCHAR(50) NOT NULL)`),
          sql.unsafe(`INSERT INTO ${otelTable} VALUES (1, 'a'), (2, 'b')`)
        )
      ),
      () => Effect.orDie(Effect.flatMap(SqlClient.SqlClient, (sql) => sql.unsafe(`DROP TABLE ${otelTable}`)))
    )
  )
  const system = db.dialect === "pg" ? "postgresql" : db.dialect

  describe.skipIf(!db.available)(`${db.label}: Tracing through OpenTelemetry`, () => {
    layer(Layer.provideMerge(Tracing.layer(), Layer.provideMerge(notes, db.layer)), {
      timeout: "30 seconds"
    })((it) => {
      it.effect(
        "one client span per query (get, getMulti, exec, stream), with the database conventions",
        () =>
          Effect.gen(function* () {
            const { spans } = yield* exported(
              Effect.gen(function* () {
                yield* Select.from(Note)
                  .where((n) => n.id.eq(1))
                  .get()
                yield* Select.from(Note).getMulti()
                yield* Update.table(Note)
                  .set({ body: "c" })
                  .where((n) => n.id.eq(2))
                  .exec()
                yield* Stream.runDrain(Select.from(Note).stream())
              }).pipe(Effect.withSpan("caller"))
            )
            const queries = spans.filter((s) => s.name !== "caller")
            assert.deepStrictEqual(
              queries.map((s) => s.name),
              [`SELECT ${otelTable}`, `SELECT ${otelTable}`, `UPDATE ${otelTable}`, `SELECT ${otelTable}`]
            )
            const caller = spans.find((s) => s.name === "caller")
            for (const span of queries) {
              assert.strictEqual(span.kind, SpanKind.CLIENT)
              assert.strictEqual(span.parentSpanContext?.spanId, caller?.spanContext().spanId)
              assert.strictEqual(span.attributes["db.system.name"], system)
              assert.strictEqual(span.attributes["db.collection.name"], otelTable)
              assert.include(String(span.attributes["db.query.text"]), otelTable)
              assert.isDefined(span.attributes["db.namespace"])
              assert.isDefined(span.attributes["db.operation.name"])
              if (db.dialect !== "sqlite") {
                assert.strictEqual(span.attributes["server.address"], "127.0.0.1")
                assert.isNumber(span.attributes["server.port"])
              }
            }
            assert.strictEqual(queries[2]?.attributes["db.operation.name"], "UPDATE")
          })
      )
    })
  })
}
