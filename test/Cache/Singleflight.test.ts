import { randomUUID } from "node:crypto"
import { assert, describe, it } from "@effect/vitest"
import { Context, Deferred, Effect, Fiber, FiberRef, Layer, Option, Ref } from "effect"
import * as Cache from "../../src/Cache/Cache.js"
import * as MemoryCache from "../../src/Cache/MemoryCache.js"
import * as ReadThrough from "../../src/Cache/ReadThrough.js"
import * as RedisCache from "../../src/Cache/RedisCache.js"
import * as Singleflight from "../../src/Cache/Singleflight.js"
import { serviceAvailable, serviceUrls } from "../support/services.js"

class Reads extends ReadThrough.Tag("test/Singleflight/Reads")<Reads, unknown>() {}

/** A loader that counts its calls, then waits at `gate` until the test opens it. */
const gatedLoader = (calls: Ref.Ref<number>, gate: Deferred.Deferred<void>) => (key: string) =>
  Effect.zipRight(
    Ref.update(calls, (n) => n + 1),
    Effect.as(Deferred.await(gate), Option.some(`loaded ${key}`))
  )

/**
 * 1,000 concurrent gets of one cold key through `Reads`; returns the values and the loader calls.
 * The loader's gate opens only once every get is suspended (waiting on the loader, on the shared fill
 * or on the cache) and at least one load started: the gets overlap for sure, whatever the machine's load.
 */
const stampede = (base: Layer.Layer<Cache.Cache, unknown>, singleflight: boolean) =>
  Effect.gen(function* () {
    const calls = yield* Ref.make(0)
    const gate = yield* Deferred.make<void>()
    const reads = ReadThrough.layer(Reads, Cache.Cache, { loader: gatedLoader(calls, gate), ttl: "1 minute" })
    const stack = singleflight ? Singleflight.layer(Reads).pipe(Layer.provide(reads)) : reads
    const values = yield* Effect.flatMap(Reads, (rt) =>
      Effect.gen(function* () {
        const fibers = yield* Effect.forEach(Array.from({ length: 1000 }), () => Effect.fork(rt.get("cold")))
        const deadline = Date.now() + 20_000
        for (;;) {
          const statuses = yield* Effect.forEach(fibers, Fiber.status)
          const started = (yield* Ref.get(calls)) > 0
          if (started && statuses.every((s) => s._tag === "Suspended")) break
          if (Date.now() > deadline) return yield* Effect.die(new Error("the gets never all waited"))
          yield* Effect.sleep("10 millis")
        }
        yield* Deferred.succeed(gate, undefined)
        return yield* Effect.forEach(fibers, Fiber.join)
      })
    ).pipe(Effect.provide(stack.pipe(Layer.provide(base))), Effect.orDie)
    return { values, calls: yield* Ref.get(calls) }
  })

