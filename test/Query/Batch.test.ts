/**
 * `Batch` runs on the same transaction engine as `Tx`, on the real servers: a failed COMMIT and a
 * failed ROLLBACK are typed `TxError`s, PostgreSQL's COMMIT answered with ROLLBACK is detected,
 * savepoints inside a batch take the statement lock, after-commit hooks are isolated, and a wait for
 * a pooled connection can be interrupted without leaking it.
 */
import { describe, expect, layer } from "@effect/vitest"
import { Array as Arr, Cause, Data, Deferred, Effect, Exit, Fiber, Layer, Logger, Option, Ref } from "effect"
import * as Batch from "../../src/Query/Batch.js"
import { Executor } from "../../src/Query/Executor.js"
import { DatabaseError } from "../../src/Query/QueryError.js"
import { TxError } from "../../src/Query/TxError.js"
import * as Tx from "../../src/Tx/Tx.js"
import { testDatabases, uniqueName } from "../support/databases.js"
import { blocked, currentTxId, exec, insert, items, names, query } from "../Tx/fixtures.js"

class Boom extends Data.TaggedError("Boom")<{ readonly i: number }> {}

const batch = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.flatMap(Executor, ({ session }) => Batch.transaction(session, effect))

/** The TxError somewhere in an error's chain of causes. */
const txErrorIn = (error: unknown): TxError | undefined => {
  for (let e = error; typeof e === "object" && e !== null; e = (e as { cause?: unknown }).cause) {
    if (e instanceof TxError) return e
  }
  return undefined
}

const failureOf = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.flatMap(Effect.exit(effect), (exit) =>
    Exit.isFailure(exit) ? Effect.succeed(Cause.squash(exit.cause)) : Effect.dieMessage("expected a failure")
  )

