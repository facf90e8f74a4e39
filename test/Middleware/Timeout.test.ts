import * as SqlClient from "@effect/sql/SqlClient"
import { assert, describe, layer } from "@effect/vitest"
import { Effect, Either, Fiber, Layer, Schedule, TestClock } from "effect"
import * as Database from "../../src/Layers/Database.js"
import * as Timeout from "../../src/Middleware/Timeout.js"
import * as Executor from "../../src/Query/Executor.js"
import * as Tx from "../../src/Tx/Tx.js"
import { testDatabases, uniqueName } from "../support/databases.js"
import { delay, execute, recorder, session, statement } from "./support.js"

describe("Timeout (simulated slow handler, TestClock)", () => {
  layer(Database.layer({ url: "sqlite::memory:" }))((it) => {
    /** A query whose handler takes 2 seconds, under `timeout`. */
    const slow = (timeout: Executor.Middleware) =>
      Effect.gen(function* () {
        const s = yield* session
        return yield* Effect.provide(
          Effect.either(execute(statement(s, "SELECT 1 AS one", [], { table: "t" }))),
          Executor.layerMiddleware(timeout, delay("2 seconds"))
        )
      })

    const run = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
      Effect.gen(function* () {
        const fiber = yield* Effect.fork(effect)
        yield* TestClock.adjust("3 seconds")
        return yield* Fiber.join(fiber)
      })

    it.effect("a query still running at the timeout is interrupted and fails with QueryTimeoutError", () =>
      Effect.gen(function* () {
        const result = yield* run(slow(Timeout.make("1 second")))
        assert.isTrue(Either.isLeft(result))
        if (Either.isLeft(result)) {
          assert.strictEqual(result.left._tag, "QueryTimeoutError")
          assert.strictEqual(result.left.message, "Query on t timed out after 1000 ms")
        }
        assert.deepStrictEqual(
          yield* run(slow(Timeout.make("5 seconds"))),
          Either.right<Executor.QueryResult>({ _tag: "Rows", rows: [{ one: 1 }] })
        )
      })
    )

    it.effect("withTimeout replaces the middleware's duration for the queries of one effect", () =>
      Effect.gen(function* () {
        const longer = yield* run(Timeout.withTimeout("5 seconds")(slow(Timeout.make("1 second"))))
        assert.isTrue(Either.isRight(longer))
        const shorter = yield* run(Timeout.withTimeout("500 millis")(slow(Timeout.make("1 minute"))))
        assert.strictEqual(Either.isLeft(shorter) ? shorter.left._tag : "ran", "QueryTimeoutError")
      })
    )

    it.effect("SQLite statements are not rewritten", () =>
      Effect.gen(function* () {
        const inner = yield* recorder
        const s = yield* session
        yield* Executor.withMiddleware(
          Timeout.make("1 minute"),
          inner.middleware
        )(execute(statement(s, "SELECT 1")))
        assert.deepStrictEqual(yield* inner.seen, ["SELECT 1"])
      })
    )
  })
})

for (const db of testDatabases().filter((d) => d.dialect !== "sqlite")) {
  const table = uniqueName("timeout_rows")
  const fixtures = Layer.scopedDiscard(
    Effect.acquireRelease(
      Effect.flatMap(SqlClient.SqlClient, (sql) =>
        sql.unsafe(`CREATE TABLE ${table} (id INT PRIMARY KEY, name VARCHAR(20) NOT NULL)`)
      ),
      () => Effect.orDie(Effect.flatMap(SqlClient.SqlClient, (sql) => sql.unsafe(`DROP TABLE ${table}`)))
    )
  )
  const sleep = (marker: string) =>
    db.dialect === "mysql" ? `SELECT SLEEP(5) AS ${marker}` : `SELECT pg_sleep(5) AS ${marker}`

  /** How many other sessions are running a statement containing `marker`. */
  const running = (marker: string) =>
    Effect.flatMap(SqlClient.SqlClient, (sql) =>
      db.dialect === "mysql"
        ? sql.unsafe<{ n: number }>(
            "SELECT COUNT(*) AS n FROM information_schema.PROCESSLIST WHERE ID <> CONNECTION_ID() AND INFO LIKE ?",
            [`%${marker}%`]
          )
        : sql.unsafe<{ n: number }>(
            "SELECT COUNT(*)::int AS n FROM pg_stat_activity WHERE pid <> pg_backend_pid() AND state = 'active' AND query LIKE $1",
            [`%${marker}%`]
          )
    ).pipe(Effect.map((rows) => Number(rows[0]?.n)))

  /** Polls until no session runs `marker`, for at most 2 s: a statement left running would sleep 5 s. */
  const stoppedOnServer = (marker: string) =>
    running(marker).pipe(
      Effect.filterOrFail(
        (n) => n === 0,
        (n) => n
      ),
      Effect.retry(Schedule.intersect(Schedule.spaced("100 millis"), Schedule.recurs(20))),
      Effect.merge
    )

  describe.skipIf(!db.available)(`${db.label}: Timeout`, () => {
    layer(Layer.provideMerge(fixtures, db.layer), { excludeTestServices: true, timeout: "30 seconds" })(
      (it) => {
        it.effect(
          "interrupts a sleeping statement, fails with QueryTimeoutError, and the server stops running it",
          () =>
            Effect.gen(function* () {
              const marker = uniqueName("mw_timeout")
              const inner = yield* recorder
              const s = yield* session
              const error = yield* Executor.withMiddleware(
                Timeout.make("300 millis"),
                inner.middleware
              )(execute(statement(s, sleep(marker), [], { table }))).pipe(Effect.flip)
              assert.strictEqual(error._tag, "QueryTimeoutError")
              assert.strictEqual(yield* stoppedOnServer(marker), 0)
              assert.deepStrictEqual(
                yield* inner.seen,
                db.dialect === "mysql"
                  ? [`SET STATEMENT max_statement_time=0.300 FOR ${sleep(marker)}`]
                  : [sleep(marker)]
              )
            })
        )

        it.effect("inside a transaction, the timeout rolls the transaction back", () =>
          Effect.gen(function* () {
            const marker = uniqueName("mw_timeout_tx")
            const s = yield* session
            const insert = statement(s, `INSERT INTO ${table} (id, name) VALUES (1, 'kept?')`, [], {
              type: "INSERT",
              table
            })
            const error = yield* Executor.withMiddleware(Timeout.make("300 millis"))(
              Tx.run(Effect.zipRight(execute(insert), execute(statement(s, sleep(marker), [], { table }))))
            ).pipe(Effect.flip)
            assert.strictEqual(error._tag, "QueryTimeoutError")
            assert.strictEqual(yield* stoppedOnServer(marker), 0)
            const sql = yield* SqlClient.SqlClient
            assert.deepStrictEqual(yield* sql.unsafe(`SELECT id FROM ${table}`), [])
          })
        )
      }
    )
  })
}
