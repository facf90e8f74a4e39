/**
 * The demo program's caches and its `Users` service, composed from the library's Layers: a raw cache
 * (Redis when `REDIS_URL` is set, memory otherwise) under a typed `User` view that fails open, a
 * write-back layer that sends PUTs to the database later, and a read-through path with singleflight
 * and a bloom filter in front.
 *
 * What the service promises (docs/Program.md, "Durability"): a PUT it acknowledges can be stored (the
 * input was checked against what the database refuses, the email against the database and against
 * writes still pending), and the shutdown flush either stores every pending write or keeps what it
 * could not store in the dead-letter file (written again on the next start) and fails naming the
 * keys, which makes the program exit non-zero.
 *
 * @since 0.1.0
 */
import { createHash } from "node:crypto"
import { resolve } from "node:path"
import { Context, Duration, Effect, Either, identity, Layer, Metric, Option, Redacted, Stream } from "effect"
import { Redis } from "ioredis"
import * as BloomFilter from "../Cache/BloomFilter.js"
import * as Cache from "../Cache/Cache.js"
import * as DeadLetter from "../Cache/DeadLetter.js"
import * as FailOpen from "../Cache/FailOpen.js"
import * as MemoryCache from "../Cache/MemoryCache.js"
import * as ReadThrough from "../Cache/ReadThrough.js"
import * as RedisCache from "../Cache/RedisCache.js"
import * as RefreshAhead from "../Cache/RefreshAhead.js"
import * as Singleflight from "../Cache/Singleflight.js"
import * as WriteBack from "../Cache/WriteBack.js"
import * as WriteThrough from "../Cache/WriteThrough.js"
import type { ChangeFeed } from "../Query/ChangeFeed.js"
import { Executor } from "../Query/Executor.js"
import type { SelectError } from "../Query/Select.js"
import * as Select from "../Query/Select.js"
import * as Config from "./Config.js"
import { ShutdownHooks } from "./ShutdownHooks.js"
import * as UsersData from "./Users.js"
import { EmailTaken, User, UserNotFound, Users, type UsersService, unavailable } from "./Users.js"

/** Users by id (the decimal id as the key). @since 0.1.0 @category tags */
export class UserCache extends Cache.Tag("effect-dal/demo/UserCache")<UserCache, User>() {}

/** The read path of users. @since 0.1.0 @category tags */
export class UserReads extends ReadThrough.Tag("effect-dal/demo/UserReads")<
  UserReads,
  User,
  SelectError,
  Executor
>() {}

/**
 * What readiness asks of the cache: `none` without Redis, otherwise whether Redis answers now.
 *
 * @since 0.1.0 @category tags
 */
export class CacheStatus extends Context.Tag("effect-dal/demo/CacheStatus")<
  CacheStatus,
  {
    readonly check: Effect.Effect<"none" | "ok" | "unreachable">
    /**
     * The Redis client and the namespace of its keys, when Redis answered at start: what the bloom
     * filter shares inserted keys through (without it, other instances' inserts wait for a rebuild).
     */
    readonly redis: Option.Option<{ readonly client: Redis; readonly namespace: string }>
  }
>() {}

const name = "users"

/** Acknowledged writes the shutdown flush could not store. @since 0.1.0 @category metrics */
export const unstoredWrites = Metric.counter("effect_dal_demo_unstored_writes_total", {
  description: "Acknowledged writes the write-back flush could not store before its deadline"
})

/**
 * The namespace of every Redis key: `CACHE_NAMESPACE`, or a digest of the database's label (no
 * credentials; a SQLite path made absolute), so two services on two databases never share entries.
 */
const namespaceOf = (label: string) => {
  const normalized = label.startsWith("sqlite:")
    ? `sqlite:${resolve(label.slice("sqlite:".length))}`
    : label.replace(/^mariadb:/, "mysql:").replace(/^postgresql:/, "postgres:")
  return createHash("sha256").update(normalized).digest("hex").slice(0, 16)
}

