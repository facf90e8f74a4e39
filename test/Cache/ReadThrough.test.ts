import { assert, describe, it } from "@effect/vitest"
import { Deferred, Duration, Effect, Fiber, Layer, Metric, Option, Ref, TestClock } from "effect"
import * as Cache from "../../src/Cache/Cache.js"
import { CacheError } from "../../src/Cache/CacheError.js"
import * as M from "../../src/Cache/internal/patternMetrics.js"
import * as RateLimited from "../../src/Cache/RateLimited.js"
import * as ReadThrough from "../../src/Cache/ReadThrough.js"
import * as Singleflight from "../../src/Cache/Singleflight.js"
import * as Database from "../../src/Layers/Database.js"
import * as Tx from "../../src/Tx/Tx.js"

class Boom extends Error {
  readonly _tag = "Boom"
}

/** A loader over a fixed map that counts its calls; keys starting with "fail" fail with `Boom`. */
const source = (data: Record<string, string>) =>
  Effect.map(Ref.make(0), (calls) => ({
    calls,
    loader: (key: string) =>
      Effect.zipRight(
        Ref.update(calls, (n) => n + 1),
        key.startsWith("fail") ? Effect.fail(new Boom(key)) : Effect.succeed(Option.fromNullable(data[key]))
      )
  }))

const counter = (metric: Metric.Metric.Counter<number>, cache: string) =>
  Effect.map(Metric.value(Metric.tagged(metric, "cache", cache)), (state) => state.count)

