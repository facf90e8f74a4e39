import { randomUUID } from "node:crypto"
import { afterAll, assert, describe, it } from "@effect/vitest"
import { Effect, Option } from "effect"
import { Redis } from "ioredis"
import * as Cache from "../../src/Cache/Cache.js"
import { CacheError } from "../../src/Cache/CacheError.js"
import * as RedisCache from "../../src/Cache/RedisCache.js"
import { serviceAvailable, serviceUrls } from "../support/services.js"
import { contract } from "./CacheContract.js"
import { bulk, type MockReply, respMock } from "./RespMock.js"

const reasonOf = (e: unknown) => (e instanceof CacheError ? e.reason : `not a CacheError: ${String(e)}`)

/** A cache on a scripted server; `seen` records every command the client sent. */
const mocked = (respond: (args: ReadonlyArray<string>) => MockReply, commandTimeout?: number) =>
  Effect.gen(function* () {
    const seen: Array<ReadonlyArray<string>> = []
    const port = yield* respMock((args) => {
      seen.push(args)
      return respond(args)
    })
    const cache = yield* RedisCache.make({
      url: `redis://127.0.0.1:${port}`,
      ...(commandTimeout === undefined ? {} : { commandTimeout }),
      redisOptions: { enableReadyCheck: false, maxRetriesPerRequest: 0, retryStrategy: () => null }
    })
    return { cache, seen }
  })

describe("RedisCache against a scripted server", () => {
  it.scoped('a SET answered with anything but OK is an unexpected_reply (the notes\' "un ok")', () =>
    Effect.gen(function* () {
      const { cache, seen } = yield* mocked(() => "+un ok\r\n")
      const error = yield* Effect.flip(cache.set("k", "v", "1 second"))
      assert.strictEqual(reasonOf(error), "unexpected_reply")
      assert.deepStrictEqual(seen.at(-1), ["set", "k", '"v"', "PX", "1000"])
    })
  )

  it.scoped("a stored value that is not JSON is a decode error; an error reply is unexpected_reply", () =>
    Effect.gen(function* () {
      const { cache } = yield* mocked((args) =>
        args[1] === "bad" ? bulk("not json") : "-ERR something odd\r\n"
      )
      assert.strictEqual(reasonOf(yield* Effect.flip(cache.get("bad"))), "decode")
      assert.strictEqual(reasonOf(yield* Effect.flip(cache.get("other"))), "unexpected_reply")
    })
  )

  it.scoped("INCRBY on a non-integer and WRONGTYPE replies are type errors", () =>
    Effect.gen(function* () {
      const { cache } = yield* mocked((args) =>
        args[0] === "incrby"
          ? "-ERR value is not an integer or out of range\r\n"
          : "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"
      )
      assert.strictEqual(reasonOf(yield* Effect.flip(cache.incrBy("k", 1))), "type")
      assert.strictEqual(reasonOf(yield* Effect.flip(cache.get("k"))), "type")
    })
  )

  it.scoped("a reply that never comes is a timeout", () =>
    Effect.gen(function* () {
      const { cache } = yield* mocked(() => ({ hang: true }), 100)
      assert.strictEqual(reasonOf(yield* Effect.flip(cache.delete("k"))), "timeout")
    })
  )

  it.scoped("a dropped connection is a connection error", () =>
    Effect.gen(function* () {
      const { cache } = yield* mocked((args) => (args[0] === "exists" ? { close: true } : "+OK\r\n"))
      assert.strictEqual(reasonOf(yield* Effect.flip(cache.has("k"))), "connection")
    })
  )

  it.effect("nothing listening: building the cache fails with reason connection", () =>
    Effect.gen(function* () {
      const port = yield* Effect.scoped(respMock(() => "+OK\r\n"))
      const error = yield* Effect.flip(
        Effect.scoped(
          RedisCache.make({ url: `redis://127.0.0.1:${port}`, redisOptions: { retryStrategy: () => null } })
        )
      )
      assert.strictEqual(reasonOf(error), "connection")
    })
  )

  it.scoped("load-or-store falls back from EVALSHA to EVAL, and checks the reply's shape", () =>
    Effect.gen(function* () {
      let replies = ["*1\r\n:0\r\n", `*2\r\n:1\r\n${bulk("[1,2]")}`, "*1\r\n:7\r\n"]
      const { cache, seen } = yield* mocked((args) => {
        if (args[0] === "evalsha") return "-NOSCRIPT No matching script. Please use EVAL.\r\n"
        if (args[0] !== "eval") return "+OK\r\n"
        const [next = "-ERR no more\r\n", ...rest] = replies
        replies = rest
        return next
      })
      assert.deepStrictEqual(yield* cache.loadOrStore("k", { a: 1 }, "5 seconds"), {
        value: { a: 1 },
        loaded: false
      })
      assert.deepStrictEqual(seen.at(-1)?.slice(2), ["1", "k", '{"a":1}', "5000"])
      assert.deepStrictEqual(yield* cache.loadOrStore("k", "x"), { value: [1, 2], loaded: true })
      assert.strictEqual(seen.at(-1)?.[0], "eval")
      assert.strictEqual(seen.at(-1)?.at(-1), "")
      assert.strictEqual(reasonOf(yield* Effect.flip(cache.loadOrStore("k", "x"))), "unexpected_reply")
    })
  )

  it.scoped("a value JSON cannot represent is an encode error and nothing is sent", () =>
    Effect.gen(function* () {
      const { cache, seen } = yield* mocked(() => "+OK\r\n")
      const before = seen.length
      assert.strictEqual(reasonOf(yield* Effect.flip(cache.set("k", undefined))), "encode")
      assert.strictEqual(reasonOf(yield* Effect.flip(cache.set("k", 1n))), "encode")
      assert.strictEqual(reasonOf(yield* Effect.flip(cache.loadOrStore("k", () => 1))), "encode")
      assert.strictEqual(seen.length, before)
    })
  )
})

