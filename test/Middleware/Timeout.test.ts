import * as SqlClient from "@effect/sql/SqlClient"
import { assert, describe, layer } from "@effect/vitest"
import { Clock, Deferred, Effect, Either, Fiber, Layer, Schedule, TestClock } from "effect"
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

/** `effect`'s result and how long it took on the real clock. */
const timed = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.gen(function* () {
    const start = yield* Clock.currentTimeMillis
    const result = yield* effect
    return [result, (yield* Clock.currentTimeMillis) - start] as const
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

/**
 * A pool of one connection: nothing is left over to cancel a statement from, so only a bound on the
 * server can stop it. The statement sleeps 10 s; its error must come long before (the deadline is
 * 300 ms; the bound checked is a generous 3 s; without the server-side bound it took 5 to 15 s), and the one connection must serve at once after.
 */
for (const db of testDatabases({ maxConnections: 1 }).filter((d) => d.dialect !== "sqlite")) {
  const table = uniqueName("timeout_one")
  const fixtures = Layer.scopedDiscard(
    Effect.acquireRelease(
      Effect.flatMap(SqlClient.SqlClient, (sql) =>
        sql.unsafe(`CREATE TABLE ${table} (id INT PRIMARY KEY, name VARCHAR(20) NOT NULL)`)
      ),
      () => Effect.orDie(Effect.flatMap(SqlClient.SqlClient, (sql) => sql.unsafe(`DROP TABLE ${table}`)))
    )
  )
  const sleep = (marker: string) =>
    db.dialect === "mysql" ? `SELECT SLEEP(10) AS ${marker}` : `SELECT pg_sleep(10) AS ${marker}`
  const timeout = Executor.withMiddleware(Timeout.make("300 millis"))

  describe.skipIf(!db.available)(`${db.label}: Timeout with a pool of one connection`, () => {
    layer(Layer.provideMerge(fixtures, db.layer), { excludeTestServices: true, timeout: "60 seconds" })(
      (it) => {
        it.effect(
          "outside a transaction: the error comes at the deadline and the connection serves at once",
          () =>
            Effect.gen(function* () {
              const s = yield* session
              const [error, millis] = yield* timed(
                timeout(execute(statement(s, sleep(uniqueName("one")), [], { table }))).pipe(Effect.flip)
              )
              assert.strictEqual(error._tag, "QueryTimeoutError")
              assert.isBelow(millis, 3000)
              const [rows, after] = yield* timed(execute(statement(s, "SELECT 1 AS one")))
              assert.deepStrictEqual(rows, { _tag: "Rows", rows: [{ one: 1 }] })
              assert.isBelow(after, 3000)
              if (db.dialect === "pg") {
                // The bound lived in the statement's own transaction: nothing leaks into the pooled session.
                const shown = yield* execute(statement(s, "SHOW statement_timeout", [], { expects: "rows" }))
                assert.deepStrictEqual(shown, { _tag: "Rows", rows: [{ statement_timeout: "0" }] })
              }
            })
        )

        it.effect(
          "inside a transaction: rolled back at the deadline, nothing kept, the connection serves at once",
          () =>
            Effect.gen(function* () {
              const s = yield* session
              const insert = statement(s, `INSERT INTO ${table} (id, name) VALUES (1, 'kept?')`, [], {
                type: "INSERT",
                table
              })
              const [error, millis] = yield* timed(
                timeout(
                  Tx.run(
                    Effect.zipRight(
                      execute(insert),
                      execute(statement(s, sleep(uniqueName("tx")), [], { table }))
                    )
                  )
                ).pipe(Effect.flip)
              )
              assert.strictEqual(error._tag, "QueryTimeoutError")
              assert.isBelow(millis, 3000)
              const sql = yield* SqlClient.SqlClient
              assert.deepStrictEqual(yield* sql.unsafe(`SELECT id FROM ${table}`), [])
            })
        )

        it.effect(
          "inside a transaction, a caught timeout: MariaDB goes on; PostgreSQL only after a nested savepoint",
          () =>
            Effect.gen(function* () {
              const s = yield* session
              const sql = yield* SqlClient.SqlClient
              const insert = (id: number) =>
                execute(
                  statement(s, `INSERT INTO ${table} (id, name) VALUES (${id}, 'caught')`, [], {
                    type: "INSERT",
                    table
                  })
                )
              const caught = (slow: Effect.Effect<unknown, unknown, Executor.Executor>) =>
                Effect.gen(function* () {
                  yield* sql.unsafe(`DELETE FROM ${table}`)
                  const outcome = yield* timeout(
                    Tx.run(
                      Effect.gen(function* () {
                        yield* insert(1)
                        const error = yield* Effect.flip(slow)
                        assert.strictEqual((error as { _tag: string })._tag, "QueryTimeoutError")
                        yield* insert(2)
                      })
                    )
                  ).pipe(Effect.either)
                  const rows = yield* sql.unsafe<{ id: number }>(`SELECT id FROM ${table} ORDER BY id`)
                  return { ok: outcome._tag, rows: rows.map((r) => Number(r.id)) }
                })
              const slow = execute(statement(s, sleep(uniqueName("caught")), [], { table }))
              // PostgreSQL aborts the transaction on any failed statement, a timed-out one included.
              assert.deepStrictEqual(
                yield* caught(slow),
                db.dialect === "pg" ? { ok: "Left", rows: [] } : { ok: "Right", rows: [1, 2] }
              )
              // A nested savepoint around the statement lets the work go on everywhere.
              assert.deepStrictEqual(yield* caught(Tx.run(slow, { propagation: "nested" })), {
                ok: "Right",
                rows: [1, 2]
              })
            })
        )

        if (db.dialect === "pg") {
          it.effect(
            "inside a transaction the bound is this statement's only: the setting is put back after it",
            () =>
              Effect.gen(function* () {
                const s = yield* session
                const shown = yield* timeout(
                  Tx.run(
                    Effect.zipRight(
                      execute(statement(s, "SELECT 1 AS one")),
                      execute(statement(s, "SHOW statement_timeout", [], { expects: "rows" }))
                    )
                  )
                )
                assert.deepStrictEqual(shown, { _tag: "Rows", rows: [{ statement_timeout: "0" }] })
              })
          )

          it.effect(
            "waiting for the pool's one connection: the error comes at the deadline, no connection leaks",
            () =>
              Effect.gen(function* () {
                const s = yield* session
                const holding = yield* Deferred.make<void>()
                const release = yield* Deferred.make<void>()
                const holder = yield* Effect.fork(
                  Tx.run(
                    Effect.zipRight(
                      execute(statement(s, "SELECT 1 AS one")),
                      Effect.zipRight(Deferred.succeed(holding, undefined), Deferred.await(release))
                    )
                  )
                )
                yield* Deferred.await(holding)
                const [error, millis] = yield* timed(
                  timeout(execute(statement(s, "SELECT 2 AS two", [], { table }))).pipe(Effect.flip)
                )
                assert.strictEqual(error._tag, "QueryTimeoutError")
                assert.isBelow(millis, 3000)
                yield* Deferred.succeed(release, undefined)
                yield* Fiber.join(holder)
                assert.deepStrictEqual(yield* timeout(execute(statement(s, "SELECT 3 AS three"))), {
                  _tag: "Rows",
                  rows: [{ three: 3 }]
                })
              })
          )
        }
      }
    )
  })
}