describe("ReadThrough", () => {
  it.scoped("sync: a miss loads, stores with the TTL and returns; the next get is a hit", () =>
    Effect.gen(function* () {
      const cache = yield* Cache.makeTest
      const { calls, loader } = yield* source({ a: "A" })
      const rt = yield* ReadThrough.make(cache, { loader, ttl: "1 minute", name: "rt-sync" })
      assert.deepStrictEqual(yield* rt.get("a"), Option.some("A"))
      assert.deepStrictEqual(yield* cache.get("a"), Option.some("A"))
      assert.deepStrictEqual(yield* rt.get("a"), Option.some("A"))
      assert.strictEqual(yield* Ref.get(calls), 1)
      assert.strictEqual(yield* counter(M.hits, "rt-sync"), 1)
      assert.strictEqual(yield* counter(M.misses, "rt-sync"), 1)
      assert.strictEqual(yield* counter(M.loads, "rt-sync"), 1)
      yield* TestClock.adjust("1 minute")
      assert.deepStrictEqual(yield* rt.get("a"), Option.some("A"))
      assert.strictEqual(yield* Ref.get(calls), 2)
    })
  )

  it.scoped("semiAsync returns the loaded value before the store finishes", () =>
    Effect.gen(function* () {
      const inner = yield* Cache.makeTest
      const release = yield* Deferred.make<void>()
      const stored = yield* Deferred.make<void>()
      const slowSet = Cache.make<unknown>({
        ...inner,
        set: (key, value, ttl) =>
          Deferred.await(release).pipe(
            Effect.zipRight(inner.set(key, value, ttl)),
            Effect.zipRight(Deferred.succeed(stored, undefined))
          )
      })
      const { loader } = yield* source({ a: "A" })
      const rt = yield* ReadThrough.make(slowSet, { loader, mode: "semiAsync", name: "rt-semi" })
      assert.deepStrictEqual(yield* rt.get("a"), Option.some("A"))
      assert.isFalse(yield* inner.has("a"))
      yield* Deferred.succeed(release, undefined)
      yield* Deferred.await(stored)
      assert.deepStrictEqual(yield* inner.get("a"), Option.some("A"))
    })
  )

  it.scoped("async answers a miss with None at once, then loads and stores in the background", () =>
    Effect.gen(function* () {
      const cache = yield* Cache.makeTest
      const gate = yield* Deferred.make<void>()
      const { calls, loader } = yield* source({ a: "A" })
      const rt = yield* ReadThrough.make(cache, {
        loader: (key) => Effect.zipRight(Deferred.await(gate), loader(key)),
        mode: "async",
        name: "rt-async"
      })
      assert.deepStrictEqual(yield* rt.get("a"), Option.none())
      yield* Deferred.succeed(gate, undefined)
      // The pool drains on close: wait for the background fill through the cache itself.
      yield* Effect.repeat(cache.has("a"), { until: (has) => has })
      assert.deepStrictEqual(yield* rt.get("a"), Option.some("A"))
      assert.strictEqual(yield* Ref.get(calls), 1)
    })
  )

  it.scoped("async work is skipped and counted when the pool is full, never blocking the caller", () =>
    Effect.gen(function* () {
      const cache = yield* Cache.makeTest
      const gate = yield* Deferred.make<void>()
      const rt = yield* ReadThrough.make(cache, {
        loader: (key) => Effect.as(Deferred.await(gate), Option.some(key)),
        mode: "async",
        name: "rt-full",
        background: { concurrency: 1, capacity: 1 }
      })
      // One task runs, one waits in the buffer, the rest are dropped.
      for (const key of ["a", "b", "c", "d"]) assert.deepStrictEqual(yield* rt.get(key), Option.none())
      assert.strictEqual(yield* counter(M.backgroundDropped, "rt-full"), 2)
      yield* Deferred.succeed(gate, undefined)
    })
  )

  it.scoped("without negative caching, absences and failures are not remembered", () =>
    Effect.gen(function* () {
      const cache = yield* Cache.makeTest
      const { calls, loader } = yield* source({})
      const rt = yield* ReadThrough.make(cache, { loader, name: "rt-noneg" })
      assert.deepStrictEqual(yield* rt.get("x"), Option.none())
      assert.deepStrictEqual(yield* rt.get("x"), Option.none())
      assert.instanceOf(yield* Effect.flip(rt.get("fail-1")), Boom)
      assert.instanceOf(yield* Effect.flip(rt.get("fail-1")), Boom)
      assert.strictEqual(yield* Ref.get(calls), 4)
      assert.isFalse(yield* cache.has("x"))
      assert.strictEqual(yield* counter(M.loadFailures, "rt-noneg"), 2)
    })
  )

  it.scoped("negative caching remembers absences and failures for its own TTL", () =>
    Effect.gen(function* () {
      const cache = yield* Cache.makeTest
      const { calls, loader } = yield* source({})
      const rt = yield* ReadThrough.make(cache, {
        loader,
        ttl: "1 hour",
        negative: { ttl: "10 seconds" },
        name: "rt-neg"
      })
      assert.deepStrictEqual(yield* rt.get("x"), Option.none())
      assert.deepStrictEqual(yield* rt.get("x"), Option.none())
      const first = yield* Effect.flip(rt.get("fail-1"))
      const again = yield* Effect.flip(rt.get("fail-1"))
      assert.strictEqual(again, first, "the remembered failure is the same error")
      assert.strictEqual(yield* Ref.get(calls), 2)
      assert.strictEqual(yield* counter(M.negativeHits, "rt-neg"), 2)
      yield* TestClock.adjust("10 seconds")
      assert.deepStrictEqual(yield* rt.get("x"), Option.none())
      assert.strictEqual(yield* Ref.get(calls), 3)
    })
  )

  it.scoped("negative.failures chooses which failures are remembered; invalidate forgets", () =>
    Effect.gen(function* () {
      const cache = yield* Cache.makeTest
      const { calls, loader } = yield* source({})
      const rt = yield* ReadThrough.make(cache, {
        loader,
        negative: { ttl: "10 seconds", failures: (e) => e.message === "fail-remember" },
        name: "rt-negsel"
      })
      yield* Effect.flip(rt.get("fail-other"))
      yield* Effect.flip(rt.get("fail-other"))
      yield* Effect.flip(rt.get("fail-remember"))
      yield* Effect.flip(rt.get("fail-remember"))
      assert.strictEqual(yield* Ref.get(calls), 3)
      yield* rt.get("absent")
      yield* rt.invalidate("absent")
      yield* rt.get("absent")
      assert.strictEqual(yield* Ref.get(calls), 5)
    })
  )

  it.scoped("a failed store after a good load is counted and the value is still returned", () =>
    Effect.gen(function* () {
      const inner = yield* Cache.makeTest
      const broken = Cache.make<unknown>({
        ...inner,
        set: (key) => Effect.fail(new CacheError({ reason: "connection", operation: "set", key }))
      })
      const { loader } = yield* source({ a: "A" })
      const rt = yield* ReadThrough.make(broken, { loader, name: "rt-storefail" })
      assert.deepStrictEqual(yield* rt.get("a"), Option.some("A"))
      assert.strictEqual(yield* counter(M.storeFailures, "rt-storefail"), 1)
    })
  )

  it.scoped("a cache read error is not hidden: get fails with the CacheError", () =>
    Effect.gen(function* () {
      const inner = yield* Cache.makeTest
      const down = Cache.make<unknown>({
        ...inner,
        get: (key) => Effect.fail(new CacheError({ reason: "connection", operation: "get", key }))
      })
      const { calls, loader } = yield* source({ a: "A" })
      const rt = yield* ReadThrough.make(down, { loader, name: "rt-down" })
      const error = yield* Effect.flip(rt.get("a"))
      assert.instanceOf(error, CacheError)
      assert.strictEqual(yield* Ref.get(calls), 0)
    })
  )

  it.scoped("refresh reloads whatever the cache holds; getOrFail fails with CacheMissError", () =>
    Effect.gen(function* () {
      const cache = yield* Cache.makeTest
      const { calls, loader } = yield* source({ a: "A" })
      const rt = yield* ReadThrough.make(cache, { loader, name: "rt-refresh" })
      yield* cache.set("a", "stale")
      assert.deepStrictEqual(yield* rt.refresh("a"), Option.some("A"))
      assert.deepStrictEqual(yield* cache.get("a"), Option.some("A"))
      yield* cache.set("gone", "old")
      assert.deepStrictEqual(yield* rt.refresh("gone"), Option.none())
      assert.isFalse(yield* cache.has("gone"))
      assert.strictEqual((yield* Effect.flip(rt.getOrFail("nope")))._tag, "CacheMissError")
      assert.strictEqual(yield* Ref.get(calls), 3)
    })
  )

  it.scoped("bad options are typed errors", () =>
    Effect.gen(function* () {
      const cache = yield* Cache.makeTest
      const loader = () => Effect.succeedNone
      const bad = [
        ReadThrough.make(cache, { loader, ttl: -1 }),
        ReadThrough.make(cache, { loader, negative: { ttl: Duration.infinity } }),
        ReadThrough.make(cache, { loader, negative: { ttl: "1 second", maxEntries: 0 } }),
        ReadThrough.make(cache, { loader, background: { concurrency: 0, capacity: 1 } })
      ]
      for (const make of bad) assert.strictEqual((yield* Effect.flip(make)).reason, "invalid_argument")
    })
  )

  describe("inside a transaction", () => {
    it.scoped("the cache is bypassed: the loader runs, nothing is read or stored", () =>
      Effect.gen(function* () {
        const cache = yield* Cache.makeTest
        const { calls, loader } = yield* source({ a: "A" })
        const rt = yield* ReadThrough.make(cache, { loader, name: "rt-tx" })
        yield* cache.set("b", "cached-b")
        const inside = yield* Effect.all([rt.get("a"), rt.get("b")]).pipe(Tx.run())
        assert.deepStrictEqual(inside, [Option.some("A"), Option.none()])
        assert.isFalse(yield* cache.has("a"))
        assert.strictEqual(yield* Ref.get(calls), 2)
        assert.deepStrictEqual(yield* rt.get("b"), Option.some("cached-b"))
      }).pipe(Effect.provide(Layer.orDie(Database.layer({ url: "sqlite::memory:" }))))
    )
  })

  it.effect("Tag and layer: the service sits under its own tag over the cache tag", () =>
    Effect.gen(function* () {
      const rt = yield* Reads
      assert.deepStrictEqual(yield* rt.get("k"), Option.some("value of k"))
      assert.strictEqual(rt.parts.name, "test/Reads")
    }).pipe(
      Effect.provide(
        ReadThrough.layer(Reads, Cache.Cache, {
          loader: (key) => Effect.succeed(Option.some(`value of ${key}`))
        }).pipe(Layer.provide(Cache.layerTest))
      )
    )
  )
})

