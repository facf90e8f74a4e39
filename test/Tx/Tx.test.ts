/**
 * The transaction suite, run on SQLite, MariaDB and PostgreSQL: commit and rollback on every kind of
 * exit, the scoped and Layer forms, explicit control, each propagation mode, options, hooks and spans.
 */
import { describe, expect, layer } from "@effect/vitest"
import {
  Cause,
  Data,
  Deferred,
  Effect,
  Exit,
  Fiber,
  Layer,
  Option,
  Ref,
  Schedule,
  TestClock,
  Tracer
} from "effect"
import { Executor } from "../../src/Query/Executor.js"
import { DatabaseError } from "../../src/Query/QueryError.js"
import * as Tx from "../../src/Tx/Tx.js"
import { TxError } from "../../src/Tx/TxError.js"
import { testDatabases } from "../support/databases.js"
import { blocked, currentTxId, exec, insert, items, names, query } from "./fixtures.js"

class Boom extends Data.TaggedError("Boom")<{ readonly step: string }> {}

/** Spans started while `effect` runs, recorded through the current tracer. */
const recordingSpans = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.flatMap(Effect.tracer, (tracer) => {
    const spans: Array<Tracer.Span> = []
    const recording = Tracer.make({
      span: (...args) => {
        const span = tracer.span(...args)
        spans.push(span)
        return span
      },
      context: tracer.context
    })
    return Effect.map(Effect.withTracer(effect, recording), (a) => [a, spans] as const)
  })

const errorOf = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.flatMap(Effect.exit(effect), (exit) =>
    Exit.isFailure(exit) ? Effect.succeed(Cause.squash(exit.cause)) : Effect.dieMessage("expected a failure")
  )

