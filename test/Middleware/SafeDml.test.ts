import * as SqlClient from "@effect/sql/SqlClient"
import { assert, describe, layer } from "@effect/vitest"
import { Effect, Either, Layer, Schema } from "effect"
import * as Database from "../../src/Layers/Database.js"
import * as SafeDml from "../../src/Middleware/SafeDml.js"
import type { DeleteNode, UpdateNode } from "../../src/Query/Ast.js"
import * as Compiler from "../../src/Query/Compiler.js"
import * as Executor from "../../src/Query/Executor.js"
import type { ExprNode } from "../../src/Query/Expr.js"
import * as Entity from "../../src/Schema/Entity.js"
import { uniqueName } from "../support/databases.js"
import { execute, recorder, session, statement } from "./support.js"

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

const source = { _tag: "Table", schema: Post, alias: undefined } as const
const byId = (id: number): ExprNode => ({
  _tag: "Binary",
  op: "=",
  left: { _tag: "Column", source: undefined, field: "id" },
  right: { _tag: "Value", value: id }
})

const updateNode = (where: ExprNode | undefined): UpdateNode => ({
  _tag: "Update",
  table: source,
  set: [{ field: "title", value: { _tag: "Value", value: "changed" } }],
  where,
  returning: undefined
})

const deleteNode = (where: ExprNode | undefined): DeleteNode => ({
  _tag: "Delete",
  from: source,
  where,
  returning: undefined
})

/** The context the Update/Delete builders hand the Executor: compiled once, node attached. */
const contextOf = (node: UpdateNode | DeleteNode) =>
  Effect.gen(function* () {
    const s = yield* session
    const compiled = Compiler.compile(s.dialect, s.registry, (w) =>
      node._tag === "Update" ? Compiler.update(w, node) : Compiler.del(w, node)
    )
    if (Either.isLeft(compiled)) return yield* Effect.die(compiled.left)
    const { statement: st, model } = compiled.right
    const ctx: Executor.QueryContext = {
      type: node._tag === "Update" ? "UPDATE" : "DELETE",
      model,
      table: model.table,
      statement: st,
      builder: node,
      expects: "exec",
      session: s
    }
    return ctx
  })

const titles = Effect.flatMap(SqlClient.SqlClient, (sql) =>
  sql.unsafe<{ title: string }>(`SELECT title FROM ${table} ORDER BY id`)
).pipe(Effect.map((rows) => rows.map((r) => r.title)))

/** Runs `ctx` under `guard`, with a recorder inside it standing for "reached the database". */
const guarded = (guard: Executor.Middleware, ctx: Executor.QueryContext) =>
  Effect.gen(function* () {
    const inner = yield* recorder
    const result = yield* Effect.either(
      Effect.provide(execute(ctx), Executor.layerMiddleware(guard, inner.middleware))
    )
    return { result, reached: yield* inner.seen }
  })

describe("SafeDml", () => {
  layer(database)((it) => {
    it.effect("an UPDATE without WHERE fails with UnsafeDmlError and never reaches the database", () =>
      Effect.gen(function* () {
        const { result, reached } = yield* guarded(SafeDml.make, yield* contextOf(updateNode(undefined)))
        assert.isTrue(Either.isLeft(result))
        if (Either.isLeft(result)) {
          assert.strictEqual(result.left._tag, "UnsafeDmlError")
          assert.include(result.left.message, `Refused UPDATE on ${table}`)
        }
        assert.deepStrictEqual(reached, [])
        assert.deepStrictEqual(yield* titles, ["a", "b", "c"])
      })
    )

    it.effect("a DELETE without WHERE, or with an AND of nothing, is refused the same way", () =>
      Effect.gen(function* () {
        for (const where of [
          undefined,
          { _tag: "And", operands: [{ _tag: "And", operands: [] }] } as const
        ]) {
          const { result, reached } = yield* guarded(SafeDml.make, yield* contextOf(deleteNode(where)))
          assert.strictEqual(Either.isLeft(result) ? result.left._tag : "ran", "UnsafeDmlError")
          assert.deepStrictEqual(reached, [])
        }
        assert.deepStrictEqual(yield* titles, ["a", "b", "c"])
      })
    )

    it.effect("a statement with a WHERE goes through", () =>
      Effect.gen(function* () {
        const { result, reached } = yield* guarded(SafeDml.make, yield* contextOf(updateNode(byId(2))))
        assert.isTrue(Either.isRight(result))
        assert.strictEqual(reached.length, 1)
        assert.deepStrictEqual(yield* titles, ["a", "changed", "c"])
      })
    )

    it.effect("SafeDml.allow lets the statement it wraps touch every row", () =>
      Effect.gen(function* () {
        const ctx = yield* contextOf(updateNode(undefined))
        const { result } = yield* SafeDml.allow(guarded(SafeDml.make, ctx))
        assert.isTrue(
          Either.isRight(result) && result.right._tag === "Exec" && result.right.rowsAffected === 3
        )
        // Outside `allow` the same statement is refused again.
        const again = yield* guarded(SafeDml.make, ctx)
        assert.isTrue(Either.isLeft(again.result))
      })
    )

    it.effect("an UPDATE or DELETE node without a where field at all is treated as unconditional", () =>
      Effect.gen(function* () {
        const s = yield* session
        const ctx = statement(s, `DELETE FROM ${table} WHERE id = 1`, [], {
          type: "DELETE",
          table,
          builder: { _tag: "SomethingElse" }
        })
        assert.isTrue(SafeDml.isUnconditional(ctx))
        assert.isFalse(SafeDml.isUnconditional(yield* contextOf(deleteNode(byId(1)))))
      })
    )

    it.effect("noDelete refuses every DELETE, built or raw, even inside allow; other writes pass", () =>
      Effect.gen(function* () {
        const s = yield* session
        const built = yield* SafeDml.allow(guarded(SafeDml.noDelete, yield* contextOf(deleteNode(byId(1)))))
        const raw = yield* guarded(SafeDml.noDelete, statement(s, `  delete FROM ${table} WHERE id = 1`))
        for (const { result, reached } of [built, raw]) {
          assert.strictEqual(Either.isLeft(result) ? result.left._tag : "ran", "UnsafeDmlError")
          assert.deepStrictEqual(reached, [])
        }
        const update = yield* guarded(SafeDml.noDelete, yield* contextOf(updateNode(byId(3))))
        assert.isTrue(Either.isRight(update.result))
        assert.strictEqual((yield* titles).length, 3)
      })
    )
  })
})
