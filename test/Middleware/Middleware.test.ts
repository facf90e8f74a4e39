import { assert, describe, expectTypeOf, layer } from "@effect/vitest"
import { Context, Duration, Effect, Exit, Fiber, Layer, Ref, TestClock } from "effect"
import * as Database from "../../src/Layers/Database.js"
import * as Middleware from "../../src/Middleware/Middleware.js"
import * as Executor from "../../src/Query/Executor.js"
import { delay, execute, recorder, session, statement } from "./support.js"

class Prefix extends Context.Tag("test/Prefix")<Prefix, string>() {}

const database = Database.layer({ url: "sqlite::memory:" })

describe("Middleware helpers", () => {
  layer(database)((it) => {
    it.effect("observe sees each outcome with its duration on Effect's clock, and leaves results alone", () =>
      Effect.gen(function* () {
        const outcomes = yield* Ref.make<ReadonlyArray<Middleware.Outcome>>([])
        const observer = Middleware.observe((o) => Ref.update(outcomes, (all) => [...all, o]))
        const s = yield* session
        const fiber = yield* Effect.fork(
          Effect.provide(
            Effect.all([
              execute(statement(s, "SELECT 1 AS one")),
              Effect.either(execute(statement(s, "SELECT * FROM missing_table")))
            ]),
            Executor.layerMiddleware(observer, delay("2 seconds"))
          )
        )
        yield* TestClock.adjust("4 seconds")
        const [ok] = yield* Fiber.join(fiber)
        assert.deepStrictEqual(ok, { _tag: "Rows", rows: [{ one: 1 }] })
        const [first, second] = yield* Ref.get(outcomes)
        assert.isTrue(first !== undefined && Exit.isSuccess(first.exit))
        assert.strictEqual(Duration.toMillis(first?.duration ?? Duration.zero), 2000)
        assert.isTrue(second !== undefined && Exit.isFailure(second.exit))
        assert.strictEqual(second?.ctx.statement.sql, "SELECT * FROM missing_table")
      })
    )

    it.effect("observe sees an interruption", () =>
      Effect.gen(function* () {
        const outcomes = yield* Ref.make<ReadonlyArray<Middleware.Outcome>>([])
        const observer = Middleware.observe((o) => Ref.update(outcomes, (all) => [...all, o]))
        const s = yield* session
        const fiber = yield* Effect.fork(
          Effect.provide(
            execute(statement(s, "SELECT 1")),
            Executor.layerMiddleware(observer, delay("1 hour"))
          )
        )
        yield* TestClock.adjust("1 second")
        yield* Fiber.interrupt(fiber)
        const [outcome] = yield* Ref.get(outcomes)
        assert.isTrue(outcome !== undefined && Exit.isInterrupted(outcome.exit))
      })
    )

    it.effect("when applies a middleware to the queries it selects only", () =>
      Effect.gen(function* () {
        const inner = yield* recorder
        const s = yield* session
        yield* Effect.provide(
          Effect.all([
            execute(statement(s, "SELECT 1")),
            execute(statement(s, "SELECT 2", [], { table: "t" }))
          ]),
          Executor.layerMiddleware(Middleware.when((ctx) => ctx.table === "t", inner.middleware))
        )
        assert.deepStrictEqual(yield* inner.seen, ["SELECT 2"])
      })
    )

    it.effect(
      "layerEffect builds a middleware from services; its requirement shows in the Layer's type",
      () =>
        Effect.gen(function* () {
          const prefixing = Middleware.layerEffect(
            Effect.map(
              Prefix,
              (prefix): Executor.Middleware =>
                (next) =>
                (ctx) =>
                  next({ ...ctx, statement: { ...ctx.statement, sql: `${prefix} ${ctx.statement.sql}` } })
            )
          )
          expectTypeOf(prefixing).toEqualTypeOf<
            Layer.Layer<Executor.Executor, never, Executor.Executor | Prefix>
          >()
          const s = yield* session
          const result = yield* Effect.provide(
            execute(statement(s, "1 AS one", [], { expects: "rows" })),
            Layer.provide(prefixing, Layer.succeed(Prefix, "SELECT"))
          )
          assert.deepStrictEqual(result, { _tag: "Rows", rows: [{ one: 1 }] })
        })
    )
  })
})
