/**
 * Transactions under load and faults on real servers: 200 concurrent fibers with nested transactions
 * on a pool of 4, a connection killed mid-transaction, a real deadlock and `Tx.retry`, and the
 * difference between read committed and repeatable read.
 */
import { describe, expect, layer } from "@effect/vitest"
import { Array as Arr, Cause, Data, Deferred, Effect, Exit, Fiber, Layer, Option, Schedule } from "effect"
import { DatabaseError } from "../../src/Query/QueryError.js"
import * as Tx from "../../src/Tx/Tx.js"
import { TxError } from "../../src/Tx/TxError.js"
import { testDatabases } from "../support/databases.js"
import { currentTxId, execP, insert, items, names, query } from "./fixtures.js"

class Boom extends Data.TaggedError("Boom")<{ readonly i: number }> {}

for (const db of testDatabases({ maxConnections: 4 })) {
  const t = items("tx_faults", db.dialect)
  const server = db.dialect !== "sqlite"
  const starting = (prefix: string) => Effect.map(names(t), (all) => all.filter((n) => n.startsWith(prefix)))
  const idOf = (name: string) =>
    Effect.map(query(`SELECT id FROM ${t.table} WHERE name = '${name}'`), (rows) => Number(rows[0]?.id))

  describe.skipIf(!db.available)(`${db.label}: Tx under faults`, () => {
    layer(Layer.provideMerge(t.layer, db.layer), { timeout: "60 seconds" })((it) => {
      it.effect(
        "200 concurrent nested savepoints in one transaction: unique names, no collision, exact rows",
        () =>
          Effect.gen(function* () {
            const ids = yield* Effect.forEach(
              Arr.range(0, 199),
              (i) =>
                Effect.gen(function* () {
                  yield* insert(t, `one-${i}-a`)
                  yield* Effect.yieldNow()
                  yield* insert(t, `one-${i}-b`)
                  const id = yield* currentTxId
                  if (i % 2 === 1) return yield* new Boom({ i })
                  return id
                }).pipe(Tx.run({ propagation: "nested" }), Effect.option),
              { concurrency: "unbounded" }
            ).pipe(Tx.run())
            const kept = Arr.getSomes(ids)
            expect(kept).toHaveLength(100)
            expect(new Set(kept.map(Option.getOrThrow)).size).toBe(100)
            const rows = yield* starting("one-")
            expect(rows).toHaveLength(200)
            expect(rows.every((n) => Number(n.split("-")[1]) % 2 === 0)).toBe(true)
          })
      )

      if (server) {
        it.effect(
          "200 concurrent fibers, each a transaction with nested ones, on a pool of 4: exact rows",
          () =>
            Effect.gen(function* () {
              yield* Effect.forEach(
                Arr.range(0, 199),
                (i) =>
                  Effect.gen(function* () {
                    yield* insert(t, `many-${i}-outer`)
                    yield* insert(t, `many-${i}-kept`).pipe(Tx.run({ propagation: "nested" }))
                    yield* Effect.zipRight(insert(t, `many-${i}-lost`), new Boom({ i })).pipe(
                      Tx.run({ propagation: "nested" }),
                      Effect.ignore
                    )
                    if (i % 10 === 0) return yield* new Boom({ i })
                  }).pipe(Tx.run(), Effect.ignore),
                { concurrency: "unbounded", discard: true }
              )
              const rows = yield* starting("many-")
              expect(rows.filter((n) => n.endsWith("-lost"))).toEqual([])
              expect(rows.filter((n) => n.endsWith("-outer"))).toHaveLength(180)
              expect(rows.filter((n) => n.endsWith("-kept"))).toHaveLength(180)
              expect(rows.some((n) => n.startsWith("many-10-"))).toBe(false)
            })
        )

        it.effect(
          "a connection killed mid-transaction: typed error, nothing persisted, the pool serves on",
          () =>
            Effect.gen(function* () {
              const backend = yield* Deferred.make<number>()
              const killed = yield* Deferred.make<void>()
              const fiber = yield* Effect.gen(function* () {
                yield* insert(t, "kill-a")
                const rows = yield* query(
                  db.dialect === "mysql" ? "SELECT CONNECTION_ID() AS id" : "SELECT pg_backend_pid() AS id"
                )
                yield* Deferred.succeed(backend, Number(rows[0]?.id))
                yield* Deferred.await(killed)
                yield* insert(t, "kill-b")
              }).pipe(Tx.run(), Effect.fork)
              const id = yield* Deferred.await(backend)
              yield* db.dialect === "mysql"
                ? execP(`KILL CONNECTION ${id}`, [])
                : query("SELECT pg_terminate_backend($1) AS ok", [id])
              yield* Deferred.succeed(killed, undefined)
              const exit = yield* Fiber.await(fiber)
              expect(Exit.isFailure(exit)).toBe(true)
              const error = Exit.isFailure(exit) ? Cause.squash(exit.cause) : undefined
              // The statement after the kill fails with a connection error; the ROLLBACK on the dead
              // connection fails too, so the TxError carries both.
              expect(error).toBeInstanceOf(TxError)
              const txError = error as TxError
              expect(txError.reason).toBe("rollback")
              const original = Cause.squash(txError.cause as Cause.Cause<unknown>)
              expect(original).toBeInstanceOf(DatabaseError)
              // Its reason is "connection", or "other" when the driver noticed the close first and
              // answered with its own message (QueryError.classify does not know those messages yet).
              expect(txError.rollbackCause).toBeInstanceOf(DatabaseError)
              expect(Tx.isRetryable(txError)).toBe(false)
              expect(yield* starting("kill-")).toEqual([])
              // Every pooled connection still answers, and transactions work again.
              yield* Effect.forEach(Arr.range(0, 7), () => query("SELECT 1 AS one"), { concurrency: 8 })
              yield* insert(t, "kill-after").pipe(Tx.run())
              expect(yield* starting("kill-")).toEqual(["kill-after"])
            })
        )

        const deadlock = (prefix: string, retry: boolean, recover = false) =>
          Effect.gen(function* () {
            yield* insert(t, `${prefix}-x`)
            yield* insert(t, `${prefix}-y`)
            const x = yield* idOf(`${prefix}-x`)
            const y = yield* idOf(`${prefix}-y`)
            const bump = (id: number) => execP(`UPDATE ${t.table} SET n = n + 1 WHERE id = $1`, [id])
            const locked = [yield* Deferred.make<void>(), yield* Deferred.make<void>()] as const
            // Each locks its first row, waits until the other has too, then asks for the other's row.
            const transfer = (first: number, second: number, mine: 0 | 1) =>
              Effect.gen(function* () {
                yield* bump(first)
                yield* Deferred.succeed(locked[mine], undefined)
                yield* Deferred.await(locked[mine === 0 ? 1 : 0])
                yield* recover
                  ? // The victim carries on as if nothing happened: MariaDB would autocommit this.
                    bump(second).pipe(Effect.catchAll(() => insert(t, `${prefix}-after`)))
                  : bump(second)
              }).pipe(Tx.run())
            const both = [transfer(x, y, 0), transfer(y, x, 1)].map((tx) =>
              retry ? tx.pipe(Tx.retry(Schedule.recurs(3))) : tx
            )
            const results = yield* Effect.all(both, { concurrency: 2, mode: "either" })
            const rows = yield* query(`SELECT n FROM ${t.table} WHERE id IN (${x}, ${y})`)
            return { results, counts: rows.map((r) => Number(r.n)) }
          })

        it.effect("a real deadlock: one transaction fails with reason deadlock and is rolled back", () =>
          Effect.gen(function* () {
            const { results, counts } = yield* deadlock("dl", false)
            const failures = results.flatMap((r) => (r._tag === "Left" ? [r.left] : []))
            expect(failures).toHaveLength(1)
            expect(failures[0]).toBeInstanceOf(DatabaseError)
            expect((failures[0] as DatabaseError).reason).toBe("deadlock")
            // Only the survivor's two updates are there.
            expect(counts).toEqual([1, 1])
          })
        )

        it.effect("a deadlock victim that catches the error cannot write on: nothing of it persists", () =>
          Effect.gen(function* () {
            const { results, counts } = yield* deadlock("dlc", false, true)
            const failures = results.flatMap((r) => (r._tag === "Left" ? [r.left] : []))
            expect(failures).toHaveLength(1)
            if (db.dialect === "mysql") expect(Tx.isRetryable(failures[0])).toBe(true)
            expect(counts).toEqual([1, 1])
            expect(yield* starting("dlc-after")).toEqual([])
          })
        )

        it.effect("with Tx.retry both deadlocked transactions complete", () =>
          Effect.gen(function* () {
            const { results, counts } = yield* deadlock("dlr", true)
            expect(results.map((r) => r._tag)).toEqual(["Right", "Right"])
            expect(counts).toEqual([2, 2])
          })
        )

        it.effect("read committed sees a row committed meanwhile; repeatable read does not", () =>
          Effect.gen(function* () {
            const observe = (isolation: Tx.IsolationLevel, prefix: string) =>
              Effect.gen(function* () {
                const before = yield* starting(prefix)
                // Committed by another connection while this transaction is open.
                yield* insert(t, `${prefix}-meanwhile`).pipe(Tx.run({ propagation: "requiresNew" }))
                const after = yield* starting(prefix)
                return [before.length, after.length]
              }).pipe(Tx.run({ isolation }))
            expect(yield* observe("read committed", "rc")).toEqual([0, 1])
            expect(yield* observe("repeatable read", "rr")).toEqual([0, 0])
            expect(yield* starting("rr")).toEqual(["rr-meanwhile"])
          })
        )
      }
    })
  })
}