for (const db of testDatabases({ maxConnections: 4 })) {
  const t = items("tx_suite", db.dialect)
  const sqlite = db.dialect === "sqlite"
  const starting = (prefix: string) => Effect.map(names(t), (all) => all.filter((n) => n.startsWith(prefix)))

  describe.skipIf(!db.available)(`${db.label}: Tx`, () => {
    layer(Layer.provideMerge(t.layer, db.layer), { timeout: "30 seconds" })((it) => {
      it.effect("run commits: the work sees its own writes, and they persist", () =>
        Effect.gen(function* () {
          const inside = yield* Effect.gen(function* () {
            yield* insert(t, "commit-a")
            yield* insert(t, "commit-b")
            return yield* starting("commit-")
          }).pipe(Tx.run())
          expect(inside).toEqual(["commit-a", "commit-b"])
          expect(yield* starting("commit-")).toEqual(["commit-a", "commit-b"])
        })
      )

      it.effect("a typed failure rolls back and is returned unchanged", () =>
        Effect.gen(function* () {
          const error = yield* Effect.gen(function* () {
            yield* insert(t, "fail-a")
            return yield* new Boom({ step: "after insert" })
          }).pipe(Tx.run(), Effect.flip)
          expect(error).toEqual(new Boom({ step: "after insert" }))
          expect(yield* starting("fail-")).toEqual([])
        })
      )

      it.effect("a defect rolls back and stays a defect", () =>
        Effect.gen(function* () {
          const exit = yield* Effect.gen(function* () {
            yield* insert(t, "defect-a")
            yield* Effect.sync(() => {
              throw new Error("thrown inside")
            })
          }).pipe(Tx.run(), Effect.exit)
          expect(Exit.isFailure(exit) && Cause.isDie(exit.cause)).toBe(true)
          expect(yield* starting("defect-")).toEqual([])
        })
      )

      it.effect("a timeout interrupts the work and rolls back", () =>
        Effect.gen(function* () {
          const inserted = yield* Deferred.make<void>()
          const fiber = yield* Effect.gen(function* () {
            yield* insert(t, "timeout-a")
            yield* Deferred.succeed(inserted, undefined)
            yield* Effect.never
          }).pipe(Tx.run(), Effect.timeout("100 millis"), Effect.either, Effect.fork)
          yield* Deferred.await(inserted)
          yield* TestClock.adjust("1 second")
          const result = yield* Fiber.join(fiber)
          expect(result._tag === "Left" && result.left._tag).toBe("TimeoutException")
          expect(yield* starting("timeout-")).toEqual([])
        })
      )

      it.effect(
        "interruption from another fiber rolls back, and the connection serves the next queries",
        () =>
          Effect.gen(function* () {
            const inserted = yield* Deferred.make<void>()
            const fiber = yield* Effect.gen(function* () {
              yield* insert(t, "interrupt-a")
              yield* Deferred.succeed(inserted, undefined)
              yield* Effect.never
            }).pipe(Tx.run(), Effect.fork)
            yield* Deferred.await(inserted)
            const exit = yield* Fiber.interrupt(fiber)
            expect(Exit.isInterrupted(exit)).toBe(true)
            expect(yield* starting("interrupt-")).toEqual([])
            yield* insert(t, "interrupt-after")
            expect(yield* starting("interrupt-")).toEqual(["interrupt-after"])
          })
      )

      it.effect("scoped begin commits when the scope succeeds and rolls back when it fails", () =>
        Effect.gen(function* () {
          yield* Effect.scoped(
            Effect.gen(function* () {
              const tx = yield* Tx.begin()
              expect(tx.mode).toBe("transaction")
              expect(yield* currentTxId).toEqual(Option.some(tx.id))
              yield* insert(t, "scoped-ok")
            })
          )
          expect(yield* currentTxId).toEqual(Option.none())
          const error = yield* Effect.scoped(
            Effect.gen(function* () {
              yield* Tx.begin()
              yield* insert(t, "scoped-bad")
              return yield* new Boom({ step: "scoped" })
            })
          ).pipe(Effect.flip)
          expect(error._tag).toBe("Boom")
          expect(yield* starting("scoped-")).toEqual(["scoped-ok"])
        })
      )

      it.effect("explicit commit, then commit again or a query fails with TxError finished", () =>
        Effect.gen(function* () {
          yield* Effect.scoped(
            Effect.gen(function* () {
              const tx = yield* Tx.begin()
              yield* insert(t, "explicit-a")
              yield* tx.commit
              const again = yield* Effect.flip(tx.commit)
              expect(again).toBeInstanceOf(TxError)
              expect(again.reason).toBe("finished")
              const late = yield* Effect.flip(insert(t, "explicit-late"))
              expect(late._tag).toBe("DatabaseError")
              expect(late.message).toContain("already committed")
              yield* tx.rollbackIfNotCommitted
              expect((yield* Effect.flip(tx.rollback)).reason).toBe("finished")
            })
          )
          expect(yield* starting("explicit-")).toEqual(["explicit-a"])
        })
      )

      it.effect("explicit rollback and rollbackIfNotCommitted undo the work", () =>
        Effect.gen(function* () {
          yield* Effect.scoped(
            Effect.gen(function* () {
              const tx = yield* Tx.begin()
              yield* insert(t, "rb-a")
              yield* tx.rollback
            })
          )
          yield* Effect.scoped(
            Effect.gen(function* () {
              const tx = yield* Tx.begin()
              yield* insert(t, "rb-b")
              yield* tx.rollbackIfNotCommitted
              yield* tx.rollbackIfNotCommitted
            })
          )
          expect(yield* starting("rb-")).toEqual([])
        })
      )

      it.effect(
        "Tx.layer: the program runs in one transaction, committed on success, rolled back on failure",
        () =>
          Effect.gen(function* () {
            const id = yield* Effect.gen(function* () {
              yield* insert(t, "layer-ok")
              const tx = yield* Tx.Transaction
              expect(yield* currentTxId).toEqual(Option.some(tx.id))
              return tx.id
            }).pipe(Effect.provide(Tx.layer()))
            expect(id).toMatch(/^tx-/)
            const failed = yield* Effect.gen(function* () {
              yield* insert(t, "layer-bad")
              return yield* new Boom({ step: "layer" })
            }).pipe(Effect.provide(Tx.layer()), Effect.either)
            expect(failed._tag).toBe("Left")
            expect(yield* starting("layer-")).toEqual(["layer-ok"])
          })
      )

      it.effect("required joins the current transaction; its rows go with the outer rollback", () =>
        Effect.gen(function* () {
          const error = yield* Effect.gen(function* () {
            const outer = yield* currentTxId
            const inner = yield* Effect.gen(function* () {
              yield* insert(t, "required-inner")
              return yield* currentTxId
            }).pipe(Tx.run({ propagation: "required" }))
            expect(inner).toEqual(outer)
            return yield* new Boom({ step: "outer" })
          }).pipe(Tx.run(), Effect.flip)
          expect(error._tag).toBe("Boom")
          expect(yield* starting("required-")).toEqual([])
        })
      )

      it.effect("nested rolls back only its savepoint; the outer commits the rest", () =>
        Effect.gen(function* () {
          yield* Effect.gen(function* () {
            yield* insert(t, "nested-outer")
            const failed = yield* Effect.gen(function* () {
              yield* insert(t, "nested-failed")
              return yield* new Boom({ step: "nested" })
            }).pipe(Tx.run({ propagation: "nested" }), Effect.either)
            expect(failed._tag).toBe("Left")
            const inner = yield* Effect.gen(function* () {
              yield* insert(t, "nested-kept")
              return yield* currentTxId
            }).pipe(Tx.run({ propagation: "nested" }))
            expect(Option.getOrThrow(inner)).toMatch(/\/sp-\d+$/)
            expect(yield* starting("nested-")).toEqual(["nested-kept", "nested-outer"])
          }).pipe(Tx.run())
          expect(yield* starting("nested-")).toEqual(["nested-kept", "nested-outer"])
        })
      )

      it.effect("nested inside nested, and a released savepoint still goes with the outer rollback", () =>
        Effect.gen(function* () {
          const error = yield* Effect.gen(function* () {
            yield* Effect.gen(function* () {
              yield* insert(t, "deep-1")
              yield* insert(t, "deep-2").pipe(Tx.run({ propagation: "nested" }))
              yield* Effect.zipRight(insert(t, "deep-x"), new Boom({ step: "deep" })).pipe(
                Tx.run({ propagation: "nested" }),
                Effect.ignore
              )
            }).pipe(Tx.run({ propagation: "nested" }))
            expect(yield* starting("deep-")).toEqual(["deep-1", "deep-2"])
            return yield* new Boom({ step: "outer" })
          }).pipe(Tx.run(), Effect.flip)
          expect(error._tag).toBe("Boom")
          expect(yield* starting("deep-")).toEqual([])
        })
      )

      it.effect(
        "a nested transaction waiting for a sibling savepoint can be interrupted; the lock is not lost",
        () =>
          Effect.gen(function* () {
            const holding = yield* Deferred.make<void>()
            const release = yield* Deferred.make<void>()
            yield* Effect.gen(function* () {
              const first = yield* Effect.gen(function* () {
                yield* insert(t, "wait-first")
                yield* Deferred.succeed(holding, undefined)
                yield* Deferred.await(release)
              }).pipe(Tx.run({ propagation: "nested" }), Effect.fork)
              yield* Deferred.await(holding)
              const waiter = yield* insert(t, "wait-second").pipe(
                Tx.run({ propagation: "nested" }),
                Effect.fork
              )
              expect((yield* blocked(waiter))._tag).toBe("Suspended")
              // The waiter holds nothing yet: interrupting it must not wait for the sibling to end.
              expect(Exit.isInterrupted(yield* Fiber.interrupt(waiter))).toBe(true)
              yield* Deferred.succeed(release, undefined)
              yield* Fiber.join(first)
              yield* insert(t, "wait-third").pipe(Tx.run({ propagation: "nested" }))
            }).pipe(Tx.run())
            expect(yield* starting("wait-")).toEqual(["wait-first", "wait-third"])
          })
      )

      it.effect("nested without a transaction begins one", () =>
        Effect.gen(function* () {
          const id = yield* Effect.zipRight(insert(t, "nested-alone"), currentTxId).pipe(
            Tx.run({ propagation: "nested" })
          )
          expect(Option.getOrThrow(id)).toMatch(/^tx-\d+$/)
          expect(yield* starting("nested-alone")).toEqual(["nested-alone"])
        })
      )

      it.effect("supports joins a transaction, or runs without one", () =>
        Effect.gen(function* () {
          // Without a transaction the insert autocommits: the later failure cannot undo it.
          yield* Effect.zipRight(insert(t, "supports-alone"), new Boom({ step: "supports" })).pipe(
            Tx.run({ propagation: "supports" }),
            Effect.ignore
          )
          yield* Effect.gen(function* () {
            const outer = yield* currentTxId
            const inner = yield* Effect.zipRight(insert(t, "supports-joined"), currentTxId).pipe(
              Tx.run({ propagation: "supports" })
            )
            expect(inner).toEqual(outer)
            return yield* new Boom({ step: "outer" })
          }).pipe(Tx.run(), Effect.ignore)
          expect(yield* starting("supports-")).toEqual(["supports-alone"])
        })
      )

      it.effect("mandatory fails without a transaction and joins one", () =>
        Effect.gen(function* () {
          const error = yield* Effect.flip(
            insert(t, "mandatory-alone").pipe(Tx.run({ propagation: "mandatory" }))
          )
          expect(error).toBeInstanceOf(TxError)
          expect(error._tag === "TxError" && error.reason).toBe("mandatory")
          yield* insert(t, "mandatory-joined").pipe(Tx.run({ propagation: "mandatory" }), Tx.run())
          expect(yield* starting("mandatory-")).toEqual(["mandatory-joined"])
        })
      )

      it.effect("never fails inside a transaction and runs without one", () =>
        Effect.gen(function* () {
          const error = yield* insert(t, "never-inside").pipe(
            Tx.run({ propagation: "never" }),
            Tx.run(),
            Effect.flip
          )
          expect(error._tag === "TxError" && error.reason).toBe("never")
          const id = yield* Effect.zipRight(insert(t, "never-alone"), currentTxId).pipe(
            Tx.run({ propagation: "never" })
          )
          expect(id).toEqual(Option.none())
          expect(yield* starting("never-")).toEqual(["never-alone"])
        })
      )

      if (sqlite) {
        it.effect(
          "SQLite: requiresNew and notSupported inside a transaction fail instead of waiting forever",
          () =>
            Effect.gen(function* () {
              for (const propagation of ["requiresNew", "notSupported"] as const) {
                const error = yield* insert(t, "sqlite-new").pipe(
                  Tx.run({ propagation }),
                  Tx.run(),
                  Effect.flip
                )
                expect(error._tag === "TxError" && error.reason).toBe("unsupported")
              }
              yield* insert(t, "sqlite-new-alone").pipe(Tx.run({ propagation: "requiresNew" }))
              expect(yield* starting("sqlite-new")).toEqual(["sqlite-new-alone"])
            })
        )

        it.effect("SQLite: a transaction waiting for the one connection can be interrupted", () =>
          Effect.gen(function* () {
            const holding = yield* Deferred.make<void>()
            const release = yield* Deferred.make<void>()
            const first = yield* Effect.gen(function* () {
              yield* insert(t, "conn-first")
              yield* Deferred.succeed(holding, undefined)
              yield* Deferred.await(release)
            }).pipe(Tx.run(), Effect.fork)
            yield* Deferred.await(holding)
            const waiter = yield* insert(t, "conn-second").pipe(Tx.run(), Effect.fork)
            expect((yield* blocked(waiter))._tag).toBe("Suspended")
            expect(Exit.isInterrupted(yield* Fiber.interrupt(waiter))).toBe(true)
            yield* Deferred.succeed(release, undefined)
            yield* Fiber.join(first)
            yield* insert(t, "conn-third").pipe(Tx.run())
            expect(yield* starting("conn-")).toEqual(["conn-first", "conn-third"])
          })
        )

        it.effect("SQLite: only the serializable level exists; others are a typed error", () =>
          Effect.gen(function* () {
            const error = yield* Effect.flip(
              insert(t, "iso-rc").pipe(Tx.run({ isolation: "read committed" }))
            )
            expect(error._tag === "TxError" && error.reason).toBe("unsupported")
            yield* insert(t, "iso-ser").pipe(Tx.run({ isolation: "serializable" }))
            expect(yield* starting("iso-")).toEqual(["iso-ser"])
          })
        )
      } else {
        it.effect("requiresNew commits on its own connection and survives the outer rollback", () =>
          Effect.gen(function* () {
            yield* Effect.gen(function* () {
              const outer = yield* currentTxId
              yield* insert(t, "new-outer")
              const [inner, seen] = yield* Effect.gen(function* () {
                yield* insert(t, "new-inner")
                return [yield* currentTxId, yield* starting("new-")] as const
              }).pipe(Tx.run({ propagation: "requiresNew" }))
              expect(inner).not.toEqual(outer)
              // Another connection: the outer transaction's uncommitted row is not visible there.
              expect(seen).toEqual(["new-inner"])
              return yield* new Boom({ step: "outer" })
            }).pipe(Tx.run(), Effect.ignore)
            expect(yield* starting("new-")).toEqual(["new-inner"])
          })
        )

        it.effect("notSupported runs outside the transaction: its write survives the outer rollback", () =>
          Effect.gen(function* () {
            yield* Effect.gen(function* () {
              yield* insert(t, "ns-outer")
              const id = yield* Effect.zipRight(insert(t, "ns-outside"), currentTxId).pipe(
                Tx.run({ propagation: "notSupported" })
              )
              expect(id).toEqual(Option.none())
              return yield* new Boom({ step: "outer" })
            }).pipe(Tx.run(), Effect.ignore)
            expect(yield* starting("ns-")).toEqual(["ns-outside"])
          })
        )

        it.effect("every isolation level is accepted", () =>
          Effect.gen(function* () {
            for (const isolation of [
              "read uncommitted",
              "read committed",
              "repeatable read",
              "serializable"
            ] as const) {
              yield* insert(t, `iso-${isolation}`).pipe(Tx.run({ isolation }))
            }
            expect(yield* starting("iso-")).toHaveLength(4)
          })
        )
      }

      it.effect("read-only refuses writes; the next transaction can write again", () =>
        Effect.gen(function* () {
          const error = yield* Effect.flip(insert(t, "ro-write").pipe(Tx.run({ readOnly: true })))
          expect(error._tag).toBe("DatabaseError")
          const seen = yield* starting("ro-").pipe(Tx.run({ readOnly: true }))
          expect(seen).toEqual([])
          yield* insert(t, "ro-after").pipe(Tx.run())
          yield* insert(t, "ro-plain")
          expect(yield* starting("ro-")).toEqual(["ro-after", "ro-plain"])
        })
      )

      it.effect("afterCommit hooks run after commit, outside it; never after a rollback", () =>
        Effect.gen(function* () {
          const log = yield* Ref.make<ReadonlyArray<string>>([])
          const note = (s: string) => Ref.update(log, (l) => [...l, s])
          const executor = yield* Executor
          yield* Effect.gen(function* () {
            yield* insert(t, "hook-a")
            yield* Tx.afterCommit(
              Effect.gen(function* () {
                // Outside the transaction and after COMMIT: the row is there on a fresh connection.
                const seen = yield* starting("hook-").pipe(Effect.orDie)
                const id = yield* currentTxId
                yield* note(`committed ${seen.join(",")} ${Option.isNone(id)}`)
              }).pipe(Effect.provideService(Executor, executor))
            )
            yield* note("work done")
          }).pipe(Tx.run())
          yield* Effect.zipRight(Tx.afterCommit(note("never")), new Boom({ step: "rollback" })).pipe(
            Tx.run(),
            Effect.ignore
          )
          yield* Tx.afterCommit(note("no transaction: now"))
          expect(yield* Ref.get(log)).toEqual(["work done", "committed hook-a true", "no transaction: now"])
        })
      )

      it.effect(
        "a savepoint's hooks join the outer transaction when released, and are dropped when it rolls back",
        () =>
          Effect.gen(function* () {
            const log = yield* Ref.make<ReadonlyArray<string>>([])
            const note = (s: string) => Ref.update(log, (l) => [...l, s])
            yield* Effect.gen(function* () {
              yield* Tx.afterCommit(note("released")).pipe(Tx.run({ propagation: "nested" }))
              yield* Effect.zipRight(Tx.afterCommit(note("dropped")), new Boom({ step: "savepoint" })).pipe(
                Tx.run({ propagation: "nested" }),
                Effect.ignore
              )
              expect(yield* Ref.get(log)).toEqual([])
            }).pipe(Tx.run())
            expect(yield* Ref.get(log)).toEqual(["released"])
            yield* Tx.afterCommit(note("lost with outer")).pipe(
              Tx.run({ propagation: "nested" }),
              Effect.zipRight(new Boom({ step: "outer" })),
              Tx.run(),
              Effect.ignore
            )
            expect(yield* Ref.get(log)).toEqual(["released"])
          })
      )

      it.effect("a span per transaction with commit and rollback events, parent of the query spans", () =>
        Effect.gen(function* () {
          const [, spans] = yield* recordingSpans(
            Effect.gen(function* () {
              yield* insert(t, "span-a")
              yield* Effect.zipRight(insert(t, "span-b"), new Boom({ step: "sp" })).pipe(
                Tx.run({ propagation: "nested" }),
                Effect.ignore
              )
            }).pipe(Tx.run())
          )
          const tx = spans.find((s) => s.name === "db.transaction")
          const sp = spans.find((s) => s.name === "db.savepoint")
          expect(tx).toBeDefined()
          expect(sp).toBeDefined()
          const eventsOf = (s: Tracer.Span | undefined) =>
            (s as unknown as { events: ReadonlyArray<readonly [string]> }).events.map((e) => e[0])
          expect(eventsOf(tx)).toEqual(["db.transaction.commit"])
          expect(eventsOf(sp)).toEqual(["db.savepoint.rollback"])
          expect(Option.map(sp?.parent ?? Option.none(), (p) => p.spanId)).toEqual(Option.some(tx?.spanId))
          const queries = spans.filter((s) => s.name === "sql.execute")
          expect(queries).toHaveLength(2)
          const parents = queries.map((q) => Option.getOrThrow(q.parent).spanId)
          expect(parents).toEqual([tx?.spanId, sp?.spanId])
          expect(tx?.attributes.get("effect_dal.transaction.id")).toMatch(/^tx-/)
        })
      )

      it.effect("scoped begin makes its span the parent of the queries after it", () =>
        Effect.gen(function* () {
          const [, spans] = yield* recordingSpans(
            Effect.scoped(Effect.zipRight(Tx.begin(), insert(t, "span-scoped")))
          )
          const tx = spans.find((s) => s.name === "db.transaction")
          const query = spans.find((s) => s.name === "sql.execute")
          expect(Option.map(query?.parent ?? Option.none(), (p) => p.spanId)).toEqual(Option.some(tx?.spanId))
        })
      )

      it.effect("Tx.retry does not re-run a transaction that failed for another reason", () =>
        Effect.gen(function* () {
          const attempts = yield* Ref.make(0)
          const error = yield* Effect.zipRight(
            Ref.update(attempts, (n) => n + 1),
            new Boom({ step: "retry" })
          ).pipe(Tx.run(), Tx.retry(Schedule.recurs(3)), Effect.flip)
          expect(error._tag).toBe("Boom")
          expect(yield* Ref.get(attempts)).toBe(1)
        })
      )

      if (db.dialect === "pg") {
        it.effect("PostgreSQL: a caught statement failure aborts the transaction; COMMIT is a TxError", () =>
          Effect.gen(function* () {
            const error = yield* Effect.gen(function* () {
              yield* insert(t, "pg-aborted")
              yield* Effect.ignore(exec("SELECT * FROM no_such_table_tx"))
            }).pipe(Tx.run(), Effect.flip)
            expect(error._tag === "TxError" && error.reason).toBe("commit")
            expect(yield* starting("pg-")).toEqual([])
          })
        )

        it.effect(
          "PostgreSQL: a COMMIT refused by a deferred constraint is a TxError, also from an explicit commit",
          () =>
            Effect.gen(function* () {
              const table = `${t.table}_deferred`
              yield* exec(`CREATE TABLE ${table} (k INT UNIQUE DEFERRABLE INITIALLY DEFERRED)`)
              const twice = Effect.zipRight(
                exec(`INSERT INTO ${table} (k) VALUES (1)`),
                exec(`INSERT INTO ${table} (k) VALUES (1)`)
              )
              const error = yield* Effect.flip(twice.pipe(Tx.run()))
              const explicit = yield* Effect.scoped(
                Effect.gen(function* () {
                  const tx = yield* Tx.begin()
                  yield* twice
                  return yield* Effect.flip(tx.commit)
                })
              )
              const left = yield* query(`SELECT COUNT(*) AS c FROM ${table}`)
              yield* exec(`DROP TABLE ${table}`)
              for (const e of [error, explicit]) {
                expect(e).toBeInstanceOf(TxError)
                expect(e._tag === "TxError" && e.reason).toBe("commit")
                expect(e._tag === "TxError" && e.cause).toBeInstanceOf(DatabaseError)
                expect(e._tag === "TxError" && (e.cause as DatabaseError).reason).toBe("unique")
              }
              expect(Number(left[0]?.c)).toBe(0)
            })
        )

        it.effect("PostgreSQL: a savepoint rollback recovers from a failed statement", () =>
          Effect.gen(function* () {
            yield* Effect.gen(function* () {
              yield* insert(t, "pg-kept")
              yield* exec("SELECT * FROM no_such_table_tx").pipe(
                Tx.run({ propagation: "nested" }),
                Effect.ignore
              )
              yield* insert(t, "pg-kept-2")
            }).pipe(Tx.run())
            expect(yield* starting("pg-kept")).toEqual(["pg-kept", "pg-kept-2"])
          })
        )
      }

      it.effect(
        "a failed statement reaches the caller as the classified DatabaseError, after the rollback",
        () =>
          Effect.gen(function* () {
            const error = yield* errorOf(
              Effect.zipRight(insert(t, "sqlerr-a"), exec("SELECT * FROM no_such_table_tx")).pipe(Tx.run())
            )
            expect(error).toBeInstanceOf(DatabaseError)
            expect(yield* starting("sqlerr-")).toEqual([])
          })
      )
    })
  })
}