/**
 * A Redis client that never blocks the start: if Redis does not answer, the program starts anyway
 * (every cache operation fails open to the database), says so, and the client keeps reconnecting.
 * Commands time out after 250 ms and fail at once while disconnected (`RedisCache.noReplay`: no
 * offline queue and no resend after a reconnect, so a command a caller saw fail is never sent later).
 */
const redisClient = (url: Redacted.Redacted) =>
  Effect.acquireRelease(
    Effect.gen(function* () {
      const client = new Redis(Redacted.value(url), {
        // No offline queue, no resend after a reconnect, no retry of a failed command.
        ...RedisCache.noReplay,
        lazyConnect: true,
        commandTimeout: 250,
        connectTimeout: 1_000,
        retryStrategy: (attempt) => Math.min(attempt * 200, 2_000)
      })
      // Failures reach callers through their commands; without a listener ioredis prints every one.
      client.on("error", () => {})
      const connected = yield* Effect.tryPromise(() => client.connect()).pipe(
        Effect.timeout("2 seconds"),
        Effect.zipRight(Effect.as(Effect.logInfo("cache: Redis connected"), true)),
        Effect.catchAll(() =>
          Effect.as(
            Effect.logWarning(
              "cache: Redis unreachable at start; serving from the database (fail-open) and reconnecting in the background"
            ),
            false
          )
        )
      )
      return { client, connected }
    }),
    ({ client }) => Effect.sync(() => client.disconnect())
  )

const redisStatus = (client: Redis) => ({
  check: Effect.tryPromise(() => client.ping()).pipe(
    Effect.timeout("500 millis"),
    Effect.as("ok" as const),
    Effect.orElseSucceed(() => "unreachable" as const)
  )
})

/**
 * The raw cache: Redis at `REDIS_URL` under the database's namespace, or a memory cache bounded to
 * `CACHE_MAX_ENTRIES` whose evictions reach the write-back layer.
 *
 * @since 0.1.0 @category layers
 */
export const rawCache: Layer.Layer<Cache.Cache | CacheStatus, never, WriteBack.Evictions | Executor> =
  Layer.unwrapScoped(
    Effect.gen(function* () {
      const config = yield* Effect.orDie(Config.Caches)
      if (Option.isNone(config.redisUrl)) {
        return Layer.merge(
          Layer.orDie(
            MemoryCache.layer({ maxEntries: config.maxEntries, onEvicted: WriteBack.onEvicted(name) })
          ),
          Layer.succeed(CacheStatus, { check: Effect.succeed("none" as const), redis: Option.none() })
        )
      }
      const executor = yield* Executor
      const namespace = Option.getOrElse(config.namespace, () => namespaceOf(executor.session.label))
      const { client, connected } = yield* redisClient(config.redisUrl.value)
      yield* Effect.logInfo(`cache: Redis keys under effect-dal-demo:${namespace}:`)
      return Layer.merge(
        Layer.orDie(RedisCache.layer({ client, keyPrefix: `effect-dal-demo:${namespace}:` })),
        Layer.succeed(CacheStatus, {
          ...redisStatus(client),
          redis: connected ? Option.some({ client, namespace }) : Option.none()
        })
      )
    })
  )

const userCache = Layer.provide(
  FailOpen.layer(UserCache, name),
  Cache.layerSchema(UserCache, User, { prefix: "users:" })
)

/** The write-back control of users, typed, with pending users findable by email. @since 0.1.0 @category tags */
export class UserWriteBack extends WriteBack.Tag("effect-dal/demo/UserWriteBack")<
  UserWriteBack,
  User,
  WriteThrough.EntityStoreError,
  "email"
>() {}

const idsOf = (failures: ReadonlyArray<WriteBack.Failure<User, unknown>>) => WriteBack.keysOf(failures)

/**
 * The shutdown hook: closes the write-back cache with the whole budget (a database that is down is
 * retried until then). What the database did not take is in the dead-letter file (written again on
 * the next start); the hook then fails naming every id, which makes the program exit 1.
 */
