/**
 * Streams are first-class, and values are bound by the server on every path: run on SQLite, MariaDB
 * and PostgreSQL.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import { describe, expect, layer } from "@effect/vitest"
import { Chunk, Effect, Exit, Layer, Ref, Schema, Stream } from "effect"
import * as QueryLog from "../../src/Middleware/QueryLog.js"
import * as SafeDml from "../../src/Middleware/SafeDml.js"
import * as Tracing from "../../src/Middleware/Tracing.js"
import * as Delete from "../../src/Query/Delete.js"
import * as Executor from "../../src/Query/Executor.js"
import * as Insert from "../../src/Query/Insert.js"
import { UnsafeDmlError } from "../../src/Query/QueryError.js"
import * as Raw from "../../src/Query/Raw.js"
import * as Select from "../../src/Query/Select.js"
import * as Entity from "../../src/Schema/Entity.js"
import * as Tx from "../../src/Tx/Tx.js"
import { captureLogs, recordingTracer } from "../Middleware/support.js"
import { testDatabases, uniqueName } from "../support/databases.js"

const table = uniqueName("stream_items")
const victim = uniqueName("stream_victim")

class Item extends Schema.Class<Item>("Item")(
  { id: Schema.Number, name: Schema.String },
  Entity.table(table)
) {}

const names = (stream: Stream.Stream<Item, unknown, Executor.Executor>) =>
  Effect.map(Stream.runCollect(Stream.map(stream, (i) => i.name)), Chunk.toReadonlyArray)

const victimExists = Effect.flatMap(SqlClient.SqlClient, (sql) =>
  Effect.map(Effect.exit(sql.unsafe(`SELECT COUNT(*) AS n FROM ${victim}`)), Exit.isSuccess)
)

for (const db of testDatabases()) {
  const fixtures = Layer.scopedDiscard(
    Effect.acquireRelease(
      Effect.gen(function* () {
        const sql = yield* SqlClient.SqlClient
        yield* sql.unsafe(`CREATE TABLE ${table} (id INT PRIMARY KEY, name VARCHAR(200) NOT NULL)`)
        yield* sql.unsafe(`CREATE TABLE ${victim} (id INT PRIMARY KEY)`)
        yield* sql.unsafe(`INSERT INTO ${table} (id, name) VALUES (1, 'a'), (2, 'b'), (3, 'c')`)
      }),
      () =>
        Effect.flatMap(SqlClient.SqlClient, (sql) =>
          Effect.all([sql.unsafe(`DROP TABLE ${table}`), sql.unsafe(`DROP TABLE IF EXISTS ${victim}`)])
        ).pipe(Effect.orDie)
    )
  )

  describe.skipIf(!db.available)(`${db.label}: streams`, () => {
    layer(Layer.provideMerge(fixtures, db.layer), { timeout: "30 seconds" })((it) => {
      it.effect("a stream inside a transaction runs on its connection and sees its own writes", () =>
        Effect.gen(function* () {
          // On SQLite the stream would otherwise wait forever for the one connection the transaction holds.
          const inside = yield* Ref.make<ReadonlyArray<string>>([])
          yield* Effect.gen(function* () {
            yield* Insert.into(Item)
              .values(new Item({ id: 11, name: "mine" }))
              .exec()
            yield* Ref.set(inside, yield* names(Select.from(Item).orderBy("id").stream()))
            return yield* Effect.fail("undo")
          }).pipe(Tx.run(), Effect.ignore)
          expect(yield* Ref.get(inside)).toEqual(["a", "b", "c", "mine"])
          // Rolled back: outside the transaction the row is gone.
          expect(yield* names(Select.from(Item).orderBy("id").stream())).toEqual(["a", "b", "c"])
        })
      )

      it.effect("a stream goes through the middleware chain: a check refuses it, an observer sees it", () =>
        Effect.gen(function* () {
          const refuseStreams: Executor.Middleware = Executor.middleware(
            (next) => next,
            () => (ctx) =>
              Stream.fail(new UnsafeDmlError({ table: ctx.table, type: "DELETE", reason: "no streams" }))
          )
          const refused = yield* Effect.flip(
            names(Select.from(Item).stream()).pipe(Executor.withMiddleware(refuseStreams))
          )
          expect(refused).toMatchObject({ _tag: "UnsafeDmlError", reason: "no streams" })

          // A middleware written without a stream form still sees the stream's statement and rows.
          const seen = yield* Ref.make<ReadonlyArray<string>>([])
          const plain: Executor.Middleware = (next) => (ctx) =>
            Effect.tap(next(ctx), (result) =>
              Ref.update(seen, (all) => [...all, `${ctx.type} ${ctx.table} ${result.rows.length}`])
            )
          const rows = yield* names(Select.from(Item).orderBy("id").stream()).pipe(
            Executor.withMiddleware(plain)
          )
          expect(rows).toEqual(["a", "b", "c"])
          expect(yield* Ref.get(seen)).toEqual([`SELECT ${table} 3`])
        })
      )

      it.effect(
        "QueryLog logs a stream once it ends, with its row count; Tracing gives it one client span",
        () =>
          Effect.gen(function* () {
            const entries: Array<QueryLog.Entry> = []
            const { spans, tracer } = recordingTracer()
            const rows = yield* names(Select.from(Item).orderBy("id").stream()).pipe(
              Executor.withMiddleware(
                Tracing.make(),
                QueryLog.make({ sink: (e) => Effect.sync(() => void entries.push(e)) })
              ),
              Effect.withTracer(tracer)
            )
            expect(rows).toEqual(["a", "b", "c"])
            expect(entries.map((e) => [e.type, e.table, e.rows])).toEqual([["SELECT", table, 3]])
            expect(spans.map((s) => s.name)).toEqual([`SELECT ${table}`])
            expect(spans[0]?.kind).toBe("client")
          })
      )

      it.effect("SafeDml and its peers see streams too: the default logger line comes once", () =>
        Effect.gen(function* () {
          const logs = captureLogs()
          yield* names(Select.from(Item).stream()).pipe(
            Executor.withMiddleware(SafeDml.make, QueryLog.make()),
            Effect.provide(logs.layer)
          )
          expect(logs.lines.filter((l) => l.annotations["query.table"] === table)).toHaveLength(1)
        })
      )

      it.effect("raw text with several statements is refused before it reaches the database", () =>
        Effect.gen(function* () {
          const error = yield* Effect.flip(Raw.query(`SELECT 1; DROP TABLE ${victim}`).exec())
          expect(error).toMatchObject({ _tag: "QueryBuildError" })
          const commented = yield* Effect.flip(
            Raw.query(`SELECT 1 /* ; */ ; -- x\n DROP TABLE ${victim}`).getMulti()
          )
          expect(commented).toMatchObject({ _tag: "QueryBuildError" })
          expect(yield* victimExists).toBe(true)
        })
      )

      it.effect("Raw.script runs each statement on its own, through the middleware, all or nothing", () =>
        Effect.gen(function* () {
          const results = yield* Raw.script(
            `INSERT INTO ${table} (id, name) VALUES (20, 'semi;colon'); -- a comment; with semicolons\n` +
              `UPDATE ${table} SET name = 'x;y' WHERE id = 20;;`
          )
          expect(results.map((r) => r.rowsAffected)).toEqual([1, 1])
          expect(
            (yield* Select.from(Item)
              .where((i) => i.id.eq(20))
              .get()).name
          ).toBe("x;y")
          // noDelete sees the second statement: the script fails and the first is undone.
          const refused = yield* Effect.flip(
            Raw.script(
              `INSERT INTO ${table} (id, name) VALUES (21, 'n'); DELETE FROM ${table} WHERE id = 20`
            ).pipe(Executor.withMiddleware(SafeDml.noDelete))
          )
          expect(refused).toMatchObject({ _tag: "UnsafeDmlError" })
          expect(
            yield* Select.from(Item)
              .where((i) => i.id.in([20, 21]))
              .getMulti()
          ).toHaveLength(1)
          yield* Delete.from(Item)
            .where((i) => i.id.eq(20))
            .exec()
        })
      )

      it.effect(
        "hostile values are bound by the server on every path: get, getMulti, stream, exec, Raw",
        () =>
          Effect.gen(function* () {
            const hostile = [
              `x' ; DROP TABLE ${victim}; -- `,
              `x\\' ; DROP TABLE ${victim}; -- `,
              `\\'; DROP TABLE ${victim}; #`,
              "'; SELECT 1; --"
            ]
            const run = Effect.forEach(hostile, (value) =>
              Effect.gen(function* () {
                expect(
                  yield* Select.from(Item)
                    .where((i) => i.name.eq(value))
                    .getMulti()
                ).toEqual([])
                expect(
                  yield* Effect.flip(
                    Select.from(Item)
                      .where((i) => i.name.eq(value))
                      .get()
                  )
                ).toMatchObject({
                  _tag: "NoRowsError"
                })
                expect(
                  yield* names(
                    Select.from(Item)
                      .where((i) => i.name.eq(value))
                      .stream()
                  )
                ).toEqual([])
                expect(
                  yield* Raw.query(`SELECT id FROM ${table} WHERE name = ?`, [value]).getMulti()
                ).toEqual([])
                yield* Insert.into(Item)
                  .values(new Item({ id: 100, name: value }))
                  .exec()
                const back = yield* Select.from(Item)
                  .where((i) => i.id.eq(100))
                  .get()
                expect(back.name).toBe(value)
                yield* Delete.from(Item)
                  .where((i) => i.name.eq(value))
                  .exec()
              })
            )
            if (db.dialect === "mysql") {
              // Client-side escaping is unaware of this mode: only server-side binding is safe under it.
              yield* Effect.gen(function* () {
                yield* Raw.query("SET SESSION sql_mode = 'NO_BACKSLASH_ESCAPES'").exec()
                yield* run
              }).pipe(Tx.run())
            } else {
              yield* run
            }
            expect(yield* victimExists).toBe(true)
          })
      )

      // Defined for MariaDB only: its driver is the one that could interpolate on the client.
      if (db.dialect === "mysql") {
        it.effect(
          "the database's SqlClient never runs two statements in one call on MariaDB, prepared or not",
          () =>
            Effect.gen(function* () {
              const sql = yield* SqlClient.SqlClient
              const two = `SELECT 1 AS one; DROP TABLE ${victim}`
              for (const attempt of [
                sql.unsafe(two).raw,
                sql.unsafe(two).unprepared,
                sql.unsafe(two).withoutTransform
              ]) {
                expect(Exit.isFailure(yield* Effect.exit(attempt))).toBe(true)
              }
              // Unprepared text with values (what @effect/sql's Model sends): each statement bound by the server.
              const results = yield* sql.unsafe("SELECT ? AS a; SELECT ? AS b", [
                `x'; DROP TABLE ${victim}; -- `,
                2
              ]).unprepared
              expect(results[1]).toEqual([{ b: 2 }])
              expect(yield* victimExists).toBe(true)
            })
        )
      }
    })
  })
}
