/**
 * @effect/sql code composed with this library's transactions, through the Database's own
 * `SqlClient`: the template tag, `SqlSchema`, `SqlResolver` and `Model.makeRepository` inside
 * `Tx.run` run on the transaction's connection (see its writes, roll back with it, no hang on
 * SQLite), outside it on the pool; `withTransaction` is the library's engine. With two databases,
 * the second database's client never joins the first one's transaction.
 */
import * as Model from "@effect/sql/Model"
import * as SqlClient from "@effect/sql/SqlClient"
import { SqlError as DriverError } from "@effect/sql/SqlError"
import * as SqlResolver from "@effect/sql/SqlResolver"
import * as SqlSchema from "@effect/sql/SqlSchema"
import { describe, expect, layer } from "@effect/vitest"
import { Chunk, Context, Data, Deferred, Effect, Fiber, Layer, Option, Schema, Stream } from "effect"
import { Executor, type ExecutorService } from "../../src/Query/Executor.js"
import * as Tx from "../../src/Tx/Tx.js"
import { TxError } from "../../src/Tx/TxError.js"
import { testDatabases } from "../support/databases.js"
import { currentTxId, insert, items, names } from "./fixtures.js"

class Boom extends Data.TaggedError("Boom")<{ readonly step: string }> {}

class Item extends Model.Class<Item>("Item")({
  id: Model.Generated(Schema.Number),
  name: Schema.String
}) {}

const Row = Schema.Struct({ id: Schema.Number, name: Schema.String })

/** The four @effect/sql styles, each writing or reading `table` through the client in context. */
const styles = (table: string) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const repository = yield* Model.makeRepository(Item, {
      tableName: table,
      spanPrefix: "Item",
      idColumn: "id"
    })
    const byName = SqlSchema.findAll({
      Request: Schema.String,
      Result: Row,
      execute: (prefix) =>
        sql`SELECT id, name FROM ${sql(table)} WHERE name LIKE ${`${prefix}%`} ORDER BY name`
    })
    const insertVoid = SqlSchema.void({
      Request: Schema.String,
      execute: (name) => sql`INSERT INTO ${sql(table)} (name) VALUES (${name})`
    })
    const resolver = yield* SqlResolver.findById("ItemByName", {
      Id: Schema.String,
      Result: Row,
      ResultId: (row) => row.name,
      execute: (names) => sql`SELECT id, name FROM ${sql(table)} WHERE ${sql.in("name", names)}`
    })
    const template = (name: string) => sql`INSERT INTO ${sql(table)} (name) VALUES (${name})`
    const count = (prefix: string) =>
      Effect.map(
        sql<{
          readonly n: number | string
        }>`SELECT COUNT(*) AS n FROM ${sql(table)} WHERE name LIKE ${`${prefix}%`}`,
        (rows) => Number(rows[0]?.n)
      )
    return { sql, repository, byName, insertVoid, resolver, template, count }
  })