describe("Singleflight", () => {
  it.live("stampede on memory: 1,000 concurrent gets of a cold key run the loader once", () =>
    Effect.gen(function* () {
      const { values, calls } = yield* stampede(MemoryCache.layer(), true)
      assert.strictEqual(calls, 1)
      assert.isTrue(values.every((v) => Option.getOrUndefined(v) === "loaded cold"))
    })
  )

  it.live("without it the same stampede loads once per get (the test above can fail)", () =>
    Effect.gen(function* () {
      const { calls } = yield* stampede(MemoryCache.layer(), false)
      assert.strictEqual(calls, 1000)
    })
  )

  describe.skipIf(!serviceAvailable("redis"))("on Redis", () => {
    it.live("stampede on Redis: 1,000 concurrent gets of a cold key run the loader once", () =>
      Effect.gen(function* () {
        const base = RedisCache.layer({ url: serviceUrls.redis, keyPrefix: `singleflight:${randomUUID()}:` })
        const { values, calls } = yield* stampede(base, true)
        assert.strictEqual(calls, 1)
        assert.strictEqual(values.length, 1000)
        assert.isTrue(values.every((v) => Option.getOrUndefined(v) === "loaded cold"))
      })
    )
  })

  it.scoped("every waiter gets the one failure; the next call runs again", () =>
    Effect.gen(function* () {
      const group = yield* Singleflight.make
      const calls = yield* Ref.make(0)
      const gate = yield* Deferred.make<void>()
      const failing = Effect.zipRight(
        Ref.update(calls, (n) => n + 1),
        Effect.zipRight(Deferred.await(gate), Effect.fail("boom" as const))
      )
      const waiters = yield* Effect.forEach(
        Array.from({ length: 10 }),
        () => Effect.fork(Effect.flip(group.run("k", failing))),
        { concurrency: "unbounded" }
      )
      yield* Effect.yieldNow()
      assert.strictEqual(yield* group.inFlight, 1)
      yield* Deferred.succeed(gate, undefined)
      const errors = yield* Fiber.joinAll(waiters)
      assert.deepStrictEqual(
        errors,
        Array.from({ length: 10 }, () => "boom")
      )
      assert.strictEqual(yield* Ref.get(calls), 1)
      assert.strictEqual(yield* group.inFlight, 0)
      yield* Effect.flip(group.run("k", failing))
      assert.strictEqual(yield* Ref.get(calls), 2)
    })
  )

  it.scoped("interrupting a waiter, even the leader, does not cancel the run for the others", () =>
    Effect.gen(function* () {
      const group = yield* Singleflight.make
      const gate = yield* Deferred.make<void>()
      const finished = yield* Ref.make(false)
      const work = Deferred.await(gate).pipe(Effect.zipRight(Ref.set(finished, true)), Effect.as("value"))
      const leader = yield* Effect.fork(group.run("k", work))
      yield* Effect.yieldNow()
      const follower = yield* Effect.fork(group.run("k", work))
      yield* Effect.yieldNow()
      yield* Fiber.interrupt(leader)
      yield* Deferred.succeed(gate, undefined)
      assert.strictEqual(yield* Fiber.join(follower), "value")
      assert.isTrue(yield* Ref.get(finished))
    })
  )

  it.scoped("the run uses the leader's context: its services and fiber refs", () =>
    Effect.gen(function* () {
      const group = yield* Singleflight.make
      const ref = FiberRef.unsafeMake("default")
      const gate = yield* Deferred.make<void>()
      const work = Effect.zipRight(Deferred.await(gate), Effect.all([Greeting, FiberRef.get(ref)]))
      const leader = yield* Effect.fork(
        group
          .run("k", work)
          .pipe(Effect.provideService(Greeting, "leader"), Effect.locally(ref, "leader-ref"))
      )
      yield* Effect.yieldNow()
      const follower = yield* Effect.fork(
        group.run("k", work).pipe(Effect.provideService(Greeting, "follower"))
      )
      yield* Effect.yieldNow()
      yield* Deferred.succeed(gate, undefined)
      assert.deepStrictEqual(yield* Fiber.join(leader), ["leader", "leader-ref"])
      assert.deepStrictEqual(yield* Fiber.join(follower), ["leader", "leader-ref"])
    })
  )

  it.scoped("different keys run separately", () =>
    Effect.gen(function* () {
      const group = yield* Singleflight.make
      const calls = yield* Ref.make(0)
      const work = (key: string) =>
        Effect.as(
          Ref.update(calls, (n) => n + 1),
          key
        )
      const results = yield* Effect.forEach(["a", "b", "a"], (key) => group.run(key, work(key)), {
        concurrency: "unbounded"
      })
      assert.deepStrictEqual(results, ["a", "b", "a"])
      assert.isAtLeast(yield* Ref.get(calls), 2)
    })
  )

  it.live("closing the group's scope interrupts a run in flight", () =>
    Effect.gen(function* () {
      const outcome = yield* Effect.scoped(
        Effect.gen(function* () {
          const group = yield* Singleflight.make
          return yield* Effect.fork(group.run("k", Effect.never))
        })
      ).pipe(Effect.flatMap(Fiber.await))
      assert.strictEqual(outcome._tag, "Failure")
    })
  )
})

class Greeting extends Context.Tag("test/Singleflight/Greeting")<Greeting, string>() {}