const redisUp = serviceAvailable("redis")
const keyPrefix = `test:RedisCache:${randomUUID().slice(0, 8)}:`

describe.skipIf(!redisUp)("RedisCache on a real Redis", () => {
  contract("RedisCache (single node)", RedisCache.layer({ url: serviceUrls.redis, keyPrefix }))

  afterAll(async () => {
    const redis = new Redis(serviceUrls.redis)
    const keys = await redis.keys(`${keyPrefix}*`)
    if (keys.length > 0) await redis.del(...keys)
    await redis.quit()
  })

  it.scoped("values are stored as JSON text under the key prefix; integers as plain numbers", () =>
    Effect.gen(function* () {
      const cache = yield* RedisCache.make({ url: serviceUrls.redis, keyPrefix })
      yield* cache.set("json", { a: "b" })
      yield* cache.incrBy("count", 3)
      assert.strictEqual(yield* Effect.promise(() => cache.client.get(`${keyPrefix}json`)), '{"a":"b"}')
      assert.strictEqual(yield* Effect.promise(() => cache.client.get(`${keyPrefix}count`)), "3")
    })
  )

  it.scoped("foreign data: non-JSON text is a decode error, a list is a type error", () =>
    Effect.gen(function* () {
      const cache = yield* RedisCache.make({ url: serviceUrls.redis, keyPrefix })
      yield* Effect.promise(() => cache.client.set(`${keyPrefix}plain`, "hello"))
      yield* Effect.promise(() => cache.client.rpush(`${keyPrefix}list`, "x"))
      assert.strictEqual(reasonOf(yield* Effect.flip(cache.get("plain"))), "decode")
      assert.strictEqual(reasonOf(yield* Effect.flip(cache.get("list"))), "type")
      assert.strictEqual(reasonOf(yield* Effect.flip(cache.incrBy("list", 1))), "type")
    })
  )

  it.effect("a URL client is closed with the scope; an injected client is left to its owner", () =>
    Effect.gen(function* () {
      const owned = yield* Effect.scoped(RedisCache.make({ url: serviceUrls.redis, keyPrefix }))
      assert.strictEqual(reasonOf(yield* Effect.flip(owned.get("x"))), "connection")
      const mine = new Redis(serviceUrls.redis)
      const injected = yield* Effect.scoped(RedisCache.make({ client: mine, keyPrefix }))
      yield* injected.set("still-open", 1)
      assert.deepStrictEqual(
        yield* Effect.scoped(Effect.flatMap(Cache.Cache, (c) => c.get("still-open"))).pipe(
          Effect.provide(RedisCache.layer({ client: mine, keyPrefix }))
        ),
        Option.some(1)
      )
      yield* Effect.promise(() => mine.quit())
    })
  )
})