for (const db of testDatabases({ maxConnections: 2 })) {
  const t = items("tx_sqlclient", db.dialect)
  const starting = (prefix: string) => Effect.map(names(t), (all) => all.filter((n) => n.startsWith(prefix)))

  describe.skipIf(!db.available)(`${db.label}: the Database's SqlClient joins Tx.run`, () => {
    layer(Layer.provideMerge(t.layer, db.layer), { timeout: "30 seconds" })((it) => {
      it.effect(
        "template, SqlSchema, SqlResolver and Model.makeRepository see and share the transaction",
        () =>
          Effect.gen(function* () {
            const s = yield* styles(t.table)
            const error = yield* Effect.gen(function* () {
              yield* insert(t, "join-builder")
              yield* s.template("join-template")
              yield* s.insertVoid("join-schema")
              const made = yield* s.repository.insert(Item.insert.make({ name: "join-model" }))
              // Each style reads what the others wrote in this transaction.
              expect(yield* s.count("join-")).toBe(4)
              expect((yield* s.byName("join-")).map((r) => r.name)).toEqual([
                "join-builder",
                "join-model",
                "join-schema",
                "join-template"
              ])
              const found = yield* Effect.all(
                [s.resolver.execute("join-builder"), s.resolver.execute("join-template")],
                { batching: true }
              )
              expect(found.map(Option.map((r) => r.name))).toEqual([
                Option.some("join-builder"),
                Option.some("join-template")
              ])
              expect(Option.map(yield* s.repository.findById(made.id), (r) => r.name)).toEqual(
                Option.some("join-model")
              )
              // And the builders read what @effect/sql wrote.
              expect(yield* starting("join-")).toHaveLength(4)
              return yield* new Boom({ step: "after all four" })
            }).pipe(Tx.run(), Effect.flip)
            expect(error._tag).toBe("Boom")
            // All rolled back together.
            expect(yield* s.count("join-")).toBe(0)
            expect(yield* starting("join-")).toEqual([])
          })
      )

      it.effect("committed together when the transaction commits", () =>
        Effect.gen(function* () {
          const s = yield* styles(t.table)
          yield* Effect.gen(function* () {
            yield* s.template("commit-template")
            yield* s.repository.insertVoid(Item.insert.make({ name: "commit-model" }))
            yield* insert(t, "commit-builder")
          }).pipe(Tx.run())
          expect(yield* starting("commit-")).toEqual(["commit-builder", "commit-model", "commit-template"])
        })
      )

      if (db.dialect !== "sqlite") {
        it.effect(
          "outside the transaction the client runs on the pool: it does not see uncommitted rows",
          () =>
            Effect.gen(function* () {
              const s = yield* styles(t.table)
              const written = yield* Deferred.make<void>()
              const checked = yield* Deferred.make<number>()
              const fiber = yield* Effect.fork(
                Effect.gen(function* () {
                  yield* s.template("pool-inside")
                  yield* Deferred.succeed(written, undefined)
                  yield* Deferred.await(checked)
                }).pipe(Tx.run())
              )
              yield* Deferred.await(written)
              // This fiber holds no transaction: its statement runs on another pooled connection.
              yield* Deferred.succeed(checked, yield* s.count("pool-"))
              yield* Fiber.join(fiber)
              expect(yield* Deferred.await(checked)).toBe(0)
              expect(yield* s.count("pool-")).toBe(1)
            })
        )
      }

      if (db.dialect === "pg") {
        it.effect("a row stream of the client inside Tx.run reads on the transaction's connection", () =>
          Effect.gen(function* () {
            const s = yield* styles(t.table)
            const streamed = yield* Effect.gen(function* () {
              yield* insert(t, "stream-a")
              yield* s.template("stream-b")
              return yield* Stream.runCollect(
                s.sql<{
                  readonly name: string
                }>`SELECT name FROM ${s.sql(t.table)} WHERE name LIKE ${"stream-%"} ORDER BY name`.stream
              )
            }).pipe(Tx.run())
            expect(Chunk.toReadonlyArray(streamed).map((r) => r.name)).toEqual(["stream-a", "stream-b"])
          })
        )
      }

      it.effect("withTransaction is the library's: nested is a savepoint, Tx.run inside joins it", () =>
        Effect.gen(function* () {
          const s = yield* styles(t.table)
          const outer = yield* s.sql.withTransaction(
            Effect.gen(function* () {
              yield* s.template("wt-outer")
              const id = yield* currentTxId
              // A nested withTransaction is a savepoint: its failure undoes only its own work.
              yield* s.sql
                .withTransaction(Effect.zipRight(s.template("wt-inner"), new Boom({ step: "inner" })))
                .pipe(Effect.ignore)
              // Tx.run (required) joins the client's transaction.
              const joined = yield* Effect.zipRight(insert(t, "wt-builder"), currentTxId).pipe(Tx.run())
              expect(joined).toEqual(id)
              return id
            })
          )
          expect(Option.isSome(outer)).toBe(true)
          expect(yield* starting("wt-")).toEqual(["wt-builder", "wt-outer"])
        })
      )

      it.effect(
        "SqlResolver batched across concurrent fibers inside Tx.run reads the transaction's rows",
        () =>
          Effect.gen(function* () {
            const s = yield* styles(t.table)
            const wanted = ["fb-1", "fb-2", "fb-3", "fb-absent"]
            const found = yield* Effect.gen(function* () {
              yield* Effect.forEach(wanted.slice(0, 3), (name) => insert(t, name), { discard: true })
              return yield* Effect.forEach(wanted, (name) => s.resolver.execute(name), {
                concurrency: "unbounded",
                batching: true
              })
            }).pipe(Tx.run())
            expect(found.map(Option.map((r) => r.name))).toEqual([
              Option.some("fb-1"),
              Option.some("fb-2"),
              Option.some("fb-3"),
              Option.none()
            ])
          })
      )

      if (db.dialect !== "sqlite") {
        it.effect(
          "requiresNew inside Tx.run: the client follows the new transaction, then the outer one again",
          () =>
            Effect.gen(function* () {
              const s = yield* styles(t.table)
              const error = yield* Effect.gen(function* () {
                yield* s.template("rn-outer")
                const outerId = yield* currentTxId
                const seen = yield* Effect.gen(function* () {
                  yield* s.template("rn-new")
                  expect(yield* currentTxId).not.toEqual(outerId)
                  // Its own write, not the outer transaction's uncommitted one.
                  return yield* s.count("rn-")
                }).pipe(Tx.run({ propagation: "requiresNew" }))
                expect(seen).toBe(1)
                // Back in the outer transaction: its own row and the committed new one.
                expect(yield* s.count("rn-")).toBe(2)
                yield* s.sql.withTransaction(s.template("rn-savepoint"))
                return yield* new Boom({ step: "outer" })
              }).pipe(Tx.run(), Effect.flip)
              expect(error._tag).toBe("Boom")
              expect(yield* starting("rn-")).toEqual(["rn-new"])
            })
        )
      }

      it.effect(
        "a failure of withTransaction's own COMMIT is @effect/sql's SqlError carrying the TxError",
        () =>
          Effect.gen(function* () {
            const s = yield* styles(t.table)
            const error = yield* s.sql
              .withTransaction(
                Effect.gen(function* () {
                  yield* s.template("wtc-a")
                  // A joined unit that rolls back marks the transaction rollback-only: the COMMIT refuses.
                  yield* Effect.scoped(Effect.flatMap(Tx.begin(), (tx) => tx.rollback))
                })
              )
              .pipe(Effect.flip)
            expect(error).toBeInstanceOf(DriverError)
            expect((error as DriverError).cause).toBeInstanceOf(TxError)
            expect(((error as DriverError).cause as TxError).reason).toBe("commit")
            expect(yield* starting("wtc-")).toEqual([])
            // The work's own TxError passes unchanged.
            const own = yield* s.sql
              .withTransaction(Tx.run(Effect.void, { propagation: "never" }))
              .pipe(Effect.flip)
            expect(own).toBeInstanceOf(TxError)
            expect((own as TxError).reason).toBe("never")
          })
      )
    })
  })
}

