/**
 * The Redis cache: the `Cache` service over an ioredis client, a single node or a Cluster. Values are
 * stored as JSON text (so integers are plain decimal strings and INCRBY works on them), keys get an
 * optional prefix, TTLs are in milliseconds (`PX`), and every write is one atomic server-side step: a
 * Lua script running SET, GETDEL, INCRBY or load-or-store.
 *
 * A command the caller saw fail never takes effect later: a client the cache opens has ioredis's
 * offline queue off (a command issued while disconnected fails at once instead of waiting to be sent
 * after a reconnect), does not resend commands that were in flight when the connection dropped, and
 * fails those at once. A command that reached the server before its timeout may still have run there
 * (at most once); it is never sent twice. A write Redis reaches only after its caller timed out (Redis
 * hung with the write in its socket buffer) is refused there: it carries a deadline in Redis's clock. Commands time out after `commandTimeout` (default 1 second)
 * and closing is bounded by `closeTimeout` (default 2 seconds), Redis up or down.
 *
 * @since 0.1.0
 */
import { createHash } from "node:crypto"
import { Context, Duration, Effect, Either, Layer, Option } from "effect"
import type * as Scope from "effect/Scope"
import { type Cluster, Redis, type RedisOptions } from "ioredis"
import * as Cache from "./Cache.js"
import { CacheError, type CacheErrorReason } from "./CacheError.js"
import { checkIncrement, notAnInteger, ttlMillis } from "./internal/arguments.js"

/**
 * Where the client comes from: a URL (the cache opens the connection and closes it with its scope),
 * or a client the caller built and owns (dependency injection; it is not closed).
 *
 * @since 0.1.0
 * @category models
 */
export type Options = {
  /** Prepended to every key (a namespace), e.g. `"app:cache:"`. */
  readonly keyPrefix?: string
} & (
  | {
      readonly url: string
      /**
       * Fails a command the server has not answered in time with reason `timeout` (ioredis
       * `commandTimeout`; default 1 second).
       */
      readonly commandTimeout?: Duration.DurationInput
      /** How long closing waits for the server to acknowledge QUIT before dropping the connection (default 2 seconds). */
      readonly closeTimeout?: Duration.DurationInput
      /**
       * Passed to ioredis, except what would replay a failed command: `enableOfflineQueue`,
       * `autoResendUnfulfilledCommands` and `maxRetriesPerRequest` are always `false`, `false`, `0`.
       */
      readonly redisOptions?: RedisOptions
    }
  | {
      readonly client: Redis | Cluster
    }
)

/**
 * A Redis cache: the `Cache` service plus the client it runs on.
 *
 * @since 0.1.0
 * @category models
 */
export interface RedisCache extends Cache.Cache {
  readonly client: Redis | Cluster
}

/**
 * The Redis cache's own tag; `layer` provides it alongside the generic `Cache`.
 *
 * @since 0.1.0
 * @category tags
 */
export const RedisCache: Context.Tag<RedisCache, RedisCache> =
  Context.GenericTag<RedisCache>("effect-dal/RedisCache")

/**
 * Every write is this one script, so that a write Redis runs after its caller timed out does nothing.
 * ARGV[1] is the deadline in Redis's own clock (milliseconds since the epoch; empty for none): past
 * it, the script refuses with an `EXPIRED` error reply before touching the key. ARGV[2] names the
 * write. `redis.pcall` hands a WRONGTYPE or "not an integer" reply back unchanged.
 * load-or-store returns {1, value} when the key held a value, {0} after storing ARGV[3] (PX ARGV[4]).
 */
const writeScript = `if ARGV[1] ~= '' then
  local t = redis.call('TIME')
  if tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) > tonumber(ARGV[1]) then
    return redis.error_reply('EXPIRED the deadline passed before Redis ran the write')
  end
end
local op = ARGV[2]
if op == 'set' then
  if ARGV[4] == '' then return redis.pcall('SET', KEYS[1], ARGV[3]) end
  return redis.pcall('SET', KEYS[1], ARGV[3], 'PX', ARGV[4])
elseif op == 'delete' then
  return redis.pcall('GETDEL', KEYS[1])
elseif op == 'incrBy' then
  return redis.pcall('INCRBY', KEYS[1], ARGV[3])
elseif op == 'loadOrStore' then
  local v = redis.pcall('GET', KEYS[1])
  if type(v) == 'table' then return v end
  if v then return {1, v} end
  local r
  if ARGV[4] == '' then r = redis.pcall('SET', KEYS[1], ARGV[3]) else r = redis.pcall('SET', KEYS[1], ARGV[3], 'PX', ARGV[4]) end
  if r.err then return r end
  return {0}
end
return redis.error_reply('ERR unknown write ' .. tostring(op))`
const writeSha = createHash("sha1").update(writeScript).digest("hex")

