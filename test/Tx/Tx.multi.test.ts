/**
 * Two databases in one program (SQLite and MariaDB): a transaction belongs to the database of the
 * Executor it was begun on and never captures the other database's queries.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import { describe, expect, layer } from "@effect/vitest"
import { Context, Data, Effect, Layer, Option } from "effect"
import { Executor, type ExecutorService } from "../../src/Query/Executor.js"
import * as Tx from "../../src/Tx/Tx.js"
import { testDatabases } from "../support/databases.js"
import { currentTxId, insert, items, names } from "./fixtures.js"

class Boom extends Data.TaggedError("Boom")<{ readonly step: string }> {}

class Maria extends Context.Tag("test/Tx/Maria")<Maria, ExecutorService>() {}
class MariaSql extends Context.Tag("test/Tx/MariaSql")<MariaSql, SqlClient.SqlClient>() {}

const all = testDatabases()
const lite = all.find((d) => d.dialect === "sqlite")
const maria = all.find((d) => d.dialect === "mysql")
if (lite === undefined || maria === undefined) throw new Error("test databases missing")

const tl = items("tx_multi", "sqlite")
const tm = items("tx_multi", "mysql")

/** `effect` with MariaDB as the Executor. */
const onMaria = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.flatMap(Maria, (executor) => Effect.provideService(effect, Executor, executor))

const databases = Layer.mergeAll(
  Layer.provideMerge(tl.layer, lite.layer),
  Layer.effectContext(
    Effect.map(Effect.all([Executor, SqlClient.SqlClient]), ([executor, sql]) =>
      Context.make(Maria, executor).pipe(Context.add(MariaSql, sql))
    )
  ).pipe(Layer.provide(Layer.provideMerge(tm.layer, maria.layer)))
)

const starting = (t: typeof tl, prefix: string) =>
  Effect.map(names(t), (rows) => rows.filter((n) => n.startsWith(prefix)))

describe.skipIf(!maria.available)("SQLite + MariaDB: Tx", () => {
  layer(databases, { timeout: "30 seconds" })((it) => {
    it.effect("a SQLite transaction does not capture MariaDB queries", () =>
      Effect.gen(function* () {
        const error = yield* Effect.gen(function* () {
          yield* insert(tl, "a-lite")
          yield* onMaria(insert(tm, "a-maria"))
          expect(yield* onMaria(currentTxId)).toEqual(Option.none())
          return yield* new Boom({ step: "sqlite" })
        }).pipe(Tx.run(), Effect.flip)
        expect(error._tag).toBe("Boom")
        expect(yield* starting(tl, "a-")).toEqual([])
        expect(yield* onMaria(starting(tm, "a-"))).toEqual(["a-maria"])
      })
    )

    it.effect(
      "a MariaDB transaction does not capture SQLite queries (which would fail there: no such table)",
      () =>
        Effect.gen(function* () {
          const sqliteExecutor = yield* Executor
          const error = yield* onMaria(
            Effect.gen(function* () {
              yield* insert(tm, "b-maria")
              yield* insert(tl, "b-lite").pipe(Effect.provideService(Executor, sqliteExecutor))
              return yield* new Boom({ step: "maria" })
            }).pipe(Tx.run())
          ).pipe(Effect.flip)
          expect(error._tag).toBe("Boom")
          expect(yield* onMaria(starting(tm, "b-"))).toEqual([])
          expect(yield* starting(tl, "b-")).toEqual(["b-lite"])
        })
    )

    it.effect("a transaction on each database at once: each commits or rolls back on its own", () =>
      Effect.gen(function* () {
        const sqliteExecutor = yield* Executor
        const onLite = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
          Effect.provideService(effect, Executor, sqliteExecutor)
        yield* Effect.gen(function* () {
          const outer = yield* currentTxId
          yield* insert(tl, "c-lite")
          // `required` on MariaDB begins its own transaction: the SQLite one is not MariaDB's.
          const inner = yield* onMaria(
            Effect.gen(function* () {
              yield* insert(tm, "c-maria")
              yield* onLite(insert(tl, "c-lite-2"))
              return yield* currentTxId
            }).pipe(Tx.run())
          )
          expect(Option.isSome(inner)).toBe(true)
          expect(inner).not.toEqual(outer)
          return yield* new Boom({ step: "sqlite" })
        }).pipe(Tx.run(), Effect.ignore)
        expect(yield* starting(tl, "c-")).toEqual([])
        expect(yield* onMaria(starting(tm, "c-"))).toEqual(["c-maria"])

        yield* Effect.gen(function* () {
          yield* insert(tl, "d-lite")
          yield* onMaria(
            Effect.zipRight(insert(tm, "d-maria"), new Boom({ step: "maria" })).pipe(Tx.run(), Effect.ignore)
          )
        }).pipe(Tx.run())
        expect(yield* starting(tl, "d-")).toEqual(["d-lite"])
        expect(yield* onMaria(starting(tm, "d-"))).toEqual([])
      })
    )

    it.effect("inside @effect/sql's own MariaDB transaction, SQLite queries still go to SQLite", () =>
      Effect.gen(function* () {
        const sql = yield* MariaSql
        const error = yield* sql
          .withTransaction(
            Effect.gen(function* () {
              yield* insert(tl, "e-lite")
              return yield* new Boom({ step: "maria" })
            })
          )
          .pipe(Effect.flip)
        expect(error._tag).toBe("Boom")
        expect(yield* starting(tl, "e-")).toEqual(["e-lite"])
      })
    )
  })
})
