/**
 * The behaviour every `Cache` backend must have, written once and run per backend (MemoryCache,
 * RedisCache on a single node and on a cluster, and `Cache.layerTest`).
 */
import { assert, describe, it } from "@effect/vitest"
import { Duration, Effect, Either, type Layer, Option, Schema, TestClock } from "effect"
import * as Cache from "../../src/Cache/Cache.js"
import { CacheError } from "../../src/Cache/CacheError.js"

class User extends Schema.Class<User>("User")({
  id: Schema.Number,
  name: Schema.String,
  joined: Schema.DateFromString
}) {}

const reasonOf = (e: unknown) => (e instanceof CacheError ? e.reason : `not a CacheError: ${String(e)}`)

/**
 * `expiry`: whose clock expires entries: the Effect `Clock` (memory backends; tested with TestClock)
 * or the server's (Redis; tested by polling with a deadline).
 */
export const contract = <E>(
  name: string,
  layer: Layer.Layer<Cache.Cache, E>,
  options: { readonly expiry: "clock" | "server" } = { expiry: "clock" }
) =>
  describe(`Cache contract: ${name}`, () => {
    const test = <A, E2>(body: (cache: Cache.Cache) => Effect.Effect<A, E2>) =>
      Effect.flatMap(Cache.Cache, body).pipe(Effect.provide(layer))

    it.effect("get on a missing key is None; getOrFail fails with CacheMissError", () =>
      test((cache) =>
        Effect.gen(function* () {
          assert.isTrue(Option.isNone(yield* cache.get("missing")))
          const miss = yield* Effect.flip(cache.getOrFail("missing"))
          assert.strictEqual(miss._tag, "CacheMissError")
          assert.strictEqual(miss._tag === "CacheMissError" ? miss.key : "", "missing")
        })
      )
    )

    it.effect("set then get returns JSON-representable values intact; set replaces", () =>
      test((cache) =>
        Effect.gen(function* () {
          const values: ReadonlyArray<unknown> = [
            "text",
            42,
            -1.5,
            true,
            null,
            [1, "a", { b: [2] }],
            { n: { m: "x" } }
          ]
          for (const [i, value] of values.entries()) {
            yield* cache.set(`v${i}`, value)
            assert.deepStrictEqual(yield* cache.getOrFail(`v${i}`), value)
          }
          yield* cache.set("v0", "replaced")
          assert.deepStrictEqual(yield* cache.get("v0"), Option.some("replaced"))
        })
      )
    )

    it.effect("delete and loadAndDelete return what was there, once", () =>
      test((cache) =>
        Effect.gen(function* () {
          yield* cache.set("d", { x: 1 })
          assert.deepStrictEqual(yield* cache.delete("d"), Option.some({ x: 1 }))
          assert.isTrue(Option.isNone(yield* cache.delete("d")))
          assert.isFalse(yield* cache.has("d"))
          yield* cache.set("l", "v")
          assert.deepStrictEqual(yield* cache.loadAndDelete("l"), Option.some("v"))
          assert.isTrue(Option.isNone(yield* cache.loadAndDelete("l")))
        })
      )
    )

    it.effect("has tells whether a value is stored", () =>
      test((cache) =>
        Effect.gen(function* () {
          assert.isFalse(yield* cache.has("h"))
          yield* cache.set("h", 0)
          assert.isTrue(yield* cache.has("h"))
        })
      )
    )

    it.effect("loadOrStore stores when absent and loads when present", () =>
      test((cache) =>
        Effect.gen(function* () {
          assert.deepStrictEqual(yield* cache.loadOrStore("los", "first"), { value: "first", loaded: false })
          assert.deepStrictEqual(yield* cache.loadOrStore("los", "second"), { value: "first", loaded: true })
          assert.deepStrictEqual(yield* cache.get("los"), Option.some("first"))
        })
      )
    )

    it.effect("incrBy/decrBy: a missing key starts at 0 and the value stays a number", () =>
      test((cache) =>
        Effect.gen(function* () {
          assert.strictEqual(yield* cache.incrBy("n", 5), 5)
          assert.strictEqual(yield* cache.decrBy("n", 7), -2)
          assert.deepStrictEqual(yield* cache.get("n"), Option.some(-2))
          yield* cache.set("m", 10)
          assert.strictEqual(yield* cache.incrBy("m", 1), 11)
        })
      )
    )

    it.effect("incrBy on a non-integer value fails with reason type and leaves it alone", () =>
      test((cache) =>
        Effect.gen(function* () {
          yield* cache.set("s", "abc")
          yield* cache.set("f", 1.5)
          yield* cache.set("o", { n: 1 })
          for (const key of ["s", "f", "o"]) {
            assert.strictEqual(reasonOf(yield* Effect.flip(cache.incrBy(key, 1))), "type")
          }
          assert.deepStrictEqual(yield* cache.get("s"), Option.some("abc"))
          assert.deepStrictEqual(yield* cache.get("f"), Option.some(1.5))
        })
      )
    )

    it.effect("bad arguments fail with reason invalid_argument and write nothing", () =>
      test((cache) =>
        Effect.gen(function* () {
          assert.strictEqual(reasonOf(yield* Effect.flip(cache.incrBy("i", 1.5))), "invalid_argument")
          assert.strictEqual(reasonOf(yield* Effect.flip(cache.set("t", 1, 0))), "invalid_argument")
          assert.strictEqual(reasonOf(yield* Effect.flip(cache.set("t", 1, "-1 second"))), "invalid_argument")
          assert.strictEqual(reasonOf(yield* Effect.flip(cache.loadOrStore("t", 1, 0))), "invalid_argument")
          assert.isFalse(yield* cache.has("i"))
          assert.isFalse(yield* cache.has("t"))
          yield* cache.set("forever", 1, Duration.infinity)
          assert.isTrue(yield* cache.has("forever"))
        })
      )
    )

    if (options.expiry === "clock") {
      it.effect("entries expire after their TTL; set clears a TTL; incrBy keeps it (TestClock)", () =>
        test((cache) =>
          Effect.gen(function* () {
            yield* cache.set("ttl", "v", "60 millis")
            yield* cache.set("cleared", "v", "60 millis")
            yield* cache.set("cleared", "v2")
            yield* cache.set("counter", 1, "60 millis")
            assert.strictEqual(yield* cache.incrBy("counter", 1), 2)
            yield* cache.set("kept", "v", "10 seconds")
            yield* TestClock.adjust("59 millis")
            assert.isTrue(yield* cache.has("ttl"))
            assert.deepStrictEqual(yield* cache.get("counter"), Option.some(2))
            yield* TestClock.adjust("1 milli")
            assert.isTrue(Option.isNone(yield* cache.get("ttl")))
            assert.isFalse(yield* cache.has("ttl"))
            assert.isTrue(Option.isNone(yield* cache.delete("ttl")))
            assert.isTrue(Option.isNone(yield* cache.get("counter")))
            assert.deepStrictEqual(yield* cache.get("cleared"), Option.some("v2"))
            assert.deepStrictEqual(yield* cache.get("kept"), Option.some("v"))
            assert.deepStrictEqual(yield* cache.loadOrStore("ttl", "new"), { value: "new", loaded: false })
            assert.strictEqual(yield* cache.incrBy("counter", 1), 1)
          })
        )
      )
    } else {
      // The server's clock: no TestClock, so wait for the expiry by polling with a deadline. Keys that
      // must expire are written before "ttl" with the same TTL, so once "ttl" is gone they are due too.
      it.live("entries expire after their TTL; set clears a TTL; incrBy keeps it (server clock)", () =>
        test((cache) =>
          Effect.gen(function* () {
            yield* cache.set("cleared", "v", "500 millis")
            yield* cache.set("cleared", "v2")
            yield* cache.set("counter", 1, "500 millis")
            assert.strictEqual(yield* cache.incrBy("counter", 1), 2)
            yield* cache.set("ttl", "v", "500 millis")
            yield* cache.set("kept", "v", "1 hour")
            yield* cache.set("long", "v", "30 seconds")
            assert.isTrue(yield* cache.has("long"))
            const deadline = Date.now() + 10_000
            while (Option.isSome(yield* cache.get("ttl")) && Date.now() < deadline)
              yield* Effect.sleep("50 millis")
            assert.isTrue(Option.isNone(yield* cache.get("ttl")))
            assert.isFalse(yield* cache.has("ttl"))
            assert.isTrue(Option.isNone(yield* cache.delete("ttl")))
            assert.isTrue(Option.isNone(yield* cache.get("counter")))
            assert.deepStrictEqual(yield* cache.get("cleared"), Option.some("v2"))
            assert.deepStrictEqual(yield* cache.get("kept"), Option.some("v"))
            assert.deepStrictEqual(yield* cache.loadOrStore("ttl", "new"), { value: "new", loaded: false })
            assert.strictEqual(yield* cache.incrBy("counter", 1), 1)
          })
        )
      )
    }

    it.live("concurrent composites are atomic: no lost increment, one store wins", () =>
      test((cache) =>
        Effect.gen(function* () {
          yield* Effect.forEach(
            Array.from({ length: 100 }, (_, i) => i),
            () => cache.incrBy("hits", 1),
            {
              concurrency: "unbounded",
              discard: true
            }
          )
          assert.deepStrictEqual(yield* cache.get("hits"), Option.some(100))
          const results = yield* Effect.forEach(
            Array.from({ length: 20 }, (_, i) => i),
            (i) => cache.loadOrStore("winner", `fiber-${i}`),
            { concurrency: "unbounded" }
          )
          const stored = results.filter((r) => !r.loaded)
          assert.strictEqual(stored.length, 1)
          const winner = stored[0]?.value
          assert.isTrue(results.every((r) => r.value === winner))
          assert.deepStrictEqual(yield* cache.get("winner"), Option.some(winner))
          const deleted = yield* Effect.forEach(
            Array.from({ length: 10 }),
            () => cache.loadAndDelete("winner"),
            {
              concurrency: "unbounded"
            }
          )
          assert.strictEqual(deleted.filter(Option.isSome).length, 1)
        })
      )
    )

    it.effect("forSchema stores the encoded value and decodes it back; bad data is a decode error", () =>
      test((cache) =>
        Effect.gen(function* () {
          const users = Cache.forSchema(User)(cache)
          const ada = new User({ id: 1, name: "Ada", joined: new Date("2020-01-02T03:04:05.000Z") })
          yield* users.set("u1", ada)
          const back = yield* users.getOrFail("u1")
          assert.instanceOf(back, User)
          assert.strictEqual(back.joined.toISOString(), "2020-01-02T03:04:05.000Z")
          assert.deepStrictEqual(
            yield* cache.get("u1"),
            Option.some({ id: 1, name: "Ada", joined: "2020-01-02T03:04:05.000Z" })
          )
          yield* cache.set("u2", { id: "not a number", name: "Bob", joined: "2020-01-01" })
          assert.strictEqual(reasonOf(yield* Effect.flip(users.get("u2"))), "decode")
          const loaded = yield* users.loadOrStore(
            "u1",
            new User({ id: 2, name: "Other", joined: new Date(0) })
          )
          assert.isTrue(loaded.loaded)
          assert.strictEqual(loaded.value.name, "Ada")
          assert.strictEqual(
            Option.map(yield* users.delete("u1"), (u) => u.id).pipe(Option.getOrElse(() => -1)),
            1
          )
        })
      )
    )

    it.effect("prefixed views do not collide", () =>
      test((cache) =>
        Effect.gen(function* () {
          const a = Cache.prefixed("a:")(cache)
          const b = Cache.prefixed("b:")(cache)
          yield* a.set("k", 1)
          yield* b.set("k", 2)
          assert.deepStrictEqual(yield* a.get("k"), Option.some(1))
          assert.deepStrictEqual(yield* b.get("k"), Option.some(2))
          assert.deepStrictEqual(yield* cache.get("a:k"), Option.some(1))
          assert.isTrue(Either.isRight(yield* Effect.either(b.delete("k"))))
          assert.isFalse(yield* cache.has("b:k"))
        })
      )
    )
  })
