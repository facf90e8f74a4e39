import { assert, describe, it } from "@effect/vitest"
import { Context, Effect, Exit, FastCheck as fc, Option, Ref, Scope, TestClock } from "effect"
import * as Cache from "../../src/Cache/Cache.js"
import { CacheError, CacheFullError } from "../../src/Cache/CacheError.js"
import * as MemoryCache from "../../src/Cache/MemoryCache.js"
import { contract } from "./CacheContract.js"

contract("MemoryCache", MemoryCache.layer())
contract("MemoryCache (bounded, lru)", MemoryCache.layer({ maxEntries: 1000, maxBytes: 1_000_000 }))

type Seen = ReadonlyArray<readonly [string, unknown, MemoryCache.EvictionReason]>

/** A memory cache whose evictions are recorded in a Ref. */
const recording = (options: Omit<MemoryCache.Options, "onEvicted"> = {}) =>
  Effect.gen(function* () {
    const seen = yield* Ref.make<Seen>([])
    const cache = yield* MemoryCache.make({
      ...options,
      onEvicted: (key, value, reason) => Ref.update(seen, (all) => [...all, [key, value, reason] as const])
    })
    return { cache, seen: Ref.get(seen) }
  })

describe("MemoryCache", () => {
  it.scoped("the sweeper removes expired entries nobody reads, reporting each once", () =>
    Effect.gen(function* () {
      const { cache, seen } = yield* recording({ sweepInterval: "1 second" })
      yield* cache.set("a", 1, "10 millis")
      yield* cache.set("b", 2)
      yield* TestClock.adjust("1 second")
      assert.strictEqual(yield* cache.size, 1)
      assert.deepStrictEqual(yield* seen, [["a", 1, "expired"]])
      yield* TestClock.adjust("3 seconds")
      assert.deepStrictEqual(yield* seen, [["a", 1, "expired"]])
    })
  )

  it.scoped("a sweep examines at most sweepKeyBudget entries and resumes where it stopped", () =>
    Effect.gen(function* () {
      const { cache, seen } = yield* recording({
        sweepInterval: "1 second",
        sweepKeyBudget: 3,
        sweepTimeBudget: "1 hour"
      })
      for (let i = 0; i < 10; i++) yield* cache.set(`k${i}`, i, "1 millis")
      yield* TestClock.adjust("1 second")
      assert.strictEqual(yield* cache.size, 7)
      yield* TestClock.adjust("1 second")
      assert.strictEqual(yield* cache.size, 4)
      assert.deepStrictEqual(
        (yield* seen).map(([k]) => k),
        ["k0", "k1", "k2", "k3", "k4", "k5"]
      )
    })
  )

  it.scoped("a sweep stops when its time budget is spent (at least one entry per sweep)", () =>
    Effect.gen(function* () {
      const { cache } = yield* recording({ sweepInterval: "1 second", sweepTimeBudget: 0 })
      for (let i = 0; i < 5; i++) yield* cache.set(`k${i}`, i, "1 millis")
      yield* TestClock.adjust("1 second")
      assert.strictEqual(yield* cache.size, 4)
      yield* TestClock.adjust("2 seconds")
      assert.strictEqual(yield* cache.size, 2)
    })
  )

  it.scoped("reads expire lazily between sweeps, and the sweep does not report them again", () =>
    Effect.gen(function* () {
      const { cache, seen } = yield* recording({ sweepInterval: "1 hour" })
      yield* cache.set("a", 1, "10 millis")
      yield* TestClock.adjust("20 millis")
      assert.strictEqual(yield* cache.size, 1)
      assert.isTrue(Option.isNone(yield* cache.get("a")))
      assert.strictEqual(yield* cache.size, 0)
      yield* TestClock.adjust("1 hour")
      assert.deepStrictEqual(yield* seen, [["a", 1, "expired"]])
    })
  )

  it.scoped("onEvicted is told of deletes and replacements with the value that left", () =>
    Effect.gen(function* () {
      const { cache, seen } = yield* recording()
      yield* cache.set("a", "one")
      yield* cache.set("a", "two")
      yield* cache.incrBy("n", 1)
      yield* cache.incrBy("n", 1)
      yield* cache.delete("a")
      yield* cache.delete("a")
      yield* cache.loadOrStore("n", 100)
      assert.deepStrictEqual(yield* seen, [
        ["a", "one", "replaced"],
        ["n", 1, "replaced"],
        ["a", "two", "deleted"]
      ])
    })
  )

  it.scoped("maxEntries with lru evicts the least recently used entry", () =>
    Effect.gen(function* () {
      const { cache, seen } = yield* recording({ maxEntries: 3 })
      yield* cache.set("a", 1)
      yield* cache.set("b", 2)
      yield* cache.set("c", 3)
      yield* cache.get("a")
      yield* cache.set("d", 4)
      assert.isFalse(yield* cache.has("b"))
      assert.strictEqual(yield* cache.size, 3)
      yield* cache.set("c", 30)
      yield* cache.set("e", 5)
      assert.deepStrictEqual(yield* seen, [
        ["b", 2, "capacity"],
        ["c", 3, "replaced"],
        ["a", 1, "capacity"]
      ])
      assert.deepStrictEqual(yield* cache.get("c"), Option.some(30))
    })
  )

  it.scoped("maxEntries with reject fails new keys with CacheFullError, reclaiming expired ones first", () =>
    Effect.gen(function* () {
      const { cache, seen } = yield* recording({ maxEntries: 2, policy: "reject", sweepInterval: "1 hour" })
      yield* cache.set("a", 1)
      yield* cache.set("b", 2, "10 millis")
      const full = yield* Effect.flip(cache.set("c", 3))
      assert.instanceOf(full, CacheFullError)
      assert.deepStrictEqual(full instanceof CacheFullError ? [full.limit, full.max] : [], ["entries", 2])
      assert.instanceOf(yield* Effect.flip(cache.incrBy("n", 1)), CacheFullError)
      yield* cache.set("a", 10)
      yield* TestClock.adjust("20 millis")
      yield* cache.set("c", 3)
      assert.deepStrictEqual(yield* cache.get("c"), Option.some(3))
      assert.deepStrictEqual(yield* seen, [
        ["a", 1, "replaced"],
        ["b", 2, "expired"]
      ])
    })
  )

  it.scoped("maxBytes evicts by the size function and refuses an entry larger than the bound", () =>
    Effect.gen(function* () {
      const { cache, seen } = yield* recording({
        maxBytes: 10,
        sizeOf: (_key, value) => (typeof value === "string" ? value.length : 1)
      })
      yield* cache.set("a", "aaaa")
      yield* cache.set("b", "bbbb")
      assert.strictEqual(yield* cache.bytes, 8)
      yield* cache.set("c", "ccc")
      assert.strictEqual(yield* cache.bytes, 7)
      assert.isFalse(yield* cache.has("a"))
      yield* cache.set("b", "bbbbbbbb")
      assert.strictEqual(yield* cache.bytes, 8)
      assert.isFalse(yield* cache.has("c"))
      const full = yield* Effect.flip(cache.set("huge", "x".repeat(11)))
      assert.deepStrictEqual(full instanceof CacheFullError ? [full.limit, full.max] : [], ["bytes", 10])
      assert.deepStrictEqual(yield* cache.get("b"), Option.some("bbbbbbbb"))
      assert.deepStrictEqual(
        (yield* seen).map(([k, , r]) => `${k}:${r}`),
        ["a:capacity", "c:capacity", "b:replaced"]
      )
    })
  )

  it.scoped("maxBytes with reject refuses a write that does not fit and keeps the old value", () =>
    Effect.gen(function* () {
      const cache = yield* MemoryCache.make({
        maxBytes: 10,
        policy: "reject",
        sizeOf: (_k, v) => String(v).length
      })
      yield* cache.set("a", "aaaaa")
      yield* cache.set("b", "bbbb")
      assert.instanceOf(yield* Effect.flip(cache.set("b", "bbbbbb")), CacheFullError)
      assert.deepStrictEqual(yield* cache.get("b"), Option.some("bbbb"))
      assert.strictEqual(yield* cache.bytes, 9)
    })
  )

  it("approximateSize walks nested values and survives cycles", () => {
    const cyclic: { self?: unknown; n: number } = { n: 1 }
    cyclic.self = cyclic
    assert.strictEqual(MemoryCache.approximateSize("k", "abc"), 2 + 6)
    assert.strictEqual(MemoryCache.approximateSize("", { ab: [1, 2], s: "x" }), 4 + 16 + 2 + 2)
    assert.strictEqual(MemoryCache.approximateSize("", new Uint8Array(100)), 100)
    assert.strictEqual(MemoryCache.approximateSize("", cyclic), 2 + 8 + 8)
  })

  it.effect("closing the scope stops the sweeper, and closing it twice is harmless", () =>
    Effect.gen(function* () {
      const scope = yield* Scope.make()
      const { cache, seen } = yield* Scope.extend(recording({ sweepInterval: "1 second" }), scope)
      yield* cache.set("a", 1, "1 millis")
      yield* Scope.close(scope, Exit.void)
      yield* Scope.close(scope, Exit.void)
      yield* TestClock.adjust("10 seconds")
      assert.strictEqual(yield* cache.size, 1)
      assert.deepStrictEqual(yield* seen, [])
      assert.isTrue(Option.isNone(yield* cache.get("a")))
      assert.deepStrictEqual(yield* seen, [["a", 1, "expired"]])
    })
  )

  it.scoped("a failing onEvicted is logged and does not fail the operation", () =>
    Effect.gen(function* () {
      const cache = yield* MemoryCache.make({ onEvicted: () => Effect.die("boom") })
      yield* cache.set("a", 1)
      yield* cache.set("a", 2)
      assert.deepStrictEqual(yield* cache.delete("a"), Option.some(2))
    })
  )

  it.scoped("onEvicted runs with the services present when the cache was made", () =>
    Effect.gen(function* () {
      class Sink extends Context.Tag("Sink")<Sink, Ref.Ref<Array<string>>>() {}
      const sink = yield* Ref.make<Array<string>>([])
      const cache = yield* MemoryCache.make({
        onEvicted: (key) => Effect.flatMap(Sink, (ref) => Ref.update(ref, (all) => [...all, key]))
      }).pipe(Effect.provideService(Sink, sink))
      yield* cache.set("a", 1)
      yield* cache.delete("a")
      assert.deepStrictEqual(yield* Ref.get(sink), ["a"])
    })
  )

  it.scoped("bad options fail with reason invalid_argument", () =>
    Effect.gen(function* () {
      for (const options of [
        { maxEntries: 0 },
        { maxBytes: -1 },
        { sweepKeyBudget: 1.5 },
        { sweepInterval: 0 }
      ]) {
        const error = yield* Effect.flip(MemoryCache.make(options))
        assert.strictEqual(error instanceof CacheError ? error.reason : "", "invalid_argument")
      }
    })
  )

  it.effect("the layer provides the same cache under MemoryCache and Cache", () =>
    Effect.gen(function* () {
      const memory = yield* MemoryCache.MemoryCache
      const cache = yield* Cache.Cache
      yield* cache.set("a", 1)
      assert.strictEqual(yield* memory.size, 1)
    }).pipe(Effect.provide(MemoryCache.layer()))
  )
})

