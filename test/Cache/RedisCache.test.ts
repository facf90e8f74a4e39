import { randomUUID } from "node:crypto"
import { afterAll, assert, describe, it } from "@effect/vitest"
import { Duration, Effect, Either, Exit, Fiber, Metric, Option, Scope } from "effect"
import { Redis, type RedisOptions } from "ioredis"
import * as Cache from "../../src/Cache/Cache.js"
import { CacheError } from "../../src/Cache/CacheError.js"
import * as FailOpen from "../../src/Cache/FailOpen.js"
import * as RedisCache from "../../src/Cache/RedisCache.js"
import { startRedisServer, withClient } from "../support/redisServer.js"
import { serviceAvailable, serviceUrls } from "../support/services.js"
import { contract } from "./CacheContract.js"
import { pollUntil } from "./Poll.js"
import { bulk, type MockReply, respMock } from "./RespMock.js"

/** A write as the cache sends it (EVALSHA sha 1 key deadline op value ttl), as [op, key, value, ttl]. */
const writeArgs = (args: ReadonlyArray<string> | undefined) =>
  args === undefined ? [] : [args[5], args[3], args[6], args[7]]

const reasonOf = (e: unknown) => (e instanceof CacheError ? e.reason : `not a CacheError: ${String(e)}`)

/** What the scripted server's clock says: TIME replies 1700000000 s (in 2023, so far from ours). */
const serverSeconds = 1_700_000_000

/**
 * A cache on a scripted server that answers TIME itself (the cache asks it before its first write);
 * `seen` records every other command the client sent.
 */
