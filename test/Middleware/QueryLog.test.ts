import * as SqlClient from "@effect/sql/SqlClient"
import { assert, describe, layer } from "@effect/vitest"
import { Duration, Effect, Fiber, Layer, Ref, Schema, TestClock } from "effect"
import * as Database from "../../src/Layers/Database.js"
import * as QueryLog from "../../src/Middleware/QueryLog.js"
import * as Executor from "../../src/Query/Executor.js"
import * as Expr from "../../src/Query/Expr.js"
import * as Insert from "../../src/Query/Insert.js"
import * as Raw from "../../src/Query/Raw.js"
import * as Select from "../../src/Query/Select.js"
import * as Update from "../../src/Query/Update.js"
import * as Entity from "../../src/Schema/Entity.js"
import * as Tx from "../../src/Tx/Tx.js"
import { uniqueName } from "../support/databases.js"
import { captureLogs, delay, execute, session, statement } from "./support.js"

const table = uniqueName("querylog_accounts")

class Account extends Schema.Class<Account>("Account")(
  {
    id: Schema.Number,
    login: Schema.String,
    password: Schema.String.pipe(Entity.sensitive)
  },
  Entity.table(table)
) {}

const fixtures = Layer.effectDiscard(
  Effect.flatMap(SqlClient.SqlClient, (sql) =>
    Effect.zipRight(
      sql.unsafe(
        `CREATE TABLE ${table} (id INTEGER PRIMARY KEY, login TEXT NOT NULL, password TEXT NOT NULL)`
      ),
      sql.unsafe(`INSERT INTO ${table} VALUES (1, 'ann', 'hunter2'), (2, 'bob', 'swordfish')`)
    )
  )
)

const database = Layer.provideMerge(fixtures, Database.layer({ url: "sqlite::memory:" }))

/** Runs `effect` through QueryLog with a sink that keeps every entry. */
const withEntries = <A, E, R>(effect: Effect.Effect<A, E, R>, options: QueryLog.Options = {}) =>
  Effect.gen(function* () {
    const entries = yield* Ref.make<ReadonlyArray<QueryLog.Entry>>([])
    const sink = (entry: QueryLog.Entry) => Ref.update(entries, (all) => [...all, entry])
    const result = yield* Executor.withMiddleware(QueryLog.make({ ...options, sink }))(effect)
    return { result, entries: yield* Ref.get(entries) }
  })