type Write = "set" | "delete" | "incrBy" | "loadOrStore"

const reasonOf = (error: unknown): CacheErrorReason => {
  if (!(error instanceof Error)) return "connection"
  if (error.name === "ReplyError") {
    if (error.message.startsWith("EXPIRED")) return "timeout"
    return /^WRONGTYPE|not an integer|out of range/.test(error.message) ? "type" : "unexpected_reply"
  }
  return error.message === "Command timed out" ? "timeout" : "connection"
}

/** Classifies an ioredis failure: server error replies by their text, everything else as transport. */
const classify = (operation: string, key: string, error: unknown): CacheError => {
  const reason = reasonOf(error)
  if (reason === "type" && operation === "incrBy") return notAnInteger(operation, key, error)
  return new CacheError({
    reason,
    operation,
    key,
    detail: error instanceof Error ? error.message : String(error),
    cause: error
  })
}

/**
 * Sends one command and continues with its reply, in a single async step (no extra `flatMap`: this is
 * the hot path the bench compares with raw ioredis).
 */
const request = <R, A>(
  operation: string,
  key: string,
  send: () => Promise<R>,
  onReply: (reply: R) => Effect.Effect<A, CacheError>
): Effect.Effect<A, CacheError> =>
  Effect.async((resume) => {
    try {
      send().then(
        (reply) => resume(onReply(reply)),
        (error: unknown) => resume(Effect.fail(classify(operation, key, error)))
      )
    } catch (error) {
      resume(Effect.fail(classify(operation, key, error)))
    }
  })

const unexpected = (operation: string, key: string, reply: unknown) =>
  new CacheError({ reason: "unexpected_reply", operation, key, detail: `reply: ${JSON.stringify(reply)}` })

const encode = (operation: string, key: string, value: unknown): Either.Either<string, CacheError> => {
  try {
    const text = JSON.stringify(value)
    if (typeof text === "string") return Either.right(text)
    return Either.left(
      new CacheError({
        reason: "encode",
        operation,
        key,
        detail: `${typeof value} is not JSON-representable`
      })
    )
  } catch (cause) {
    return Either.left(new CacheError({ reason: "encode", operation, key, detail: String(cause), cause }))
  }
}

const notJson = (operation: string, key: string, text: string, cause: unknown) =>
  Effect.fail(
    new CacheError({ reason: "decode", operation, key, detail: `not JSON: ${text.slice(0, 80)}`, cause })
  )

const decode = (operation: string, key: string, text: string): Effect.Effect<unknown, CacheError> => {
  try {
    return Effect.succeed(JSON.parse(text))
  } catch (cause) {
    return notJson(operation, key, text, cause)
  }
}

/** `None` for a missing key, the parsed value otherwise: one succeed, no map (hot path). */
const decodeOption = (
  operation: string,
  key: string,
  text: string | null
): Effect.Effect<Option.Option<unknown>, CacheError> => {
  if (text === null) return Effect.succeedNone
  try {
    return Effect.succeed(Option.some(JSON.parse(text)))
  } catch (cause) {
    return notJson(operation, key, text, cause)
  }
}

/** Milliseconds on a clock that never steps (unlike `Date.now`). */
const monotonicNow = () => performance.timeOrigin + performance.now()

/** How often a cache re-estimates Redis's clock while it is in use, so slow drift stays within the margin. */
const clockRefreshMillis = 10_000

/**
 * The deadline's safety margin: it absorbs a timer firing up to a millisecond early and the drift or
 * slew of either clock between two estimates (500 ppm over 10 s is 5 ms).
 */
const marginMillis = (timeout: number) => Math.min(10, timeout / 4)

/**
 * Redis's clock as seen from this process: `offset` is Redis's clock minus ours, estimated low (the
 * server read its clock at most one round trip before the reply arrived, so `time - receivedAt` can
 * only underestimate it). For a Cluster it is the lowest over the masters, so it is low for each.
 * Forgotten when the client (re)connects or a Cluster gains a node: that may be another clock.
 */
