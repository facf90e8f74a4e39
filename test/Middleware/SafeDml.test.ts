import * as SqlClient from "@effect/sql/SqlClient"
import { assert, describe, layer } from "@effect/vitest"
import { Effect, Either, Layer, Schema } from "effect"
import * as Database from "../../src/Layers/Database.js"
import * as SafeDml from "../../src/Middleware/SafeDml.js"
import * as Delete from "../../src/Query/Delete.js"
import * as Executor from "../../src/Query/Executor.js"
import type { ExprNode } from "../../src/Query/Expr.js"
import * as Expr from "../../src/Query/Expr.js"
import * as Raw from "../../src/Query/Raw.js"
import * as Select from "../../src/Query/Select.js"
import * as Update from "../../src/Query/Update.js"
import * as Entity from "../../src/Schema/Entity.js"
import { testDatabases, uniqueName } from "../support/databases.js"
import { recorder, session, statement } from "./support.js"

const table = uniqueName("safedml_posts")

class Post extends Schema.Class<Post>("Post")(
  { id: Schema.Number, title: Schema.String },
  Entity.table(table)
) {}

const fixtures = Layer.effectDiscard(
  Effect.flatMap(SqlClient.SqlClient, (sql) =>
    Effect.zipRight(
      sql.unsafe(`CREATE TABLE ${table} (id INTEGER PRIMARY KEY, title TEXT NOT NULL)`),
      sql.unsafe(`INSERT INTO ${table} VALUES (1, 'a'), (2, 'b'), (3, 'c')`)
    )
  )
)

const database = Layer.provideMerge(fixtures, Database.layer({ url: "sqlite::memory:" }))

const titles = Effect.flatMap(SqlClient.SqlClient, (sql) =>
  sql.unsafe<{ title: string }>(`SELECT title FROM ${table} ORDER BY id`)
).pipe(Effect.map((rows) => rows.map((r) => r.title)))

/** Runs `effect` under `guard`, with a recorder inside it standing for "reached the database". */
const guarded = <A, E>(guard: Executor.Middleware, effect: Effect.Effect<A, E, Executor.Executor>) =>
  Effect.gen(function* () {
    const inner = yield* recorder
    const result = yield* Effect.either(
      Effect.provide(effect, Executor.layerMiddleware(guard, inner.middleware))
    )
    return { result, reached: yield* inner.seen }
  })

const tagOf = <A, E>(either: Either.Either<A, E>) =>
  Either.isLeft(either) && typeof either.left === "object" && either.left !== null && "_tag" in either.left
    ? either.left._tag
    : "ran"