const mocked = (respond: (args: ReadonlyArray<string>) => MockReply, commandTimeout?: number) =>
  Effect.gen(function* () {
    const seen: Array<ReadonlyArray<string>> = []
    const port = yield* respMock((args) => {
      if (args[0] === "time") return `*2\r\n${bulk(String(serverSeconds))}${bulk("0")}`
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
  it.scoped("a SET answered with anything but OK is an unexpected_reply", () =>
    Effect.gen(function* () {
      const { cache, seen } = yield* mocked(() => "+un ok\r\n")
      const error = yield* Effect.flip(cache.set("k", "v", "1 second"))
      assert.strictEqual(reasonOf(error), "unexpected_reply")
      assert.deepStrictEqual(writeArgs(seen.at(-1)), ["set", "k", '"v"', "1000"])
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
        args[0] === "evalsha" && args[5] === "incrBy"
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

  it.scoped("every write carries a deadline in the server's clock: now + commandTimeout - margin", () =>
    Effect.gen(function* () {
      const { cache, seen } = yield* mocked((args) => (args[5] === "incrBy" ? ":1\r\n" : "+OK\r\n"), 400)
      const before = Date.now()
      yield* cache.set("k", 1)
      yield* cache.incrBy("n", 1)
      const elapsed = Date.now() - before
      const deadlines = seen.filter((args) => args[0] === "evalsha").map((args) => Number(args[4]))
      assert.strictEqual(deadlines.length, 2)
      for (const deadline of deadlines) {
        // 400 ms minus the 10 ms margin after the server's TIME, plus at most the time the test took.
        assert.isAtLeast(deadline, serverSeconds * 1000 + 390)
        assert.isAtMost(deadline, serverSeconds * 1000 + 390 + elapsed + 1)
      }
    })
  )

  it.scoped("a write the server refused as EXPIRED is a timeout", () =>
    Effect.gen(function* () {
      const { cache } = yield* mocked(() => "-EXPIRED the deadline passed before Redis ran the write\r\n")
      assert.strictEqual(reasonOf(yield* Effect.flip(cache.set("k", 1))), "timeout")
      assert.strictEqual(reasonOf(yield* Effect.flip(cache.incrBy("k", 1))), "timeout")
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
      assert.deepStrictEqual(writeArgs(seen.at(-1)), ["loadOrStore", "k", '{"a":1}', "5000"])
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
      assert.strictEqual(reasonOf(yield* Effect.flip(cache.incrBy("plain", 1))), "type")
      assert.strictEqual(reasonOf(yield* Effect.flip(cache.loadOrStore("list", 1))), "type")
      assert.strictEqual(reasonOf(yield* Effect.flip(cache.delete("list"))), "type")
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

  /**
   * A server, a cache on it (300 ms timeout), its fail-open view named `name`, and the control: a plain
   * ioredis client with the same timeout and `options`, disconnected with the scope.
   */
  const setup = (name: string, options: RedisOptions) =>
    Effect.gen(function* () {
      const redis = yield* server
      const cache = yield* RedisCache.make({ url: redis.url, commandTimeout: "300 millis" })
      const failOpen = Cache.make(FailOpen.make(name)(cache))
      const plain = new Redis(redis.url, { commandTimeout: 300, ...options })
      plain.on("error", () => {})
      yield* Effect.addFinalizer(() => Effect.sync(() => plain.disconnect()))
      return { redis, cache, failOpen, plain }
    })

  it.scopedLive(
    "a command that failed while Redis was down never takes effect after the restart (a replaying client's does)",
    () =>
      Effect.gen(function* () {
        // The control: plain commands on ioredis as it comes, offline queue on (what the cache used to be).
        const { redis, cache, failOpen, plain } = yield* setup("outage", {})
        yield* cache.incrBy("ours", 5)
        yield* Effect.promise(() => plain.incrby("theirs", 5))
        yield* cache.set("written", "before")
        yield* Effect.promise(() => redis.kill())

        assert.strictEqual(reasonOf(yield* Effect.flip(cache.incrBy("ours", 1))), "connection")
        // Fail-open reports the write skipped (it succeeds as a no-op)...
        yield* failOpen.set("written", "skipped")
        const absorbed = yield* Metric.value(Metric.tagged(FailOpen.errors, "cache", "outage"))
        assert.strictEqual(absorbed.count, 1)
        const queued = yield* Effect.either(Effect.tryPromise(() => plain.incrby("theirs", 1)))
        assert.isTrue(Either.isLeft(queued))

        yield* Effect.promise(() => redis.restart())
        // Until the client has reconnected, the get fails: that counts as not yet.
        const answers = (c: Cache.Cache, key: string) =>
          Effect.orElseSucceed(Effect.map(c.get(key), Option.isSome), () => false)
        yield* pollUntil("the cache to reconnect", 15_000, answers(cache, "ours"))
        yield* pollUntil(
          "the replaying client to reconnect",
          15_000,
          Effect.promise(() =>
            plain.exists("theirs").then(
              (n) => n === 1,
              () => false
            )
          )
        )
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
    "a write that timed out while Redis hung never takes effect when it resumes (a plain command does)",
    () =>
      Effect.gen(function* () {
        // The control: the same kind of write as a plain command, on a client that never replays.
        const { redis, cache, failOpen, plain } = yield* setup("hang", RedisCache.noReplay)
        yield* cache.set("set", "before")
        yield* cache.set("deleted", "kept")
        yield* cache.incrBy("counted", 5)
        yield* cache.set("skipped", "before")
        yield* Effect.promise(() => plain.incrby("control", 5))

        redis.pause()
        yield* Effect.addFinalizer(() => Effect.sync(() => redis.resume()))
        // Each write reaches the stopped server's socket and times out for its caller.
        assert.strictEqual(reasonOf(yield* Effect.flip(cache.set("set", "after"))), "timeout")
        assert.strictEqual(reasonOf(yield* Effect.flip(cache.delete("deleted"))), "timeout")
        assert.strictEqual(reasonOf(yield* Effect.flip(cache.incrBy("counted", 1))), "timeout")
        assert.strictEqual(reasonOf(yield* Effect.flip(cache.loadOrStore("stored", "after"))), "timeout")
        // Fail-open reports its write skipped (it succeeds as a no-op).
        yield* failOpen.set("skipped", "after")
        const absorbed = yield* Metric.value(Metric.tagged(FailOpen.errors, "cache", "hang"))
        assert.strictEqual(absorbed.count, 1)
        const control = yield* Effect.either(Effect.tryPromise(() => plain.incrby("control", 1)))
        assert.isTrue(Either.isLeft(control))

        redis.resume()
        // A reply on the cache's own connection comes after Redis ran everything sent on it before.
        yield* pollUntil(
          "the cache to answer again",
          15_000,
          Effect.orElseSucceed(Effect.as(cache.has("set"), true), () => false)
        )
        assert.strictEqual(yield* rawGet(redis.port, "set"), '"before"')
        assert.strictEqual(yield* rawGet(redis.port, "deleted"), '"kept"')
        assert.strictEqual(yield* rawGet(redis.port, "counted"), "5")
        assert.strictEqual(yield* rawGet(redis.port, "stored"), null)
        assert.strictEqual(yield* rawGet(redis.port, "skipped"), '"before"')
        // The plain INCRBY its caller saw time out ran when Redis resumed: the test can tell.
        assert.strictEqual(yield* Effect.promise(() => plain.get("control")), "6")
        // And the cache writes again once Redis answers.
        yield* cache.set("set", "later")
        assert.strictEqual(yield* rawGet(redis.port, "set"), '"later"')
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