interface Clock {
  offset: number | undefined
  at: number
  generation: number
  pending: Promise<number> | undefined
}

const clocks = new WeakMap<Redis | Cluster, Clock>()

const clockOf = (client: Redis | Cluster): Clock => {
  const known = clocks.get(client)
  if (known !== undefined) return known
  const clock: Clock = { offset: undefined, at: 0, generation: 0, pending: undefined }
  const forget = () => {
    clock.offset = undefined
    clock.pending = undefined
    clock.generation++
  }
  client.on("ready", forget)
  if (!(client instanceof Redis)) client.on("+node", forget)
  clocks.set(client, clock)
  return clock
}

const serverOffset = (node: Redis): Promise<number> =>
  node.time().then((reply) => {
    const [seconds, micros] = reply.map(Number)
    if (seconds === undefined || micros === undefined || !Number.isFinite(seconds + micros)) {
      return Promise.reject(new Error(`TIME replied ${JSON.stringify(reply)}`))
    }
    return seconds * 1000 + Math.floor(micros / 1000) - monotonicNow()
  })

/**
 * Estimates Redis's clock anew (one estimate at a time). A background re-estimate whose round trip
 * took over half the timeout is dropped (it would set the deadlines too early); the first is kept.
 */
const estimate = (client: Redis | Cluster, clock: Clock, timeout: number): Promise<number> => {
  if (clock.pending !== undefined) return clock.pending
  const generation = clock.generation
  const started = monotonicNow()
  const nodes = client instanceof Redis ? [client] : client.nodes("master")
  const pending = (
    nodes.length === 0
      ? Promise.reject(new Error("the Cluster knows no master yet"))
      : Promise.all(nodes.map(serverOffset))
  ).then(
    (offsets) => {
      const offset = Math.min(...offsets)
      if (clock.generation !== generation) return offset
      clock.pending = undefined
      if (clock.offset === undefined || monotonicNow() - started <= timeout / 2) {
        clock.offset = offset
        clock.at = monotonicNow()
      }
      return clock.offset
    },
    (error: unknown) => {
      if (clock.generation === generation) clock.pending = undefined
      return Promise.reject(error)
    }
  )
  clock.pending = pending
  return pending
}

/** The `commandTimeout` a client (or a Cluster's nodes) fails commands after, if any. */
const commandTimeoutOf = (client: Redis | Cluster): number | undefined =>
  client instanceof Redis ? client.options.commandTimeout : client.options.redisOptions?.commandTimeout

/**
 * The cache over a client. Commands time out only as the client is configured to (`commandTimeout`);
 * an Effect-level timeout would interrupt the wait but not the command already sent. Every write
 * carries the deadline `now + commandTimeout - margin` in Redis's clock, so a write Redis reaches only
 * after its caller timed out is refused there (a client without `commandTimeout` sends no deadline).
 *
 * @since 0.1.0
 * @category constructors
 */
