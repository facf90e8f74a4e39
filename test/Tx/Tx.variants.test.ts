/**
 * Variants of the Tx classes: two databases of the same dialect where only one is in a
 * transaction, `sql.reserve` inside a transaction, and interruption in the middle of a statement.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import { describe, expect, layer } from "@effect/vitest"
import { Clock, Context, Data, Deferred, Effect, Fiber, Layer, Option } from "effect"
import * as Database from "../../src/Layers/Database.js"
import { Executor, type ExecutorService } from "../../src/Query/Executor.js"
import * as Tx from "../../src/Tx/Tx.js"
import { testDatabases } from "../support/databases.js"
import { blocked, currentTxId, insert, items, names, query } from "./fixtures.js"

class Boom extends Data.TaggedError("Boom")<{ readonly step: string }> {}

class Other extends Context.Tag("test/Tx/Other")<Other, ExecutorService>() {}
class OtherSql extends Context.Tag("test/Tx/OtherSql")<OtherSql, SqlClient.SqlClient>() {}

const onOther = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.flatMap(Other, (executor) => Effect.provideService(effect, Executor, executor))

const ta = items("tx_same_a", "sqlite")
const tb = items("tx_same_b", "sqlite")

const twoSqlite = Layer.mergeAll(
  Layer.provideMerge(ta.layer, Database.layer({ url: "sqlite::memory:" })),
  Layer.effectContext(
    Effect.map(Effect.all([Executor, SqlClient.SqlClient]), ([executor, sql]) =>
      Context.make(Other, executor).pipe(Context.add(OtherSql, sql))
    )
  ).pipe(Layer.provide(Layer.provideMerge(tb.layer, Database.layer({ url: "sqlite::memory:" }))))
)

describe("two SQLite databases: only one is in the transaction", () => {
  layer(twoSqlite, { timeout: "30 seconds" })((it) => {
    it.effect("the other database's builders and client run outside it, without waiting", () =>
      Effect.gen(function* () {
        const other = yield* OtherSql
        const error = yield* Effect.gen(function* () {
          yield* insert(ta, "s-a")
          yield* onOther(insert(tb, "s-b-builder"))
          yield* other`INSERT INTO ${other(tb.table)} (name) VALUES (${"s-b-client"})`
          expect(yield* onOther(currentTxId)).toEqual(Option.none())
          return yield* new Boom({ step: "a" })
        }).pipe(Tx.run(), Effect.flip)
        expect(error._tag).toBe("Boom")
        expect(yield* names(ta)).toEqual([])
        expect(yield* onOther(names(tb))).toEqual(["s-b-builder", "s-b-client"])
      })
    )
  })
})

for (const db of testDatabases({ maxConnections: 1 })) {
  const t = items("tx_variants", db.dialect)
  describe.skipIf(!db.available)(`${db.label} (pool of 1): Tx variants`, () => {
    layer(Layer.provideMerge(t.layer, db.layer), { timeout: "30 seconds" })((it) => {
      it.effect("sql.reserve inside Tx.run is the transaction's connection", () =>
        Effect.gen(function* () {
          const sql = yield* SqlClient.SqlClient
          const error = yield* Effect.gen(function* () {
            yield* insert(t, "r-builder")
            const rows = yield* Effect.scoped(
              Effect.flatMap(sql.reserve, (conn) =>
                conn.execute(`SELECT name FROM ${t.table} WHERE name = 'r-builder'`, [], undefined)
              )
            )
            expect(rows).toHaveLength(1)
            return yield* new Boom({ step: "reserve" })
          }).pipe(Tx.run(), Effect.flip)
          expect(error._tag).toBe("Boom")
          expect(yield* names(t)).toEqual([])
        })
      )

      if (db.dialect !== "sqlite") {
        it.effect(
          "interrupted mid-statement: rolled back once the statement ends, the one connection usable",
          () =>
            Effect.gen(function* () {
              const sleep = db.dialect === "pg" ? "SELECT pg_sleep(2)" : "SELECT SLEEP(2)"
              const written = yield* Deferred.make<void>()
              const fiber = yield* Effect.fork(
                Effect.gen(function* () {
                  yield* insert(t, "i-written")
                  yield* Deferred.succeed(written, undefined)
                  yield* query(sleep)
                }).pipe(Tx.run())
              )
              yield* Deferred.await(written)
              // Suspended now means waiting for the sleep's reply: the interruption lands mid-statement.
              yield* blocked(fiber)
              yield* Fiber.interrupt(fiber)
              expect(yield* names(t)).toEqual([])
              yield* insert(t, "i-after")
              expect(yield* names(t)).toEqual(["i-after"])
            }).pipe(
              // The driver's own cancel waits on the real clock (PostgreSQL's asks the pool for a
              // second connection and gives up after 5 s): a test clock would stall it forever.
              Effect.withClock(Clock.make())
            )
        )
      }
    })
  })
}