describe("SafeDml", () => {
  layer(database)((it) => {
    it.effect("an UPDATE without WHERE fails with UnsafeDmlError and never reaches the database", () =>
      Effect.gen(function* () {
        const { result, reached } = yield* guarded(
          SafeDml.make,
          Update.table(Post).set({ title: "x" }).exec()
        )
        assert.strictEqual(tagOf(result), "UnsafeDmlError")
        if (Either.isLeft(result)) assert.include(result.left.message, `Refused UPDATE on ${table}`)
        assert.deepStrictEqual(reached, [])
        assert.deepStrictEqual(yield* titles, ["a", "b", "c"])
      })
    )

    it.effect("a DELETE without WHERE, or with an AND of nothing, is refused the same way", () =>
      Effect.gen(function* () {
        for (const statement of [Delete.from(Post), Delete.from(Post).where(() => Expr.and(Expr.and()))]) {
          const { result, reached } = yield* guarded(SafeDml.make, statement.exec())
          assert.strictEqual(tagOf(result), "UnsafeDmlError")
          assert.deepStrictEqual(reached, [])
        }
        assert.deepStrictEqual(yield* titles, ["a", "b", "c"])
      })
    )

    it.effect("a statement with a WHERE goes through", () =>
      Effect.gen(function* () {
        const { result, reached } = yield* guarded(
          SafeDml.make,
          Update.table(Post)
            .set({ title: "changed" })
            .where((p) => p.id.eq(2))
            .exec()
        )
        assert.strictEqual(tagOf(result), "ran")
        assert.strictEqual(reached.length, 1)
        assert.deepStrictEqual(yield* titles, ["a", "changed", "c"])
      })
    )

    it.effect("SafeDml.allow lets the statement it wraps touch every row", () =>
      Effect.gen(function* () {
        const everyRow = Update.table(Post).set({ title: "all" })
        const { result } = yield* guarded(SafeDml.make, SafeDml.allow(everyRow.exec()))
        assert.strictEqual(Either.isRight(result) ? result.right.rowsAffected : -1, 3)
        // Outside `allow` the same statement is refused again.
        const again = yield* guarded(SafeDml.make, everyRow.exec())
        assert.strictEqual(tagOf(again.result), "UnsafeDmlError")
      })
    )

    it.effect("a raw fragment in a WHERE is taken to depend on the row, unless it is a literal truth", () =>
      Effect.gen(function* () {
        const s = yield* session
        const ctx = (where: ExprNode) =>
          statement(s, `DELETE FROM ${table} WHERE id = 1`, [], {
            type: "DELETE",
            table,
            description: {
              _tag: "Delete",
              node: {
                _tag: "Delete",
                from: { _tag: "Table", schema: Post, alias: undefined },
                where,
                returning: undefined
              }
            }
          })
        assert.isFalse(SafeDml.isUnconditional(ctx(Expr.raw("id = ?", 1).node)))
        assert.isTrue(SafeDml.isUnconditional(ctx(Expr.raw("1 = 1").node)))
        assert.isTrue(SafeDml.isUnconditional(ctx(Expr.raw(" TRUE ").node)))
      })
    )

    it.effect("noDelete refuses every DELETE, built or raw, even inside allow; other writes pass", () =>
      Effect.gen(function* () {
        const built = yield* guarded(
          SafeDml.noDelete,
          SafeDml.allow(
            Delete.from(Post)
              .where((p) => p.id.eq(1))
              .exec()
          )
        )
        const raw = yield* guarded(
          SafeDml.noDelete,
          Raw.query(`  delete FROM ${table} WHERE id = ?`, [1]).exec()
        )
        for (const { result, reached } of [built, raw]) {
          assert.strictEqual(tagOf(result), "UnsafeDmlError")
          assert.deepStrictEqual(reached, [])
        }
        const update = yield* guarded(
          SafeDml.noDelete,
          Update.table(Post)
            .set({ title: "kept" })
            .where((p) => p.id.eq(3))
            .exec()
        )
        assert.strictEqual(tagOf(update.result), "ran")
        assert.strictEqual((yield* titles).length, 3)
      })
    )
  })
})

const guardedTable = uniqueName("safedml_rows")

class Row extends Schema.Class<Row>("Row")(
  { id: Schema.Number, name: Schema.String, note: Schema.NullOr(Schema.String) },
  Entity.table(guardedTable)
) {}