const closeWithin = (control: UserWriteBack["Type"], budgetMs: number) =>
  Effect.logInfo(`shutdown: closing the write-back cache (up to ${budgetMs} ms)`).pipe(
    Effect.zipRight(control.close(Duration.millis(budgetMs))),
    Effect.flatMap((report) => Effect.logInfo(`shutdown: wrote back ${report.written.length} users`)),
    Effect.catchTag("WriteBackError", (error) => {
      const ids = [...error.lost, ...error.deadLettered]
      return Effect.zipRight(
        Metric.incrementBy(unstoredWrites, ids.length),
        Effect.fail(
          `${ids.length} acknowledged write(s) NOT stored after ${budgetMs} ms; user ids: ${ids.join(", ")} ` +
            `(dead-lettered: ${error.deadLettered.length}, written again on the next start; lost: ${error.lost.length})`
        )
      )
    })
  )

/** The database refused a value its unique index already holds. */
const isUnique = (e: { readonly _tag: string; readonly reason?: string }) =>
  e._tag === "DatabaseError" && e.reason === "unique"

const service = Effect.gen(function* () {
  const reads = yield* UserReads
  const cache = yield* UserCache
  const control = yield* UserWriteBack
  const executor = yield* Effect.context<Executor>()
  const hooks = yield* ShutdownHooks
  const config = yield* Effect.orDie(Config.Caches)
  const ttl = Duration.millis(config.ttlMs)
  /**
   * No other user has `email`: pending writes first, then the database (an entry leaves the pending
   * set only after the store has it). Run under the email's lock, with the write that takes it.
   */
  const ensureFree = (email: string, id: number | undefined) =>
    Effect.gen(function* () {
      const pending = yield* control.pendingBy("email", email)
      if (pending.some((entry) => entry.value.id !== id)) return yield* new EmailTaken({ field: "email" })
      const owner = yield* unavailable(UsersData.findByEmail(email))
      if (Option.isSome(owner) && owner.value.id !== id) return yield* new EmailTaken({ field: "email" })
    })
  const load = (id: number) =>
    Effect.flatMap(unavailable(reads.get(String(id))), (found) =>
      Option.match(found, {
        onNone: () => Effect.fail(new UserNotFound({ id })),
        onSome: Effect.succeed
      })
    )
  yield* hooks.register("write-back flush", closeWithin(control, config.flushTimeoutMs), {
    order: 0,
    timeout: Duration.millis(config.flushTimeoutMs + 5_000)
  })
  const users: UsersService = {
    create: (input) =>
      control
        .withIndexLock(
          "email",
          input.email,
          Effect.zipRight(
            ensureFree(input.email, undefined),
            // Another writer may take the email between the check and the insert: the index answers.
            Effect.flatMap(
              unavailable(
                UsersData.create(input).pipe(
                  Effect.map(Either.right),
                  Effect.catchIf(isUnique, () =>
                    Effect.succeed(Either.left(new EmailTaken({ field: "email" })))
                  )
                )
              ),
              (created) => created
            )
          )
        )
        .pipe(Effect.provide(executor)),
    get: (id) => Effect.provide(load(id), executor),
    update: (id, patch) =>
      Effect.gen(function* () {
        const write = Effect.gen(function* () {
          const current = yield* load(id)
          const updated = new User({
            id,
            firstName: patch.firstName ?? current.firstName,
            lastName: patch.lastName ?? current.lastName,
            email: patch.email ?? current.email,
            age: patch.age ?? current.age
          })
          if (updated.email !== current.email) {
            yield* ensureFree(updated.email, id)
            // Written through: another instance's pending writes are not visible here, the index is.
            const saved = yield* unavailable(
              UsersData.save(updated).pipe(
                Effect.as(true),
                Effect.catchIf(isUnique, () => Effect.succeed(false))
              )
            )
            if (!saved) return yield* new EmailTaken({ field: "email" })
          }
          yield* unavailable(cache.set(String(id), updated, ttl))
          return updated
        })
        return yield* patch.email === undefined ? write : control.withIndexLock("email", patch.email, write)
      }).pipe(Effect.provide(executor)),
    list: (options) => Effect.provide(unavailable(UsersData.list(options)), executor),
    flush: Effect.map(control.flush, (report) => ({
      written: report.written.length + report.deleted.length,
      failed: idsOf(report.failed),
      deadLettered: idsOf(report.deadLettered)
    }))
  }
  return users
})

