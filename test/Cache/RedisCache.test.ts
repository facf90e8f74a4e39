import { randomUUID } from "node:crypto"
import { afterAll, assert, describe, it } from "@effect/vitest"
import { Duration, Effect, Either, Exit, Fiber, Metric, Option, Scope } from "effect"
import { Redis } from "ioredis"
import * as Cache from "../../src/Cache/Cache.js"
import { CacheError } from "../../src/Cache/CacheError.js"
import * as FailOpen from "../../src/Cache/FailOpen.js"
import * as RedisCache from "../../src/Cache/RedisCache.js"
import { startRedisServer, withClient } from "../support/redisServer.js"
import { serviceAvailable, serviceUrls } from "../support/services.js"
import { contract } from "./CacheContract.js"
import { pollUntil } from "./Poll.js"
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
  contract("RedisCache (single node)", RedisCache.layer({ url: serviceUrls.redis, keyPrefix }), {
    expiry: "server"
  })

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

/** The raw text of `key` on the server, through a client of its own. */
const rawGet = (port: number, key: string) => Effect.promise(() => withClient(port, (c) => c.get(key)))

describe("RedisCache against a redis-server the test kills, pauses and restarts", () => {
  const server = Effect.acquireRelease(
    Effect.promise(() => startRedisServer()),
    (s) => Effect.promise(() => s.stop())
  )

  it.scopedLive(
    "a command that failed while Redis was down never takes effect after the restart (a replaying client's does)",
    () =>
      Effect.gen(function* () {
        const redis = yield* server
        const cache = yield* RedisCache.make({ url: redis.url, commandTimeout: "300 millis" })
        const failOpen = Cache.make(FailOpen.make("outage")(cache))
        // The control: ioredis as it comes, offline queue on (what the cache used to be).
        const plain = new Redis(redis.url, { commandTimeout: 300 })
        plain.on("error", () => {})
        yield* Effect.addFinalizer(() => Effect.sync(() => plain.disconnect()))
        const replaying = yield* RedisCache.make({ client: plain })
        yield* cache.incrBy("ours", 5)
        yield* replaying.incrBy("theirs", 5)
        yield* cache.set("written", "before")
        yield* Effect.promise(() => redis.kill())

        assert.strictEqual(reasonOf(yield* Effect.flip(cache.incrBy("ours", 1))), "connection")
        // Fail-open reports the write skipped (it succeeds as a no-op)...
        yield* failOpen.set("written", "skipped")
        const absorbed = yield* Metric.value(Metric.tagged(FailOpen.errors, "cache", "outage"))
        assert.strictEqual(absorbed.count, 1)
        assert.strictEqual(reasonOf(yield* Effect.flip(replaying.incrBy("theirs", 1))), "timeout")

        yield* Effect.promise(() => redis.restart())
        // Until the client has reconnected, the get fails: that counts as not yet.
        const answers = (c: Cache.Cache, key: string) =>
          Effect.orElseSucceed(Effect.map(c.get(key), Option.isSome), () => false)
        yield* pollUntil("the cache to reconnect", 15_000, answers(cache, "ours"))
        yield* pollUntil("the replaying client to reconnect", 15_000, answers(replaying, "theirs"))
        // ...and is not applied later; the failed INCRBY counted zero times.
        assert.strictEqual(yield* rawGet(redis.port, "written"), '"before"')
        assert.strictEqual(yield* rawGet(redis.port, "ours"), "5")
        assert.deepStrictEqual(yield* cache.get("ours"), Option.some(5))
        // The replaying client sent the INCRBY its caller saw time out: the test can tell.
        yield* pollUntil(
          "the replayed INCRBY",
          5_000,
          Effect.map(rawGet(redis.port, "theirs"), (v) => v === "6")
        )
      }),
    60_000
  )

  it.scopedLive(
    "closing while Redis hangs with a command in flight ends within closeTimeout; the command fails",
    () =>
      Effect.gen(function* () {
        const redis = yield* server
        const scope = yield* Scope.make()
        const cache = yield* Scope.extend(
          RedisCache.make({ url: redis.url, commandTimeout: "60 seconds", closeTimeout: "500 millis" }),
          scope
        )
        yield* cache.set("k", 1)
        redis.pause()
        yield* Effect.addFinalizer(() => Effect.sync(() => redis.resume()))
        const inFlight = yield* Effect.fork(Effect.either(cache.get("k")))
        // The GET is written to the socket (and unanswered) before the close starts.
        yield* pollUntil(
          "the GET to be in flight",
          5_000,
          Effect.sync(() => (cache.client as Redis).commandQueue.length > 0)
        )
        const started = Date.now()
        yield* Scope.close(scope, Exit.void).pipe(
          Effect.timeoutFail({ duration: "20 seconds", onTimeout: () => new Error("close hung") })
        )
        const took = Date.now() - started
        // 500 ms asked for; generous slack for a loaded machine, far below ioredis's unbounded wait.
        assert.isBelow(took, 5_000)
        const got = yield* Fiber.join(inFlight)
        assert.isTrue(Either.isLeft(got))
        if (Either.isLeft(got)) assert.strictEqual(reasonOf(got.left), "connection")
      }),
    60_000
  )

  it.scopedLive(
    "without a commandTimeout, a command to a hung Redis fails with timeout after the default",
    () =>
      Effect.gen(function* () {
        const redis = yield* server
        const cache = yield* RedisCache.make({ url: redis.url, closeTimeout: "200 millis" })
        redis.pause()
        yield* Effect.addFinalizer(() => Effect.sync(() => redis.resume()))
        const started = Date.now()
        const error = yield* Effect.flip(
          cache
            .get("k")
            .pipe(Effect.timeoutFail({ duration: "20 seconds", onTimeout: () => new Error("hung") }))
        )
        assert.strictEqual(reasonOf(error), "timeout")
        assert.isAtLeast(Date.now() - started, Duration.toMillis(RedisCache.defaultCommandTimeout) - 50)
      })
  )

  it.effect("bad timeouts are typed errors", () =>
    Effect.gen(function* () {
      const bad = yield* Effect.flip(
        Effect.scoped(RedisCache.make({ url: serviceUrls.redis, closeTimeout: 0 }))
      )
      assert.strictEqual(reasonOf(bad), "invalid_argument")
      const worse = yield* Effect.flip(
        Effect.scoped(
          RedisCache.make({ url: serviceUrls.redis, commandTimeout: "forever" as Duration.DurationInput })
        )
      )
      assert.strictEqual(reasonOf(worse), "invalid_argument")
    })
  )
})
