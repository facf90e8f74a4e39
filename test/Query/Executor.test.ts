/**
 * The middleware mechanism of the Executor, on a real (in-memory SQLite) database: order, layering,
 * per-effect addition, short-circuit, rewrite and failure mapping.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import { assert, describe, layer } from "@effect/vitest"
import { Effect, Layer, Ref, Schema } from "effect"
import * as Database from "../../src/Layers/Database.js"
import * as Executor from "../../src/Query/Executor.js"
import { QueryBuildError, type QueryError, UnsafeDmlError } from "../../src/Query/QueryError.js"
import * as Select from "../../src/Query/Select.js"
import * as Entity from "../../src/Schema/Entity.js"
import { execute, recorder, session, statement } from "../Middleware/support.js"
import { uniqueName } from "../support/databases.js"

const table = uniqueName("executor_items")

class Item extends Schema.Class<Item>("Item")(
  { id: Schema.Number, name: Schema.String },
  Entity.table(table)
) {}

const fixtures = Layer.effectDiscard(
  Effect.flatMap(SqlClient.SqlClient, (sql) =>
    Effect.zipRight(
      sql.unsafe(`CREATE TABLE ${table} (id INTEGER PRIMARY KEY, name TEXT NOT NULL)`),
      sql.unsafe(`INSERT INTO ${table} (id, name) VALUES (1, 'one'), (2, 'two'), (3, 'three')`)
    )
  )
)

const database = Layer.provideMerge(fixtures, Database.layer({ url: "sqlite::memory:" }))

/** A middleware that writes `name>` before calling next and `<name` after it returns. */
const tracing = (trail: Ref.Ref<ReadonlyArray<string>>, name: string): Executor.Middleware => {
  const note = (s: string) => Ref.update(trail, (all) => [...all, s])
  return (next) => (ctx) => Effect.zipRight(note(`${name}>`), Effect.zipLeft(next(ctx), note(`<${name}`)))
}

const allItems = Select.from(Item).orderBy("id").getMulti()