class Maria extends Context.Tag("test/Tx/sqlClient/Maria")<Maria, ExecutorService>() {}
class MariaSql extends Context.Tag("test/Tx/sqlClient/MariaSql")<MariaSql, SqlClient.SqlClient>() {}

const all = testDatabases()
const lite = all.find((d) => d.dialect === "sqlite")
const maria = all.find((d) => d.dialect === "mysql")
if (lite === undefined || maria === undefined) throw new Error("test databases missing")
const tl = items("tx_sqlclient_two", "sqlite")
const tm = items("tx_sqlclient_two", "mysql")

describe.skipIf(!maria.available)(
  "SQLite + MariaDB: each database's SqlClient joins only its own transactions",
  () => {
    const databases = Layer.mergeAll(
      Layer.provideMerge(tl.layer, lite.layer),
      Layer.effectContext(
        Effect.map(Effect.all([Executor, SqlClient.SqlClient]), ([executor, sql]) =>
          Context.make(Maria, executor).pipe(Context.add(MariaSql, sql))
        )
      ).pipe(Layer.provide(Layer.provideMerge(tm.layer, maria.layer)))
    )
    const onMaria = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
      Effect.flatMap(Maria, (executor) => Effect.provideService(effect, Executor, executor))
    const inMaria = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
      Effect.flatMap(MariaSql, (sql) => Effect.provideService(effect, SqlClient.SqlClient, sql))
    const startingIn = (t: typeof tl, prefix: string) =>
      Effect.map(names(t), (rows) => rows.filter((n) => n.startsWith(prefix)))

    layer(databases, { timeout: "30 seconds" })((it) => {
      it.effect("in a SQLite transaction, MariaDB's client (all four styles) runs outside it", () =>
        Effect.gen(function* () {
          const liteStyles = yield* styles(tl.table)
          const mariaStyles = yield* inMaria(styles(tm.table))
          const error = yield* Effect.gen(function* () {
            yield* liteStyles.template("a-lite")
            yield* mariaStyles.template("a-maria-template")
            yield* mariaStyles.insertVoid("a-maria-schema")
            yield* mariaStyles.repository.insertVoid(Item.insert.make({ name: "a-maria-model" }))
            const found = yield* mariaStyles.resolver.execute("a-maria-template")
            expect(Option.isSome(found)).toBe(true)
            expect(yield* onMaria(currentTxId)).toEqual(Option.none())
            return yield* new Boom({ step: "sqlite" })
          }).pipe(Tx.run(), Effect.flip)
          expect(error._tag).toBe("Boom")
          expect(yield* startingIn(tl, "a-")).toEqual([])
          expect(yield* onMaria(startingIn(tm, "a-"))).toEqual([
            "a-maria-model",
            "a-maria-schema",
            "a-maria-template"
          ])
        })
      )

      it.effect("in a MariaDB transaction, MariaDB's client joins and SQLite's client does not", () =>
        Effect.gen(function* () {
          const liteStyles = yield* styles(tl.table)
          const mariaStyles = yield* inMaria(styles(tm.table))
          const error = yield* onMaria(
            Effect.gen(function* () {
              yield* mariaStyles.template("b-maria-template")
              yield* mariaStyles.repository.insertVoid(Item.insert.make({ name: "b-maria-model" }))
              yield* liteStyles.template("b-lite")
              yield* liteStyles.insertVoid("b-lite-schema")
              return yield* new Boom({ step: "maria" })
            }).pipe(Tx.run())
          ).pipe(Effect.flip)
          expect(error._tag).toBe("Boom")
          expect(yield* onMaria(startingIn(tm, "b-"))).toEqual([])
          expect(yield* startingIn(tl, "b-")).toEqual(["b-lite", "b-lite-schema"])
        })
      )

      it.effect("MariaDB's withTransaction holds SQLite's client outside it, and the reverse", () =>
        Effect.gen(function* () {
          const liteStyles = yield* styles(tl.table)
          const mariaStyles = yield* inMaria(styles(tm.table))
          yield* mariaStyles.sql
            .withTransaction(
              Effect.gen(function* () {
                yield* mariaStyles.template("c-maria")
                yield* liteStyles.template("c-lite")
                return yield* new Boom({ step: "maria" })
              })
            )
            .pipe(Effect.ignore)
          expect(yield* onMaria(startingIn(tm, "c-"))).toEqual([])
          expect(yield* startingIn(tl, "c-")).toEqual(["c-lite"])
          yield* liteStyles.sql
            .withTransaction(
              Effect.gen(function* () {
                yield* liteStyles.template("d-lite")
                yield* mariaStyles.template("d-maria")
                return yield* new Boom({ step: "sqlite" })
              })
            )
            .pipe(Effect.ignore)
          expect(yield* startingIn(tl, "d-")).toEqual([])
          expect(yield* onMaria(startingIn(tm, "d-"))).toEqual(["d-maria"])
        })
      )
    })
  }
)