class Reads extends ReadThrough.Tag("test/Reads")<Reads, unknown>() {}

describe("ReadThrough decorators", () => {
  const blocked = ReadThrough.decorate(Reads, (parts) =>
    Effect.succeed({
      ...parts,
      admits: [...parts.admits, (key: string) => Effect.succeed(key !== "blocked")]
    })
  )
  const limited = RateLimited.layerFallback(Reads, {
    limit: 3,
    interval: "1 minute",
    fallback: (key) => Option.some(`default ${key}`)
  })
  const orders = [
    ["singleflight, limit, admit", [Singleflight.layer(Reads), limited, blocked]],
    ["admit, limit, singleflight", [blocked, limited, Singleflight.layer(Reads)]],
    ["limit, singleflight, admit", [limited, Singleflight.layer(Reads), blocked]]
  ] as const

  for (const [label, decorators] of orders) {
    it.effect(`compose in any order: ${label}`, () =>
      Effect.gen(function* () {
        const calls = yield* Ref.make(0)
        const base = ReadThrough.layer(Reads, Cache.Cache, {
          loader: (key) =>
            Effect.zipRight(
              Ref.update(calls, (n) => n + 1),
              Effect.as(Effect.sleep("20 millis"), Option.some(`loaded ${key}`))
            )
        }).pipe(Layer.provide(Cache.layerTest))
        const stack = decorators.reduce<Layer.Layer<Reads, CacheError>>(
          (inner, decorator) => decorator.pipe(Layer.provide(inner)),
          base
        )
        // The loader takes 20 ms of TestClock time; the clock is moved until the program is done.
        const running = yield* Effect.gen(function* () {
          const rt = yield* Reads
          const concurrent = yield* Effect.forEach(Array.from({ length: 50 }), () => rt.get("a"), {
            concurrency: "unbounded"
          })
          const rest = yield* Effect.forEach(["blocked", "b", "c", "d", "e"], (key) => rt.get(key))
          return [new Set(concurrent.map(Option.getOrUndefined)), rest.map(Option.getOrUndefined)] as const
        }).pipe(Effect.provide(stack), Effect.fork)
        for (let i = 0; i < 100 && Option.isNone(yield* Fiber.poll(running)); i++) {
          yield* TestClock.adjust("20 millis")
        }
        const results = yield* Fiber.join(running)
        assert.deepStrictEqual(results, [
          new Set(["loaded a"]),
          [undefined, "loaded b", "loaded c", "default d", "default e"]
        ])
        assert.strictEqual(yield* Ref.get(calls), 3)
      })
    )
  }
})