describe("QueryLog", () => {
  layer(database)((it) => {
    it.effect(
      "the default sink logs the SQL with parameters, duration and rows through Effect's logger",
      () =>
        Effect.gen(function* () {
          const capture = captureLogs()
          const fiber = yield* Effect.fork(
            Effect.provide(
              Executor.withMiddleware(QueryLog.make())(
                Select.from(Account)
                  .where((a) => a.login.eq("ann"))
                  .getMulti()
              ),
              Layer.merge(capture.layer, Executor.layerMiddleware(delay("25 millis")))
            )
          )
          yield* TestClock.adjust("25 millis")
          yield* Fiber.join(fiber)
          assert.deepStrictEqual(capture.lines, [
            {
              level: "INFO",
              message: `SELECT "id", "login", "password" FROM "${table}" WHERE "login" = ?`,
              annotations: {
                "query.type": "SELECT",
                "query.table": table,
                "query.params": ["ann"],
                "query.durationMillis": 25,
                "query.rows": 1
              }
            }
          ])
        })
    )

    it.effect("values bound to sensitive fields are redacted; others are not", () =>
      Effect.gen(function* () {
        const { entries } = yield* withEntries(
          Select.from(Account)
            .where((a) => a.login.eq("ann"))
            .where((a) => a.password.in(["hunter2", "swordfish"]))
            .limit(5)
            .getMulti()
        )
        // LIMIT's value is bound to no field in a statement on an entity with sensitive fields: redacted too.
        assert.deepStrictEqual(entries[0]?.params, [
          "ann",
          QueryLog.redacted,
          QueryLog.redacted,
          QueryLog.redacted
        ])
        assert.strictEqual(entries[0]?.rows, 1)
      })
    )

    it.effect("redaction can be turned off", () =>
      Effect.gen(function* () {
        const { entries } = yield* withEntries(
          Select.from(Account)
            .where((a) => a.password.eq("hunter2"))
            .getMulti(),
          { redactSensitive: false }
        )
        assert.deepStrictEqual(entries[0]?.params, ["hunter2"])
      })
    )

    it.effect(
      "values bound to no field are redacted in a statement touching an entity with sensitive fields (raw text, raw fragments)",
      () =>
        Effect.gen(function* () {
          const viaSchema = yield* withEntries(
            Raw.query(Account, `SELECT * FROM ${table} WHERE password = ? AND id = ?`, [
              "hunter2",
              1
            ]).getMulti()
          )
          assert.deepStrictEqual(viaSchema.entries[0]?.params, [QueryLog.redacted, QueryLog.redacted])
          // No schema given: the text names the table of an entity with sensitive fields.
          const viaText = yield* withEntries(
            Raw.sql`SELECT id FROM /* accounts */ ${Raw.identifier(table)} WHERE password = ${"hunter2"}`.getMulti()
          )
          assert.deepStrictEqual(viaText.entries[0]?.params, [QueryLog.redacted])
          const fragment = yield* withEntries(
            Select.from(Account).where(Expr.raw("password = ?", "hunter2")).getMulti()
          )
          assert.deepStrictEqual(fragment.entries[0]?.params, [QueryLog.redacted])
          // A literal written into the text of such a statement is shown as ?.
          const literal = yield* withEntries(
            Raw.query(`SELECT id FROM ${table} WHERE password = 'hunter2' AND id > 0`).getMulti()
          )
          assert.strictEqual(literal.entries[0]?.sql, `SELECT id FROM ${table} WHERE password = ? AND id > ?`)
          const plain = yield* withEntries(Raw.query("SELECT ? AS x", ["visible"]).getMulti())
          assert.deepStrictEqual(plain.entries[0]?.params, ["visible"])
        })
    )

    it.effect(
      "writes report rows affected and redact sensitive values they set or insert; the transaction is named",
      () =>
        Effect.gen(function* () {
          const { result: txId, entries } = yield* withEntries(
            Effect.scoped(
              Effect.gen(function* () {
                const tx = yield* Tx.begin()
                yield* Update.table(Account)
                  .set({ login: "ann2", password: "new secret" })
                  .where((a) => a.id.eq(1))
                  .exec()
                yield* Insert.into(Account)
                  .values(new Account({ id: 3, login: "cid", password: "p4ss" }))
                  .exec()
                yield* tx.commit
                return tx.id
              })
            )
          )
          assert.deepStrictEqual(
            entries.map((e) => [e.type, e.params, e.rowsAffected, e.rows]),
            [
              ["UPDATE", ["ann2", QueryLog.redacted, 1], 1, undefined],
              ["INSERT", [3, "cid", QueryLog.redacted], 1, undefined]
            ]
          )
          assert.isDefined(txId)
          assert.deepStrictEqual(
            entries.map((e) => e.transaction),
            [txId, txId]
          )
        })
    )

    it.effect("a failed query is logged at Warning with its error, and still fails", () =>
      Effect.gen(function* () {
        const capture = captureLogs()
        const s = yield* session
        const error = yield* Effect.provide(
          Executor.withMiddleware(QueryLog.make())(execute(statement(s, "SELECT * FROM missing_table"))),
          capture.layer
        ).pipe(Effect.flip)
        assert.strictEqual(error._tag, "DatabaseError")
        assert.strictEqual(capture.lines.length, 1)
        assert.strictEqual(capture.lines[0]?.level, "WARN")
        assert.include(String(capture.lines[0]?.annotations["query.error"]), "no such table")
      })
    )

    it.effect("an interrupted query is reported as interrupted", () =>
      Effect.gen(function* () {
        const entries = yield* Ref.make<ReadonlyArray<QueryLog.Entry>>([])
        const sink = (entry: QueryLog.Entry) => Ref.update(entries, (all) => [...all, entry])
        const s = yield* session
        const fiber = yield* Effect.fork(
          Effect.provide(
            execute(statement(s, "SELECT 1")),
            Executor.layerMiddleware(QueryLog.make({ sink }), delay("1 hour"))
          )
        )
        yield* TestClock.adjust("1 second")
        yield* Fiber.interrupt(fiber)
        const [entry] = yield* Ref.get(entries)
        assert.isTrue(entry?.interrupted)
        assert.strictEqual(Duration.toSeconds(entry?.duration ?? Duration.zero), 1)
      })
    )
  })
})