export const fromClient = (client: Redis | Cluster, keyPrefix = ""): RedisCache => {
  const timeout = commandTimeoutOf(client)
  const clock = clockOf(client)
  const evalWrite = (deadline: string, op: Write, k: string, a3: string, a4: string) =>
    client
      .evalsha(writeSha, 1, k, deadline, op, a3, a4)
      .catch((error: unknown) =>
        error instanceof Error && error.message.startsWith("NOSCRIPT")
          ? client.eval(writeScript, 1, k, deadline, op, a3, a4)
          : Promise.reject(error)
      )
  const withDeadline = (offset: number, t: number) =>
    String(Math.floor(monotonicNow() + offset + t - marginMillis(t)))
  /** Sends one write with its deadline, estimating Redis's clock first when it is not known. */
  const write = (op: Write, k: string, a3: string, a4 = ""): Promise<unknown> => {
    if (timeout === undefined || timeout <= 0) return evalWrite("", op, k, a3, a4)
    const offset = clock.offset
    if (offset === undefined) {
      return estimate(client, clock, timeout).then((o) => evalWrite(withDeadline(o, timeout), op, k, a3, a4))
    }
    if (monotonicNow() - clock.at > clockRefreshMillis) estimate(client, clock, timeout).catch(() => {})
    return evalWrite(withDeadline(offset, timeout), op, k, a3, a4)
  }

  const cache = Cache.make<unknown>({
    get: (key) =>
      request(
        "get",
        key,
        () => client.get(keyPrefix + key),
        (text) => decodeOption("get", key, text)
      ),
    set: (key, value, ttl) => {
      const text = encode("set", key, value)
      if (Either.isLeft(text)) return Effect.fail(text.left)
      const ms = ttlMillis("set", key, ttl)
      if (Either.isLeft(ms)) return Effect.fail(ms.left)
      const k = keyPrefix + key
      const ttlMs = ms.right
      return request(
        "set",
        key,
        () => write("set", k, text.right, ttlMs === undefined ? "" : String(ttlMs)),
        (reply) => (reply === "OK" ? Effect.void : Effect.fail(unexpected("set", key, reply)))
      )
    },
    delete: (key) =>
      request(
        "delete",
        key,
        () => write("delete", keyPrefix + key, ""),
        (text) =>
          text === null || typeof text === "string"
            ? decodeOption("delete", key, text)
            : Effect.fail(unexpected("delete", key, text))
      ),
    has: (key) =>
      request(
        "has",
        key,
        () => client.exists(keyPrefix + key),
        (n) => (n === 0 || n === 1 ? Effect.succeed(n === 1) : Effect.fail(unexpected("has", key, n)))
      ),
    loadOrStore: (key, value, ttl) => {
      const text = encode("loadOrStore", key, value)
      if (Either.isLeft(text)) return Effect.fail(text.left)
      const ms = ttlMillis("loadOrStore", key, ttl)
      if (Either.isLeft(ms)) return Effect.fail(ms.left)
      const ttlArg = ms.right === undefined ? "" : String(ms.right)
      return request(
        "loadOrStore",
        key,
        () => write("loadOrStore", keyPrefix + key, text.right, ttlArg),
        (reply): Effect.Effect<Cache.LoadOrStore<unknown>, CacheError> => {
          if (Array.isArray(reply) && reply.length === 1 && reply[0] === 0) {
            return Effect.succeed({ value, loaded: false })
          }
          if (Array.isArray(reply) && reply.length === 2 && reply[0] === 1 && typeof reply[1] === "string") {
            return Effect.map(decode("loadOrStore", key, reply[1]), (loaded) => ({
              value: loaded,
              loaded: true
            }))
          }
          return Effect.fail(unexpected("loadOrStore", key, reply))
        }
      )
    },
    incrBy: (key, by) => {
      const bad = checkIncrement("incrBy", key, by)
      if (bad !== undefined) return Effect.fail(bad)
      return request(
        "incrBy",
        key,
        () => write("incrBy", keyPrefix + key, String(by)),
        (n) =>
          typeof n === "number" && Number.isSafeInteger(n)
            ? Effect.succeed(n)
            : Effect.fail(notAnInteger("incrBy", key))
      )
    }
  })
  return { ...cache, client }
}

/**
 * The options that make ioredis fail a command instead of replaying it: no offline queue (a command
 * issued while disconnected fails at once), no resend of the commands in flight when the connection
 * dropped, and those failed at the first reconnect attempt instead of after 20.
 *
 * @since 0.1.0
 * @category constants
 */
export const noReplay = {
  enableOfflineQueue: false,
  autoResendUnfulfilledCommands: false,
  maxRetriesPerRequest: 0
} as const satisfies RedisOptions

/** The default `commandTimeout`. @since 0.1.0 @category constants */
export const defaultCommandTimeout: Duration.Duration = Duration.seconds(1)

/** The default `closeTimeout`. @since 0.1.0 @category constants */
export const defaultCloseTimeout: Duration.Duration = Duration.seconds(2)

/** A positive, finite duration in milliseconds, or an `invalid_argument` error naming the option. */
const positiveMillis = (name: string, input: Duration.DurationInput) =>
  Option.match(Duration.decodeUnknown(input), {
    onNone: () => Either.left(invalidOption(name, `bad duration ${String(input)}`)),
    onSome: (d) => {
      const ms = Duration.toMillis(d)
      return Number.isFinite(ms) && ms > 0
        ? Either.right(ms)
        : Either.left(invalidOption(name, "must be positive and finite"))
    }
  })

const invalidOption = (name: string, detail: string) =>
  new CacheError({ reason: "invalid_argument", operation: "RedisCache.make", detail: `${name}: ${detail}` })

/**
 * Closes `client`: QUIT (which waits for the replies still due), bounded by `closeMillis` of real
 * time (not the Effect clock: a test clock must not stall a shutdown), then drops the connection.
 */
