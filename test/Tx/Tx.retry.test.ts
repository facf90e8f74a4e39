/**
 * Every failure `Tx.retry` covers, produced for real on each server: PostgreSQL serialization
 * failures (repeatable read and serializable), lock timeouts, MariaDB's "record has changed" under
 * snapshot isolation and its lock wait timeout, SQLite's BUSY and BUSY_SNAPSHOT. Each is classified,
 * `Tx.isRetryable`, and with `Tx.retry` the work completes with exact results. (Deadlocks: Tx.faults.)
 * Ordering is forced with latches; the only waits are the servers' own lock timeouts.
 */
import { rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { describe, expect, layer } from "@effect/vitest"
import { Context, Deferred, Effect, Layer, Ref, Schedule, Schema } from "effect"
import * as Database from "../../src/Layers/Database.js"
import { Executor, type ExecutorService } from "../../src/Query/Executor.js"
import { DatabaseError, type QueryError } from "../../src/Query/QueryError.js"
import * as Select from "../../src/Query/Select.js"
import * as Update from "../../src/Query/Update.js"
import * as Entity from "../../src/Schema/Entity.js"
import * as Tx from "../../src/Tx/Tx.js"
import { TxError } from "../../src/Tx/TxError.js"
import { testDatabases, uniqueName } from "../support/databases.js"
import { exec, query } from "./fixtures.js"

const accounts = (dialect: string) => {
  const table = uniqueName("tx_retry")
  const Account = Schema.Struct({ id: Schema.Number, balance: Schema.Number }).annotations({
    identifier: "Account",
    ...Entity.table(table)
  })
  const reset = Effect.zipRight(
    exec(`DELETE FROM ${table}`),
    exec(`INSERT INTO ${table} (id, balance) VALUES (1, 100), (2, 100)`)
  )
  const fixture = Layer.scopedDiscard(
    Effect.acquireRelease(
      exec(
        `CREATE TABLE ${table} (id INT PRIMARY KEY, balance INT NOT NULL)${dialect === "mysql" ? " ENGINE=InnoDB" : ""}`
      ),
      () => Effect.orDie(exec(`DROP TABLE ${table}`))
    )
  )
  return { table, Account, reset, fixture }
}

/** Two parties: each `arrive` waits until both have arrived; later arrivals pass at once. */
const barrier = Effect.map(Effect.all([Ref.make(0), Deferred.make<void>()]), ([count, open]) =>
  Effect.flatMap(
    Ref.updateAndGet(count, (n) => n + 1),
    (n) => (n >= 2 ? Deferred.succeed(open, undefined) : Deferred.await(open))
  )
)

const failures = <A, E>(
  results: ReadonlyArray<{ readonly _tag: "Left"; left: E } | { _tag: "Right"; right: A }>
) => results.flatMap((r) => (r._tag === "Left" ? [r.left] : []))

for (const db of testDatabases({ maxConnections: 4 }).filter((d) => d.dialect !== "sqlite")) {
  const a = accounts(db.dialect)
  const balances = Effect.map(query(`SELECT balance FROM ${a.table} ORDER BY id`), (rows) =>
    rows.map((r) => Number(r.balance))
  )

  describe.skipIf(!db.available)(`${db.label}: Tx.retry covers every retryable failure`, () => {
    layer(Layer.provideMerge(a.fixture, db.layer), { timeout: "60 seconds" })((it) => {
      /**
       * The transfer of docs/Tx.md with a balance check: both read the source account (taking their
       * snapshot) before either writes, so the second writer works from a stale snapshot.
       */
      const transfer = (arrive: Effect.Effect<void>, attempts: Ref.Ref<number>) =>
        Effect.gen(function* () {
          yield* Ref.update(attempts, (n) => n + 1)
          if (db.dialect === "mysql") yield* exec("SET SESSION innodb_snapshot_isolation = ON")
          const source = yield* Select.from(a.Account)
            .where((x) => x.id.eq(1))
            .get()
          yield* arrive
          if (source.balance < 10) return yield* Effect.dieMessage("insufficient funds")
          yield* Update.table(a.Account)
            .set((x) => ({ balance: x.balance.sub(10) }))
            .where((x) => x.id.eq(1))
            .exec()
          yield* Update.table(a.Account)
            .set((x) => ({ balance: x.balance.add(10) }))
            .where((x) => x.id.eq(2))
            .exec()
        }).pipe(Tx.run({ isolation: "repeatable read" }))

      it.effect(
        "two concurrent transfers under repeatable read: the loser fails with reason serialization",
        () =>
          Effect.gen(function* () {
            yield* a.reset
            const arrive = yield* barrier
            const attempts = yield* Ref.make(0)
            const results = yield* Effect.all([transfer(arrive, attempts), transfer(arrive, attempts)], {
              concurrency: 2,
              mode: "either"
            })
            const failed = failures(results)
            expect(failed).toHaveLength(1)
            expect(failed[0]).toBeInstanceOf(DatabaseError)
            expect((failed[0] as DatabaseError).reason).toBe("serialization")
            expect(Tx.isRetryable(failed[0])).toBe(true)
            expect(yield* balances).toEqual([90, 110])
          })
      )

      it.effect("with Tx.retry both transfers complete: exactly two debits and two credits", () =>
        Effect.gen(function* () {
          yield* a.reset
          const arrive = yield* barrier
          const attempts = yield* Ref.make(0)
          const retried = transfer(arrive, attempts).pipe(Tx.retry(Schedule.recurs(3)))
          yield* Effect.all([retried, retried], { concurrency: 2, discard: true })
          expect(yield* balances).toEqual([80, 120])
          expect(yield* Ref.get(attempts)).toBe(3)
        })
      )

      it.effect(
        "8 concurrent transfers, writes in a nested savepoint, with Tx.retry: exact balances, each afterCommit hook once",
        () =>
          Effect.gen(function* () {
            yield* a.reset
            const hooks = yield* Ref.make(0)
            const one = Effect.gen(function* () {
              if (db.dialect === "mysql") yield* exec("SET SESSION innodb_snapshot_isolation = ON")
              const source = yield* Select.from(a.Account)
                .where((x) => x.id.eq(1))
                .get()
              if (source.balance < 10) return yield* Effect.dieMessage("insufficient funds")
              yield* Tx.afterCommit(Ref.update(hooks, (n) => n + 1))
              yield* Effect.gen(function* () {
                yield* Update.table(a.Account)
                  .set((x) => ({ balance: x.balance.sub(10) }))
                  .where((x) => x.id.eq(1))
                  .exec()
                yield* Update.table(a.Account)
                  .set((x) => ({ balance: x.balance.add(10) }))
                  .where((x) => x.id.eq(2))
                  .exec()
              }).pipe(Tx.run({ propagation: "nested" }))
            }).pipe(Tx.run({ isolation: "repeatable read" }), Tx.retry(Schedule.recurs(50)))
            yield* Effect.all(
              Array.from({ length: 8 }, () => one),
              { concurrency: 8, discard: true }
            )
            expect(yield* balances).toEqual([20, 180])
            expect(yield* Ref.get(hooks)).toBe(8)
          })
      )

      it.effect(
        "a lock timeout is reason lock_timeout, and Tx.retry runs the work again once the lock is free",
        () =>
          Effect.gen(function* () {
            yield* a.reset
            const holding = yield* Deferred.make<void>()
            const timedOut = yield* Deferred.make<QueryError>()
            const released = yield* Deferred.make<void>()
            const attempts = yield* Ref.make(0)
            const holder = Effect.gen(function* () {
              yield* exec(`UPDATE ${a.table} SET balance = balance + 1 WHERE id = 1`)
              yield* Deferred.succeed(holding, undefined)
              yield* Deferred.await(timedOut)
            }).pipe(Tx.run(), Effect.zipRight(Deferred.succeed(released, undefined)))
            const waiter = Effect.gen(function* () {
              yield* Ref.update(attempts, (n) => n + 1)
              // The servers' own lock wait bound; MariaDB's smallest is one second.
              yield* exec(
                db.dialect === "mysql"
                  ? "SET SESSION innodb_lock_wait_timeout = 1"
                  : "SET LOCAL lock_timeout = '50ms'"
              )
              yield* exec(`UPDATE ${a.table} SET balance = balance + 10 WHERE id = 1`).pipe(
                Effect.tapError((e) =>
                  Effect.zipRight(Deferred.succeed(timedOut, e), Deferred.await(released))
                )
              )
            }).pipe(Tx.run(), Tx.retry(Schedule.recurs(3)))
            yield* Effect.all([holder, Effect.zipRight(Deferred.await(holding), waiter)], {
              concurrency: 2,
              discard: true
            })
            const error = yield* Deferred.await(timedOut)
            expect(error).toBeInstanceOf(DatabaseError)
            expect((error as DatabaseError).reason).toBe("lock_timeout")
            expect(Tx.isRetryable(error)).toBe(true)
            expect(yield* Ref.get(attempts)).toBe(2)
            expect(yield* balances).toEqual([111, 100])
            if (db.dialect === "mysql") yield* exec("SET SESSION innodb_lock_wait_timeout = DEFAULT")
          })
      )

      it.effect(
        "a serialization failure the work swallowed: nothing of it commits, and COMMIT's TxError is retryable",
        () =>
          Effect.gen(function* () {
            yield* a.reset
            const read = yield* Deferred.make<void>()
            const committed = yield* Deferred.make<void>()
            const loser = Effect.gen(function* () {
              if (db.dialect === "mysql") yield* exec("SET SESSION innodb_snapshot_isolation = ON")
              yield* Select.from(a.Account)
                .where((x) => x.id.eq(1))
                .get()
              yield* Deferred.succeed(read, undefined)
              yield* Deferred.await(committed)
              // Fails (the row changed after this snapshot); the work carries on regardless. MariaDB has
              // already rolled the transaction back: the next write must not autocommit.
              yield* exec(`UPDATE ${a.table} SET balance = balance - 10 WHERE id = 1`).pipe(Effect.ignore)
              yield* exec(`UPDATE ${a.table} SET balance = balance + 10 WHERE id = 2`).pipe(Effect.ignore)
            }).pipe(Tx.run({ isolation: "repeatable read" }), Effect.flip)
            const winner = Deferred.await(read).pipe(
              Effect.zipRight(exec(`UPDATE ${a.table} SET balance = balance - 1 WHERE id = 1`)),
              Effect.zipRight(Deferred.succeed(committed, undefined))
            )
            const [error] = yield* Effect.all([loser, winner], { concurrency: 2 })
            expect(error).toBeInstanceOf(TxError)
            expect((error as TxError).reason).toBe("commit")
            expect((error as TxError).cause).toBeInstanceOf(DatabaseError)
            expect(((error as TxError).cause as DatabaseError).reason).toBe("serialization")
            expect(Tx.isRetryable(error)).toBe(true)
            expect(yield* balances).toEqual([99, 100])
          })
      )

      if (db.dialect === "pg") {
        it.effect(
          "serializable write skew: one fails with serialization (statement or COMMIT); retried, both apply",
          () =>
            Effect.gen(function* () {
              yield* a.reset
              const arrive = yield* barrier
              const attempts = yield* Ref.make(0)
              const errors = yield* Ref.make<ReadonlyArray<unknown>>([])
              // Each moves the total of both accounts into its own: fine alone, a skew together.
              const skew = (mine: number) =>
                Effect.gen(function* () {
                  yield* Ref.update(attempts, (n) => n + 1)
                  const rows = yield* query(`SELECT SUM(balance) AS total FROM ${a.table}`)
                  yield* arrive
                  yield* exec(`UPDATE ${a.table} SET balance = $1 WHERE id = $2`, [
                    Number(rows[0]?.total),
                    mine
                  ])
                }).pipe(
                  Tx.run({ isolation: "serializable" }),
                  Effect.tapError((e) => Ref.update(errors, (all) => [...all, e]))
                )
              yield* Effect.all(
                [skew(1).pipe(Tx.retry(Schedule.recurs(3))), skew(2).pipe(Tx.retry(Schedule.recurs(3)))],
                { concurrency: 2, discard: true }
              )
              // PostgreSQL may cancel either or, rarely, both first attempts; at least one failed.
              const seen = yield* Ref.get(errors)
              expect(seen.length).toBeGreaterThanOrEqual(1)
              expect(seen.every(Tx.isRetryable)).toBe(true)
              expect(yield* Ref.get(attempts)).toBe(2 + seen.length)
              // Serial order: the first sets its row to 200, the second then to 300 (or the other way).
              expect((yield* balances).sort((x, y) => x - y)).toEqual([200, 300])
            })
        )
      }
    })
  })
}

class Other extends Context.Tag("test/Tx/retry/Other")<Other, ExecutorService>() {}

describe("SQLite (a file shared by two connections): Tx.retry covers BUSY and BUSY_SNAPSHOT", () => {
  const file = join(tmpdir(), `${uniqueName("tx_retry")}.db`)
  const a = accounts("sqlite")
  const url = `sqlite:${file}`
  const cleanup = Layer.scopedDiscard(
    Effect.addFinalizer(() =>
      Effect.sync(() => {
        for (const suffix of ["", "-wal", "-shm", "-journal"]) rmSync(`${file}${suffix}`, { force: true })
      })
    )
  )
  const other = Layer.effect(Other, Executor).pipe(Layer.provide(Database.layer({ url })))
  const databases = Layer.mergeAll(Layer.provideMerge(a.fixture, Database.layer({ url })), other).pipe(
    Layer.provideMerge(cleanup)
  )
  const onOther = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
    Effect.flatMap(Other, (ex) => Effect.provideService(effect, Executor, ex))
  const balances = Effect.map(query(`SELECT balance FROM ${a.table} ORDER BY id`), (rows) =>
    rows.map((r) => Number(r.balance))
  )

  layer(databases, { timeout: "30 seconds" })((it) => {
    it.effect(
      "a write on a WAL snapshot that another connection has moved past: serialization, retried",
      () =>
        Effect.gen(function* () {
          yield* exec("PRAGMA journal_mode = WAL")
          yield* a.reset
          const read = yield* Deferred.make<void>()
          const written = yield* Deferred.make<void>()
          const attempts = yield* Ref.make(0)
          const errors = yield* Ref.make<ReadonlyArray<unknown>>([])
          const stale = Effect.gen(function* () {
            yield* Ref.update(attempts, (n) => n + 1)
            yield* query(`SELECT balance FROM ${a.table} WHERE id = 1`)
            yield* Deferred.succeed(read, undefined)
            yield* Deferred.await(written)
            yield* exec(`UPDATE ${a.table} SET balance = balance - 10 WHERE id = 1`)
          }).pipe(
            Tx.run(),
            Effect.tapError((e) => Ref.update(errors, (all) => [...all, e])),
            Tx.retry(Schedule.recurs(3))
          )
          const writer = Effect.zipRight(
            Deferred.await(read),
            onOther(exec(`UPDATE ${a.table} SET balance = balance + 5 WHERE id = 1`))
          ).pipe(Effect.zipRight(Deferred.succeed(written, undefined)))
          yield* Effect.all([stale, writer], { concurrency: 2, discard: true })
          const seen = yield* Ref.get(errors)
          expect(seen).toHaveLength(1)
          expect(seen[0]).toBeInstanceOf(DatabaseError)
          expect((seen[0] as DatabaseError).reason).toBe("serialization")
          expect(yield* Ref.get(attempts)).toBe(2)
          expect(yield* balances).toEqual([95, 100])
        })
    )

    it.effect("a write lock held by another connection: BUSY is lock_timeout, retried once it commits", () =>
      Effect.gen(function* () {
        yield* a.reset
        // No busy wait on this connection: BUSY at once instead of after better-sqlite3's 5 s.
        yield* exec("PRAGMA busy_timeout = 0")
        const holding = yield* Deferred.make<void>()
        const busy = yield* Deferred.make<QueryError>()
        const released = yield* Deferred.make<void>()
        const attempts = yield* Ref.make(0)
        const holder = onOther(
          Effect.gen(function* () {
            yield* exec(`UPDATE ${a.table} SET balance = balance + 1 WHERE id = 2`)
            yield* Deferred.succeed(holding, undefined)
            yield* Deferred.await(busy)
          }).pipe(Tx.run())
        ).pipe(Effect.zipRight(Deferred.succeed(released, undefined)))
        const waiter = Effect.gen(function* () {
          yield* Ref.update(attempts, (n) => n + 1)
          yield* exec(`UPDATE ${a.table} SET balance = balance + 10 WHERE id = 1`).pipe(
            Effect.tapError((e) => Effect.zipRight(Deferred.succeed(busy, e), Deferred.await(released)))
          )
        }).pipe(Tx.run(), Tx.retry(Schedule.recurs(3)))
        yield* Effect.all([holder, Effect.zipRight(Deferred.await(holding), waiter)], {
          concurrency: 2,
          discard: true
        })
        const error = yield* Deferred.await(busy)
        expect(error).toBeInstanceOf(DatabaseError)
        expect((error as DatabaseError).reason).toBe("lock_timeout")
        expect(Tx.isRetryable(error)).toBe(true)
        expect(yield* Ref.get(attempts)).toBe(2)
        expect(yield* balances).toEqual([110, 101])
      })
    )
  })
})
