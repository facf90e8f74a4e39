import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer, Option, Ref, Schema, TestClock } from "effect"
import * as Cache from "../../src/Cache/Cache.js"
import * as MemoryCache from "../../src/Cache/MemoryCache.js"
import { contract } from "./CacheContract.js"

contract("layerTest", Cache.layerTest)

class User extends Schema.Class<User>("User")({ id: Schema.Number, name: Schema.String }) {}
class UserCache extends Cache.Tag("test/UserCache")<UserCache, User>() {}
class Counters extends Cache.Tag("test/Counters")<Counters, number>() {}

describe("Cache", () => {
  it.effect("layerTest expires entries by the Clock service", () =>
    Effect.gen(function* () {
      const cache = yield* Cache.Cache
      yield* cache.set("a", 1, "1 minute")
      yield* TestClock.adjust("59 seconds")
      assert.isTrue(yield* cache.has("a"))
      yield* TestClock.adjust("1 second")
      assert.isFalse(yield* cache.has("a"))
    }).pipe(Effect.provide(Cache.layerTest))
  )

  it.effect("per-use Tags hold separate typed caches side by side", () =>
    Effect.gen(function* () {
      const users = yield* UserCache
      const counters = yield* Counters
      yield* users.set("1", new User({ id: 1, name: "Ada" }))
      yield* counters.set("1", 41)
      assert.strictEqual((yield* users.getOrFail("1")).name, "Ada")
      assert.strictEqual(yield* counters.incrBy("1", 1), 42)
      const raw = yield* Cache.Cache
      assert.deepStrictEqual(yield* raw.get("user:1"), Option.some({ id: 1, name: "Ada" }))
      assert.deepStrictEqual(yield* raw.get("count:1"), Option.some(42))
    }).pipe(
      Effect.provide(
        Layer.mergeAll(
          Cache.layerSchema(UserCache, User, { prefix: "user:" }),
          Cache.layerSchema(Counters, Schema.Number, { prefix: "count:" })
        ).pipe(Layer.provideMerge(MemoryCache.layer()))
      )
    )
  )

  it.effect("a typed view rejects a value its Schema cannot encode with reason encode", () =>
    Effect.gen(function* () {
      const positive = Cache.forSchema(Schema.Number.pipe(Schema.positive()))(yield* Cache.Cache)
      const error = yield* Effect.flip(positive.set("n", -1))
      assert.strictEqual(error._tag === "CacheError" ? error.reason : "", "encode")
      assert.isFalse(yield* positive.has("n"))
    }).pipe(Effect.provide(Cache.layerTest))
  )

  it.effect("a decorator Layer wraps a cache, and derived operations follow its override", () =>
    Effect.gen(function* () {
      const reads = yield* Ref.make(0)
      const counted = Cache.decorate(Cache.Cache, (inner) =>
        Effect.succeed({
          ...inner,
          get: (key: string) =>
            Effect.zipRight(
              Ref.update(reads, (n) => n + 1),
              inner.get(key)
            )
        })
      )
      yield* Effect.gen(function* () {
        const cache = yield* Cache.Cache
        yield* cache.set("a", 1)
        assert.strictEqual(yield* cache.getOrFail("a"), 1)
        assert.deepStrictEqual(yield* cache.get("b"), Option.none())
      }).pipe(Effect.provide(counted.pipe(Layer.provide(Cache.layerTest))))
      assert.strictEqual(yield* Ref.get(reads), 2)
    })
  )
})
