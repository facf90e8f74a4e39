import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber, Layer, Metric, Option, Ref, Schema, TestClock } from "effect"
import * as Cache from "../../src/Cache/Cache.js"
import * as M from "../../src/Cache/internal/patternMetrics.js"
import * as RateLimited from "../../src/Cache/RateLimited.js"
import * as ReadThrough from "../../src/Cache/ReadThrough.js"

class Limited extends ReadThrough.Tag("test/RateLimited/Limited")<
  Limited,
  string,
  RateLimited.RateLimitedError
>() {}
class Strings extends Cache.Tag("test/RateLimited/Strings")<Strings, string>() {}
const strings = Cache.layerSchema(Strings, Schema.String).pipe(Layer.provide(Cache.layerTest))
class WithDefault extends ReadThrough.Tag("test/RateLimited/WithDefault")<WithDefault, string>() {}

const counting = (calls: Ref.Ref<number>) => (key: string) =>
  Effect.as(
    Ref.update(calls, (n) => n + 1),
    Option.some(`v${key}`)
  )

const limitedStack = (guard: Layer.Layer<Limited, never, Limited>, calls: Ref.Ref<number>) =>
  guard.pipe(
    Layer.provide(ReadThrough.layer(Limited, Strings, { loader: counting(calls) })),
    Layer.provideMerge(strings)
  )

const defaultStack = (guard: Layer.Layer<WithDefault, never, WithDefault>, calls: Ref.Ref<number>) =>
  guard.pipe(
    Layer.provide(ReadThrough.layer(WithDefault, Strings, { loader: counting(calls) })),
    Layer.provideMerge(strings)
  )

describe("RateLimited", () => {
  it.effect("refused loads fail fast with RateLimitedError; hits are never limited", () =>
    Effect.gen(function* () {
      const calls = yield* Ref.make(0)
      const program = Effect.gen(function* () {
        const rt = yield* Limited
        const results = yield* Effect.forEach(["1", "2", "3", "4", "5", "6"], (key) =>
          Effect.either(rt.get(key))
        )
        const refused = results.filter((r) => r._tag === "Left")
        assert.strictEqual(refused.length, 3)
        for (const r of refused) assert.instanceOf(r.left, RateLimited.RateLimitedError)
        // The three loaded keys are hits now, served whatever the limiter says.
        for (const key of ["1", "2", "3"]) assert.deepStrictEqual(yield* rt.get(key), Option.some(`v${key}`))
        const limited = yield* Metric.value(Metric.tagged(M.rateLimited, "cache", "test/RateLimited/Limited"))
        assert.strictEqual(limited.count, 3)
      })
      yield* program.pipe(
        Effect.provide(limitedStack(RateLimited.layer(Limited, { limit: 3, interval: "1 minute" }), calls))
      )
      assert.strictEqual(yield* Ref.get(calls), 3)
    })
  )

  it.effect("with a fallback, a refused load answers the default, which is not stored", () =>
    Effect.gen(function* () {
      const calls = yield* Ref.make(0)
      const guard = RateLimited.layerFallback(WithDefault, {
        limit: 1,
        interval: "1 minute",
        fallback: (key) => Option.some(`default ${key}`)
      })
      yield* Effect.gen(function* () {
        const rt = yield* WithDefault
        const cache = yield* Strings
        assert.deepStrictEqual(yield* rt.get("a"), Option.some("va"))
        assert.deepStrictEqual(yield* rt.get("b"), Option.some("default b"))
        assert.isFalse(yield* cache.has("b"))
        assert.deepStrictEqual(yield* rt.get("b"), Option.some("default b"))
      }).pipe(Effect.provide(defaultStack(guard, calls)))
      assert.strictEqual(yield* Ref.get(calls), 1)
    })
  )

  it.effect("maxWait lets a load wait for a permit instead of failing (TestClock)", () =>
    Effect.gen(function* () {
      const calls = yield* Ref.make(0)
      const guard = RateLimited.layer(Limited, { limit: 2, interval: "200 millis", maxWait: "2 seconds" })
      const loading = yield* Effect.fork(
        Effect.gen(function* () {
          const rt = yield* Limited
          return yield* Effect.forEach(["1", "2", "3", "4"], (key) => rt.get(key))
        }).pipe(Effect.provide(limitedStack(guard, calls)))
      )
      // Two permits at once; the third load waits for the next one.
      yield* TestClock.adjust("1 milli")
      assert.strictEqual(yield* Ref.get(calls), 2)
      yield* TestClock.adjust("1 second")
      const results = yield* Fiber.join(loading)
      assert.deepStrictEqual(results, ["v1", "v2", "v3", "v4"].map(Option.some))
      assert.strictEqual(yield* Ref.get(calls), 4)
    })
  )
})