describe("Executor middleware", () => {
  layer(database)((it) => {
    it.effect(
      "the first listed is the outermost: each sees the call on the way in and the result on the way out",
      () =>
        Effect.gen(function* () {
          const trail = yield* Ref.make<ReadonlyArray<string>>([])
          const rows = yield* Effect.provide(
            allItems,
            Executor.layerMiddleware(tracing(trail, "a"), tracing(trail, "b"), tracing(trail, "c"))
          )
          assert.deepStrictEqual(yield* Ref.get(trail), ["a>", "b>", "c>", "<c", "<b", "<a"])
          assert.deepStrictEqual(
            rows.map((r) => r.name),
            ["one", "two", "three"]
          )
        })
    )

    it.effect("a middleware Layer provided over another wraps it", () =>
      Effect.gen(function* () {
        const trail = yield* Ref.make<ReadonlyArray<string>>([])
        const stacked = Layer.provide(
          Executor.layerMiddleware(tracing(trail, "outer")),
          Executor.layerMiddleware(tracing(trail, "inner"))
        )
        yield* Effect.provide(allItems, stacked)
        assert.deepStrictEqual(yield* Ref.get(trail), ["outer>", "inner>", "<inner", "<outer"])
      })
    )

    it.effect("withMiddleware adds outside the installed chain, for that effect only", () =>
      Effect.gen(function* () {
        const trail = yield* Ref.make<ReadonlyArray<string>>([])
        yield* Effect.provide(
          Effect.zipRight(Executor.withMiddleware(tracing(trail, "scoped"))(allItems), allItems),
          Executor.layerMiddleware(tracing(trail, "installed"))
        )
        assert.deepStrictEqual(yield* Ref.get(trail), [
          "scoped>",
          "installed>",
          "<installed",
          "<scoped",
          "installed>",
          "<installed"
        ])
      })
    )

    it.effect("the context carries type, model, table, the compiled statement and the builder's node", () =>
      Effect.gen(function* () {
        const seen = yield* Ref.make<ReadonlyArray<Executor.QueryContext>>([])
        const capture: Executor.Middleware = (next) => (ctx) =>
          Effect.zipRight(
            Ref.update(seen, (all) => [...all, ctx]),
            next(ctx)
          )
        yield* Executor.withMiddleware(capture)(
          Select.from(Item)
            .where((i) => i.id.gt(1))
            .getMulti()
        )
        const [ctx] = yield* Ref.get(seen)
        if (ctx === undefined) return assert.fail("no query seen")
        assert.strictEqual(ctx.type, "SELECT")
        assert.strictEqual(ctx.table, table)
        assert.strictEqual(ctx.model?.table, table)
        assert.strictEqual(ctx.statement.sql, `SELECT "id", "name" FROM "${table}" WHERE "id" > ?`)
        assert.deepStrictEqual(ctx.statement.params, [1])
        assert.deepStrictEqual(ctx.statement.paramFields?.[0]?.field, "id")
        assert.strictEqual(ctx.description._tag, "Select")
      })
    )

    it.effect("a middleware may answer by itself: nothing reaches the database", () =>
      Effect.gen(function* () {
        const inner = yield* recorder
        const answer: Executor.Middleware = (next) => (ctx) =>
          ctx.type === "SELECT"
            ? Effect.succeed({ _tag: "Rows", rows: [{ id: 42, name: "from cache" }] })
            : next(ctx)
        const rows = yield* Effect.provide(allItems, Executor.layerMiddleware(answer, inner.middleware))
        assert.deepStrictEqual(rows, [new Item({ id: 42, name: "from cache" })])
        assert.deepStrictEqual(yield* inner.seen, [])
      })
    )

    it.effect("a middleware may rewrite the statement; what it hands on is what runs", () =>
      Effect.gen(function* () {
        const inner = yield* recorder
        const onlyTwo: Executor.Middleware = (next) => (ctx) =>
          next({
            ...ctx,
            statement: { sql: `${ctx.statement.sql} WHERE "id" = ?`, params: [...ctx.statement.params, 2] }
          })
        const rows = yield* Effect.provide(
          Select.from(Item).getMulti(),
          Executor.layerMiddleware(onlyTwo, inner.middleware)
        )
        assert.deepStrictEqual(
          rows.map((r) => r.name),
          ["two"]
        )
        assert.deepStrictEqual(yield* inner.seen, [`SELECT "id", "name" FROM "${table}" WHERE "id" = ?`])
      })
    )

    it.effect("a middleware may map a failure into another error of the family, keeping the cause", () =>
      Effect.gen(function* () {
        const remap: Executor.Middleware = (next) => (ctx) =>
          Effect.catchTag(next(ctx), "DatabaseError", (e) =>
            Effect.fail(new QueryBuildError({ reason: `remapped: ${e.reason}`, cause: e }))
          )
        const s = yield* session
        const error = yield* Executor.withMiddleware(remap)(
          execute(statement(s, "SELECT * FROM no_such_table_here"))
        ).pipe(Effect.flip)
        assert.strictEqual(error._tag, "QueryBuildError")
        assert.strictEqual((error as QueryBuildError).reason, "remapped: other")
        assert.strictEqual(((error as QueryBuildError).cause as QueryError)._tag, "DatabaseError")
      })
    )

    it.effect("a middleware may recover from a failure with a result", () =>
      Effect.gen(function* () {
        const empty: Executor.Middleware = (next) => (ctx) =>
          Effect.catchTag(next(ctx), "DatabaseError", () =>
            Effect.succeed({ _tag: "Rows" as const, rows: [] })
          )
        const s = yield* session
        const result = yield* Executor.withMiddleware(empty)(
          execute(statement(s, "SELECT * FROM no_such_table_here"))
        )
        assert.deepStrictEqual(result, { _tag: "Rows", rows: [] })
      })
    )

    it.effect(
      "a middleware may refuse before the database: inner middleware and the driver never see it",
      () =>
        Effect.gen(function* () {
          const inner = yield* recorder
          const refuse: Executor.Middleware = (next) => (ctx) =>
            ctx.type === "DELETE"
              ? Effect.fail(new UnsafeDmlError({ table: ctx.table, type: "DELETE", reason: "test" }))
              : next(ctx)
          const s = yield* session
          const error = yield* Effect.provide(
            execute(statement(s, `DELETE FROM ${table}`, [], { type: "DELETE", table })),
            Executor.layerMiddleware(refuse, inner.middleware)
          ).pipe(Effect.flip)
          assert.strictEqual(error._tag, "UnsafeDmlError")
          assert.deepStrictEqual(yield* inner.seen, [])
          assert.strictEqual((yield* allItems).length, 3)
        })
    )
  })
})