const close = (client: Redis | Cluster, closeMillis: number) =>
  Effect.promise(
    () =>
      new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, closeMillis)
        client.quit().then(
          () => {
            clearTimeout(timer)
            resolve()
          },
          () => {
            clearTimeout(timer)
            resolve()
          }
        )
      })
  ).pipe(Effect.ensuring(Effect.sync(() => client.disconnect())))

const connect = (url: string, commandMillis: number, closeMillis: number, redisOptions: RedisOptions) =>
  Effect.acquireRelease(
    Effect.suspend(() => {
      const client = new Redis(url, {
        ...redisOptions,
        ...noReplay,
        lazyConnect: true,
        commandTimeout: commandMillis
      })
      // Failures reach callers through their commands; without a listener ioredis prints every one.
      client.on("error", () => {})
      return Effect.tryPromise({
        try: () => client.connect(),
        catch: (cause) => {
          client.disconnect()
          return new CacheError({
            reason: "connection",
            operation: "connect",
            detail: cause instanceof Error ? cause.message : String(cause),
            cause
          })
        }
      }).pipe(Effect.as(client))
    }),
    (client) => close(client, closeMillis)
  )

/** Whether a client the caller built would replay a command that failed for its caller. */
const replays = (client: Redis | Cluster): boolean =>
  client.options.enableOfflineQueue !== false ||
  (client instanceof Redis && client.options.autoResendUnfulfilledCommands !== false)

/**
 * Waits until `client` is ready (connecting it if it is lazy and not started): with the offline
 * queue off, a command sent before that fails.
 *
 * @since 0.1.0
 * @category constructors
 */
export const ready = (client: Redis | Cluster, operation: string): Effect.Effect<void, CacheError> =>
  Effect.async<void, CacheError>((resume) => {
    if (client.status === "ready") return resume(Effect.void)
    const cleanup = () => {
      client.off("ready", onReady)
      client.off("end", onEnd)
    }
    const fail = (cause: unknown) => {
      cleanup()
      resume(
        Effect.fail(
          new CacheError({
            reason: "connection",
            operation,
            detail: cause instanceof Error ? cause.message : String(cause),
            cause
          })
        )
      )
    }
    const onReady = () => {
      cleanup()
      resume(Effect.void)
    }
    const onEnd = () => fail(new Error("the connection ended before it was ready"))
    client.once("ready", onReady)
    client.once("end", onEnd)
    if (client.status === "wait") client.connect().catch(fail)
    return Effect.sync(cleanup)
  })

/**
 * Builds a Redis cache; with a URL the connection is opened now (failing with reason `connection`
 * if it cannot be) and closed with the scope, within `closeTimeout`. An injected client is used as it
 * is (a warning is logged if it would replay failed commands: give it `noReplay`).
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: Options): Effect.Effect<RedisCache, CacheError, Scope.Scope> => {
  if ("client" in options) {
    const cache = fromClient(options.client, options.keyPrefix)
    return replays(options.client)
      ? Effect.as(
          Effect.logWarning(
            "RedisCache: the injected ioredis client replays commands that failed for their caller " +
              "(offline queue or resend of unfulfilled commands on); build it with RedisCache.noReplay"
          ),
          cache
        )
      : Effect.succeed(cache)
  }
  const commandMillis = positiveMillis("commandTimeout", options.commandTimeout ?? defaultCommandTimeout)
  if (Either.isLeft(commandMillis)) return Effect.fail(commandMillis.left)
  const closeMillis = positiveMillis("closeTimeout", options.closeTimeout ?? defaultCloseTimeout)
  if (Either.isLeft(closeMillis)) return Effect.fail(closeMillis.left)
  return Effect.map(
    connect(options.url, commandMillis.right, closeMillis.right, options.redisOptions ?? {}),
    (client) => fromClient(client, options.keyPrefix)
  )
}

/**
 * Provides a Redis cache as both `RedisCache` and the generic `Cache`.
 *
 * @example
 * const CacheLive = RedisCache.layer({ url: "redis://127.0.0.1:6379", keyPrefix: "app:" })
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options): Layer.Layer<RedisCache | Cache.Cache, CacheError> =>
  Layer.scopedContext(
    Effect.map(make(options), (cache) =>
      Context.make(RedisCache, cache).pipe(Context.add(Cache.Cache, cache))
    )
  )