/** Where dead letters wait: `DEAD_LETTER_FILE`, or beside a SQLite database, or under `data/` by namespace. */
const deadLetterFile = (label: string, configured: Option.Option<string>) =>
  Option.getOrElse(configured, () =>
    label.startsWith("sqlite:") && label !== "sqlite::memory:"
      ? `${resolve(label.slice("sqlite:".length))}.dead-letters.sqlite`
      : resolve("data", `dead-letters-${namespaceOf(label)}.sqlite`)
  )

/**
 * The `Users` service with every cache in place; needs the database and the change feed.
 *
 * @since 0.1.0 @category layers
 */
export const users: Layer.Layer<Users | CacheStatus, never, Executor | ChangeFeed | ShutdownHooks> =
  Layer.unwrapEffect(
    Effect.gen(function* () {
      const config = yield* Effect.orDie(Config.Caches)
      const executor = yield* Executor
      const ttl = Duration.millis(config.ttlMs)
      const letters = deadLetterFile(executor.session.label, config.deadLetterFile)
      yield* Effect.logInfo(`write-back: dead letters in ${letters}`)
      const writeBack = Layer.provide(
        WriteBack.layer(UserCache, {
          store: WriteThrough.entityStore(User),
          name,
          schema: User,
          indexes: { email: (user) => user.email },
          control: UserWriteBack,
          flushInterval: ttl,
          closeWithin: Duration.millis(config.flushTimeoutMs),
          // The memory cache sees the keys through the "users:" view, and reports its evictions with it.
          evictionPrefix: "users:"
        }),
        Layer.merge(userCache, DeadLetter.layerFile(letters))
      )
      const reads = ReadThrough.layer(UserReads, UserCache, {
        loader: (key) => UsersData.find(Number(key)),
        ttl,
        // Absences only: a failed load (the database down) is never remembered as "not found".
        negative: { ttl: "2 seconds", failures: () => false },
        name
      })
      const bloom = Layer.unwrapEffect(
        Effect.map(CacheStatus, (status) =>
          BloomFilter.layer(UserReads, {
            keys: Stream.map(Select.from(User).columns("id").stream(), (u) => String(u.id)),
            table: "users",
            key: (pk) => String(pk.id),
            // Rows inserted straight into the database are admitted after a rebuild; other instances'
            // inserts at once through Redis.
            rebuildInterval: ttl,
            ...Option.match(status.redis, {
              onNone: () => ({}),
              onSome: ({ client, namespace }) => ({
                redis: { client, channel: `effect-dal-demo:${namespace}:bloom:users` }
              })
            }),
            name
          })
        )
      )
      return Layer.effect(Users, service).pipe(
        Layer.provide(
          Singleflight.layer(UserReads).pipe(
            Layer.provide(bloom),
            // With CDC=1 a committed change of a user, whoever made it, drops the cached copy (a
            // pending write-back value of this instance stays and is served until it is stored).
            // Without it the TTL bounds staleness: an invalidation would also drop from a shared
            // Redis the value another instance has not stored yet.
            config.cdc
              ? Layer.provide(RefreshAhead.layer(UserReads, { table: "users", key: (pk) => String(pk.id) }))
              : identity,
            Layer.provide(reads)
          )
        ),
        Layer.provideMerge(writeBack),
        Layer.provideMerge(rawCache),
        // One eviction hub for the memory cache (which reports) and the write-back layer (which listens).
        Layer.provide(WriteBack.layerEvictions),
        Layer.orDie
      )
    })
  )