for (const db of testDatabases()) {
  const rows = Layer.scopedDiscard(
    Effect.acquireRelease(
      Effect.flatMap(SqlClient.SqlClient, (sql) =>
        Effect.zipRight(
          sql.unsafe(
            `CREATE TABLE ${guardedTable} (id INT PRIMARY KEY, name VARCHAR(20) NOT NULL, note VARCHAR(20))`
          ),
          sql.unsafe(`INSERT INTO ${guardedTable} VALUES (1, 'a', NULL), (2, 'b', 'x'), (3, 'c', NULL)`)
        )
      ),
      () =>
        Effect.orDie(Effect.flatMap(SqlClient.SqlClient, (sql) => sql.unsafe(`DROP TABLE ${guardedTable}`)))
    )
  )
  const count = Effect.map(Select.from(Row).getMulti(), (all) => all.length)

  describe.skipIf(!db.available)(`${db.label}: SafeDml decides on the statement's description`, () => {
    layer(Layer.provideMerge(rows, db.layer), { timeout: "30 seconds" })((it) => {
      it.effect("a WHERE that is constant-true after simplification is refused, and nothing is written", () =>
        Effect.gen(function* () {
          const C = Expr.columns(Row)
          const constantTrue: ReadonlyArray<Expr.Predicate> = [
            C("id").notIn([]),
            Expr.not(Expr.or()),
            Expr.not(C("id").in([])),
            Expr.or(C("id").eq(1), Expr.not(C("id").eq(1))),
            Expr.or(C("note").isNull(), C("note").isNotNull()),
            Expr.or(C("id").eq(2), Expr.and()),
            Expr.and(Expr.and(), Expr.not(Expr.not(Expr.and()))),
            C("id").isNotNull(),
            C("id").eq(C("id")),
            C("name").like("%"),
            Expr.value(1).eq(1),
            Expr.not(Expr.value(1).eq(2)),
            Expr.raw("1 = 1"),
            Expr.exists(Select.from(Row).columns("id"))
          ]
          for (const where of constantTrue) {
            const deleted = yield* guarded(SafeDml.make, Delete.from(Row).where(where).exec())
            const updated = yield* guarded(
              SafeDml.make,
              Update.table(Row).set({ name: "z" }).where(where).exec()
            )
            for (const { result, reached } of [deleted, updated]) {
              assert.strictEqual(tagOf(result), "UnsafeDmlError", JSON.stringify(where.node))
              assert.deepStrictEqual(reached, [])
            }
          }
          assert.strictEqual(yield* count, 3)
        })
      )

      it.effect("conditions that narrow go through: the same forms over the row", () =>
        Effect.gen(function* () {
          const C = Expr.columns(Row)
          const narrowing: ReadonlyArray<Expr.Predicate> = [
            C("id").in([99]),
            Expr.and(C("id").notIn([]), C("id").eq(99)),
            Expr.not(C("id").notIn([97, 99])),
            Expr.raw("id = ? OR id = ?", 98, 99),
            Expr.and(C("note").isNull(), C("id").gt(50)),
            Expr.or(Expr.value(1).eq(2), C("id").eq(99))
          ]
          for (const where of narrowing) {
            const { result } = yield* guarded(SafeDml.make, Delete.from(Row).where(where).exec())
            assert.strictEqual(tagOf(result), "ran", JSON.stringify(where.node))
          }
          assert.strictEqual(yield* count, 3)
        })
      )

      it.effect("RAW UPDATE/DELETE without WHERE are refused past comments, CTEs and parentheses", () =>
        Effect.gen(function* () {
          const texts = [
            `/* tag */ DELETE FROM ${guardedTable}`,
            `-- sqlcommenter\nUPDATE ${guardedTable} SET name = 'z'`,
            `WITH t AS (SELECT 1 AS one) DELETE FROM ${guardedTable}`,
            `/* a */ -- b\n  delete\n  from ${guardedTable}`
          ]
          for (const text of texts) {
            const { result, reached } = yield* guarded(SafeDml.make, Raw.query(text).exec())
            assert.strictEqual(tagOf(result), "UnsafeDmlError", text)
            assert.deepStrictEqual(reached, [])
          }
          assert.strictEqual(yield* count, 3)
        })
      )

      it.effect("noDelete refuses a DELETE however it is dressed, and DDL whose writes cannot be named", () =>
        Effect.gen(function* () {
          const texts = [
            `/* tag */ DELETE FROM ${guardedTable} WHERE id = 1`,
            `WITH gone AS (SELECT 1 AS id) DELETE FROM ${guardedTable} WHERE id IN (SELECT id FROM gone)`,
            `-- x\n DeLeTe FROM ${guardedTable} WHERE id = 1`,
            `DROP TABLE IF EXISTS ${guardedTable}_never`
          ]
          for (const text of texts) {
            const { result, reached } = yield* guarded(SafeDml.noDelete, Raw.query(text).exec())
            assert.strictEqual(tagOf(result), "UnsafeDmlError", text)
            assert.deepStrictEqual(reached, [])
          }
          const read = yield* guarded(
            SafeDml.noDelete,
            Raw.query(`SELECT 'DELETE FROM x' AS a FROM ${guardedTable} /* DELETE */`).getMulti()
          )
          assert.strictEqual(tagOf(read.result), "ran")
          assert.strictEqual(yield* count, 3)
        })
      )
    })
  })
}
