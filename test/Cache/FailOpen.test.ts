import { describe, expect, it } from "@effect/vitest"
import { Effect, Metric, Option } from "effect"
import * as Cache from "../../src/Cache/Cache.js"
import { CacheError } from "../../src/Cache/CacheError.js"
import * as FailOpen from "../../src/Cache/FailOpen.js"

const down = (operation: string) => Effect.fail(new CacheError({ reason: "connection", operation }))

/** A cache whose every operation fails as a lost Redis connection would. */
const broken: Cache.Cache<string> = Cache.make({
  get: () => down("get"),
  set: () => down("set"),
  delete: () => down("delete"),
  has: () => down("has"),
  loadOrStore: () => down("loadOrStore"),
  incrBy: () => down("incrBy")
})

const errorsOf = (name: string) =>
  Effect.map(Metric.value(Metric.tagged(FailOpen.errors, "cache", name)), (state) => state.count)

describe("FailOpen", () => {
  it.effect("answers reads as misses and skips writes, counting each absorbed error", () =>
    Effect.gen(function* () {
      const cache = Cache.make(FailOpen.make("users-a")(broken))
      expect(yield* cache.get("k")).toEqual(Option.none())
      yield* cache.set("k", "v")
      expect(yield* cache.delete("k")).toEqual(Option.none())
      expect(yield* cache.has("k")).toBe(false)
      expect(yield* cache.loadOrStore("k", "v")).toEqual({ value: "v", loaded: false })
      expect(yield* errorsOf("users-a")).toBe(5)
    })
  )

  it.effect("leaves counters failing: an increment has no safe answer", () =>
    Effect.gen(function* () {
      const cache = Cache.make(FailOpen.make("users-b")(broken))
      expect(yield* Effect.flip(cache.incrBy("n", 1))).toMatchObject({
        _tag: "CacheError",
        reason: "connection"
      })
      expect(yield* errorsOf("users-b")).toBe(0)
    })
  )

  it.effect("passes a working cache through unchanged", () =>
    Effect.gen(function* () {
      const cache = Cache.make(FailOpen.make("users-c")(yield* Cache.makeTest))
      yield* cache.set("k", "v")
      expect(yield* cache.get("k")).toEqual(Option.some("v"))
      expect(yield* errorsOf("users-c")).toBe(0)
    })
  )
})
