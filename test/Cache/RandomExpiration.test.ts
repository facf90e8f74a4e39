import { assert, describe, it } from "@effect/vitest"
import { Duration, Effect, Layer, Option, Random, Ref, TestClock } from "effect"
import * as Cache from "../../src/Cache/Cache.js"
import * as MemoryCache from "../../src/Cache/MemoryCache.js"
import * as RandomExpiration from "../../src/Cache/RandomExpiration.js"

/** A cache that records the TTL of every write and stores nothing. */
const recording = Effect.map(Ref.make<ReadonlyArray<Duration.DurationInput | undefined>>([]), (ttls) => ({
  ttls,
  cache: Cache.make<unknown>({
    get: () => Effect.succeedNone,
    set: (_key, _value, ttl) => Ref.update(ttls, (all) => [...all, ttl]),
    delete: () => Effect.succeedNone,
    has: () => Effect.succeed(false),
    loadOrStore: (_key, value, ttl) =>
      Effect.as(
        Ref.update(ttls, (all) => [...all, ttl]),
        { value, loaded: false }
      ),
    incrBy: () => Effect.succeed(0)
  })
}))

const toMillis = (ttl: Duration.DurationInput | undefined) =>
  ttl === undefined ? undefined : Duration.toMillis(Duration.decode(ttl))

describe("RandomExpiration", () => {
  it.effect("avalanche: 1,000 keys set together expire spread across the configured range", () =>
    Effect.gen(function* () {
      const cache = yield* Cache.Cache
      const keys = Array.from({ length: 1000 }, (_, i) => `k${i}`)
      yield* Effect.forEach(keys, (key) => cache.set(key, 1, "60 seconds"), { discard: true })
      const alive = Effect.map(
        Effect.forEach(keys, (key) => cache.has(key)),
        (all) => all.filter(Boolean).length
      )
      yield* TestClock.adjust("59999 millis")
      assert.strictEqual(yield* alive, 1000, "nothing expires before the TTL")
      // Six 5-second buckets over the 30-second range: about 167 expiries each.
      let previous = 1000
      for (let bucket = 1; bucket <= 6; bucket++) {
        yield* TestClock.adjust(bucket === 1 ? "5001 millis" : "5 seconds")
        const now = yield* alive
        const expired = previous - now
        assert.isAtLeast(expired, 100, `bucket ${bucket}`)
        assert.isAtMost(expired, 240, `bucket ${bucket}`)
        previous = now
      }
      assert.strictEqual(previous, 0, "everything expired by TTL + max")
    }).pipe(
      Effect.provide(
        RandomExpiration.layer(Cache.Cache, { max: "30 seconds" }).pipe(Layer.provide(MemoryCache.layer()))
      ),
      Effect.withRandom(Random.make("avalanche"))
    )
  )

  it.effect("every TTL lands in [ttl + min, ttl + max]; writes without a TTL keep none", () =>
    Effect.gen(function* () {
      const { ttls, cache } = yield* recording
      const jittered = Cache.make(yield* RandomExpiration.make({ min: "1 second", max: "3 seconds" })(cache))
      yield* Effect.forEach(Array.from({ length: 500 }), (_, i) => jittered.set(`k${i}`, i, "10 seconds"), {
        discard: true
      })
      yield* jittered.loadOrStore("l", 1, 10_000)
      yield* jittered.set("forever", 1)
      yield* jittered.set("infinite", 1, Duration.infinity)
      const recorded = yield* Ref.get(ttls)
      const millis = recorded.slice(0, 501).map(toMillis)
      for (const ms of millis) {
        assert.isDefined(ms)
        assert.isAtLeast(ms ?? 0, 11_000)
        assert.isAtMost(ms ?? 0, 13_000)
      }
      assert.isAbove(new Set(millis).size, 400, "offsets are spread, not constant")
      assert.strictEqual(recorded[501], undefined)
      assert.deepStrictEqual(recorded[502], Duration.infinity)
    })
  )

  it.effect("a bad TTL is still reported by the cache underneath; bad ranges are typed errors", () =>
    Effect.gen(function* () {
      const base = yield* Cache.makeTest
      const jittered = Cache.make(yield* RandomExpiration.make({ max: "1 second" })(base))
      const error = yield* Effect.flip(jittered.set("k", 1, -5))
      assert.isTrue(error._tag === "CacheError" && error.reason === "invalid_argument")
      assert.deepStrictEqual(yield* jittered.get("k"), Option.none())
      const bad = yield* Effect.flip(RandomExpiration.make({ min: "2 seconds", max: "1 second" })(base))
      assert.strictEqual(bad.reason, "invalid_argument")
    })
  )
})