type Op =
  | { readonly op: "set"; readonly key: string; readonly ttl: number | null }
  | { readonly op: "get" | "delete"; readonly key: string }
  | { readonly op: "loadOrStore"; readonly key: string }
  | { readonly op: "incr"; readonly key: string; readonly by: number }
  | { readonly op: "tick" | "yield" }

const key = fc.constantFrom("k0", "k1", "k2", "k3", "k4")
const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ op: fc.constant("set" as const), key, ttl: fc.option(fc.integer({ min: 1, max: 30 })) }),
  fc.record({ op: fc.constantFrom("get" as const, "delete" as const), key }),
  fc.record({ op: fc.constant("loadOrStore" as const), key }),
  fc.record({
    op: fc.constant("incr" as const),
    key: fc.constantFrom("c0", "c1"),
    by: fc.integer({ min: -5, max: 5 })
  }),
  fc.record({ op: fc.constantFrom("tick" as const, "yield" as const) })
)
const fibers = fc.array(fc.array(opArb, { maxLength: 25 }), { minLength: 2, maxLength: 6 })

describe("MemoryCache under concurrency", () => {
  it.effect.prop(
    "interleaved fibers lose no update: every written value is present or reported gone exactly once",
    [fibers, fc.option(fc.integer({ min: 1, max: 4 }))],
    ([plans, maxEntries]) =>
      Effect.scoped(
        Effect.gen(function* () {
          const evicted: Array<readonly [string, unknown, MemoryCache.EvictionReason]> = []
          const cache = yield* MemoryCache.make({
            sweepInterval: "10 millis",
            sweepKeyBudget: 2,
            ...(maxEntries === null ? {} : { maxEntries }),
            onEvicted: (k, v, reason) => Effect.sync(() => void evicted.push([k, v, reason]))
          })
          const written: Array<unknown> = []
          const increments = new Map<string, number>()
          let puts = 0
          let nextValue = 0
          yield* Effect.forEach(
            plans,
            (plan) =>
              Effect.forEach(
                plan,
                (op) =>
                  Effect.gen(function* () {
                    switch (op.op) {
                      case "set": {
                        const value = `v${nextValue++}`
                        yield* cache.set(op.key, value, op.ttl === null ? undefined : op.ttl)
                        written.push(value)
                        puts++
                        return
                      }
                      case "loadOrStore": {
                        const value = `v${nextValue++}`
                        const result = yield* cache.loadOrStore(op.key, value)
                        if (!result.loaded) {
                          written.push(value)
                          puts++
                        }
                        return
                      }
                      case "incr": {
                        yield* cache.incrBy(op.key, op.by)
                        increments.set(op.key, (increments.get(op.key) ?? 0) + op.by)
                        puts++
                        return
                      }
                      case "get":
                      case "delete": {
                        const found = yield* op.op === "get" ? cache.get(op.key) : cache.delete(op.key)
                        if (Option.isSome(found)) assert.include(written, found.value)
                        return
                      }
                      case "tick":
                        return yield* TestClock.adjust("5 millis")
                      case "yield":
                        return yield* Effect.yieldNow()
                    }
                  }).pipe(
                    Effect.zipRight(
                      Effect.map(cache.size, (size) => {
                        if (maxEntries !== null) assert.isAtMost(size, maxEntries)
                      })
                    )
                  ),
                { discard: true }
              ),
            { concurrency: "unbounded", discard: true }
          )
          const keys = ["k0", "k1", "k2", "k3", "k4", "c0", "c1"]
          const present: Array<unknown> = []
          for (const k of keys) {
            const found = yield* cache.get(k)
            if (Option.isSome(found)) present.push(found.value)
          }
          assert.strictEqual(puts, evicted.length + present.length)
          const strings = [...evicted.map(([, v]) => v), ...present].filter((v) => typeof v === "string")
          assert.deepStrictEqual([...strings].sort(), [...written].sort())
          if (maxEntries === null) {
            for (const [counter, total] of increments) {
              const value = yield* cache.get(counter)
              assert.deepStrictEqual(value, Option.some(total))
            }
          }
        })
      ),
    { fastCheck: { numRuns: 150 } }
  )
})