for (const db of testDatabases({ maxConnections: 2 })) {
  const t = items("batch", db.dialect)
  const starting = (prefix: string) => Effect.map(names(t), (all) => all.filter((n) => n.startsWith(prefix)))
  const deferredTable = uniqueName("batch_deferred")

  describe.skipIf(!db.available)(`${db.label}: Batch on the transaction engine`, () => {
    layer(Layer.provideMerge(t.layer, db.layer), { timeout: "30 seconds" })((it) => {
      it.effect("commits all statements together, and rolls all back on a failure", () =>
        Effect.gen(function* () {
          const id = yield* batch(
            Effect.zipRight(insert(t, "all-a"), Effect.zipRight(insert(t, "all-b"), currentTxId))
          )
          expect(Option.isSome(id)).toBe(true)
          const error = yield* batch(Effect.zipRight(insert(t, "none-a"), new Boom({ i: 1 }))).pipe(
            Effect.flip
          )
          expect(error).toEqual(new Boom({ i: 1 }))
          expect(yield* starting("all-")).toEqual(["all-a", "all-b"])
          expect(yield* starting("none-")).toEqual([])
        })
      )

      if (db.dialect !== "mysql") {
        it.effect(
          "a COMMIT the database refuses (a deferred constraint) is TxError commit, nothing kept",
          () =>
            Effect.gen(function* () {
              yield* exec(
                db.dialect === "pg"
                  ? `CREATE TABLE ${deferredTable} (v INT, CONSTRAINT ${deferredTable}_v UNIQUE (v) DEFERRABLE INITIALLY DEFERRED)`
                  : `CREATE TABLE ${deferredTable} (v INT REFERENCES ${t.table}(id) DEFERRABLE INITIALLY DEFERRED)`
              )
              if (db.dialect === "sqlite") yield* exec("PRAGMA foreign_keys = ON")
              const error = yield* failureOf(
                batch(
                  Effect.gen(function* () {
                    yield* insert(t, "deferred-a")
                    // Accepted now, refused at COMMIT: a duplicate (PostgreSQL) or a missing parent (SQLite).
                    yield* exec(`INSERT INTO ${deferredTable} (v) VALUES (999999)`)
                    if (db.dialect === "pg") yield* exec(`INSERT INTO ${deferredTable} (v) VALUES (999999)`)
                  })
                )
              )
              expect(error).toBeInstanceOf(TxError)
              expect((error as TxError).reason).toBe("commit")
              expect((error as TxError).cause).toBeInstanceOf(DatabaseError)
              expect(((error as TxError).cause as DatabaseError).reason).toBe(
                db.dialect === "pg" ? "unique" : "foreign_key"
              )
              expect(yield* starting("deferred-")).toEqual([])
              expect(yield* query(`SELECT v FROM ${deferredTable}`)).toEqual([])
              if (db.dialect === "sqlite") yield* exec("PRAGMA foreign_keys = OFF")
              yield* exec(`DROP TABLE ${deferredTable}`)
            })
        )
      }

      if (db.dialect === "pg") {
        it.effect(
          "PostgreSQL answering COMMIT with ROLLBACK is TxError commit carrying the failed statement",
          () =>
            Effect.gen(function* () {
              const error = yield* failureOf(
                batch(
                  Effect.gen(function* () {
                    yield* insert(t, "aborted-a")
                    yield* exec("SELECT no_such_column FROM no_such_table").pipe(Effect.ignore)
                  })
                )
              )
              expect(error).toBeInstanceOf(TxError)
              expect((error as TxError).reason).toBe("commit")
              expect((error as TxError).cause).toBeInstanceOf(DatabaseError)
              expect(yield* starting("aborted-")).toEqual([])
            })
        )
      }

      it.effect("nested savepoints inside a batch take the statement lock: 100 concurrent, exact rows", () =>
        Effect.gen(function* () {
          const kept = yield* batch(
            Effect.forEach(
              Arr.range(0, 99),
              (i) =>
                Effect.gen(function* () {
                  yield* insert(t, `nested-${i}-a`)
                  yield* Effect.yieldNow()
                  yield* insert(t, `nested-${i}-b`)
                  if (i % 2 === 1) return yield* new Boom({ i })
                }).pipe(Tx.run({ propagation: "nested" }), Effect.option),
              { concurrency: "unbounded" }
            )
          )
          expect(Arr.getSomes(kept)).toHaveLength(50)
          const rows = yield* starting("nested-")
          expect(rows).toHaveLength(100)
          expect(rows.every((n) => Number(n.split("-")[1]) % 2 === 0)).toBe(true)
        })
      )

      it.effect("a failing after-commit hook is logged; the batch stays committed and later hooks run", () =>
        Effect.gen(function* () {
          const ran = yield* Ref.make<ReadonlyArray<string>>([])
          const logged = yield* Ref.make<ReadonlyArray<string>>([])
          const logger = Logger.make(({ message }) => {
            Effect.runSync(Ref.update(logged, (all) => [...all, String(message)]))
          })
          yield* batch(
            Effect.gen(function* () {
              yield* insert(t, "hooks-a")
              yield* Tx.afterCommit(Effect.dieMessage("hook one breaks"))
              yield* Tx.afterCommit(Ref.update(ran, (all) => [...all, "two"]))
            })
          ).pipe(Effect.provide(Logger.replace(Logger.defaultLogger, logger)))
          expect(yield* Ref.get(ran)).toEqual(["two"])
          expect((yield* Ref.get(logged)).some((m) => m.includes("afterCommit hook failed"))).toBe(true)
          expect(yield* starting("hooks-")).toEqual(["hooks-a"])
        })
      )

      it.effect(
        "a statement after the batch ended fails with TxError finished instead of autocommitting",
        () =>
          Effect.gen(function* () {
            const escaped = yield* Deferred.make<void>()
            const fiber = yield* batch(
              Effect.forkDaemon(Effect.zipRight(Deferred.await(escaped), insert(t, "escaped-a")))
            )
            yield* Deferred.succeed(escaped, undefined)
            const error = yield* failureOf(Fiber.join(fiber))
            expect(error).toBeInstanceOf(DatabaseError)
            expect(txErrorIn(error)?.reason).toBe("finished")
            expect(yield* starting("escaped-")).toEqual([])
          })
      )

      if (db.dialect !== "sqlite") {
        it.effect("a batch waiting for a connection of a full pool can be interrupted, and leaks none", () =>
          Effect.gen(function* () {
            const holding = yield* Deferred.make<void>()
            const release = yield* Deferred.make<void>()
            // Both connections of the pool are held by transactions.
            const holders = yield* Effect.forEach(Arr.range(0, 1), (i) =>
              Effect.fork(
                Effect.zipRight(
                  insert(t, `pool-hold-${i}`),
                  Effect.zipRight(Deferred.succeed(holding, undefined), Deferred.await(release))
                ).pipe(Tx.run())
              )
            )
            yield* Deferred.await(holding)
            const waiting = yield* Effect.fork(batch(insert(t, "pool-waiter")))
            // Blocked on the pool; interruption returns without waiting for it.
            expect((yield* blocked(waiting))._tag).toBe("Suspended")
            expect(Exit.isInterrupted(yield* Fiber.interrupt(waiting))).toBe(true)
            yield* Deferred.succeed(release, undefined)
            yield* Effect.forEach(holders, Fiber.join, { discard: true })
            // Every connection came back: two transactions at once still get one each.
            yield* Effect.all([batch(insert(t, "pool-after-0")), batch(insert(t, "pool-after-1"))], {
              concurrency: 2
            })
            expect(yield* starting("pool-")).toEqual([
              "pool-after-0",
              "pool-after-1",
              "pool-hold-0",
              "pool-hold-1"
            ])
          })
        )

        it.effect(
          "a connection killed in a batch: TxError rollback carrying both failures, nothing kept",
          () =>
            Effect.gen(function* () {
              const error = yield* failureOf(
                batch(
                  Effect.gen(function* () {
                    yield* insert(t, "killed-a")
                    const rows = yield* query(
                      db.dialect === "mysql"
                        ? "SELECT CONNECTION_ID() AS id"
                        : "SELECT pg_backend_pid() AS id"
                    )
                    const id = Number(rows[0]?.id)
                    // Killed from another connection of the pool.
                    const kill =
                      db.dialect === "mysql"
                        ? Effect.asVoid(exec(`KILL CONNECTION ${id}`))
                        : Effect.asVoid(query(`SELECT pg_terminate_backend(${id}) AS ok`))
                    yield* kill.pipe(Tx.run({ propagation: "requiresNew" }))
                    yield* insert(t, "killed-b")
                  })
                )
              )
              expect(error).toBeInstanceOf(TxError)
              expect((error as TxError).reason).toBe("rollback")
              expect(Cause.isCause((error as TxError).cause)).toBe(true)
              expect((error as TxError).rollbackCause).toBeInstanceOf(DatabaseError)
              expect(yield* starting("killed-")).toEqual([])
            })
        )
      }
    })
  })
}
