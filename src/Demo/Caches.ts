/**
 * The demo program's caches and its `Users` service, composed from the library's Layers: a raw cache
 * (Redis when `REDIS_URL` is set, memory otherwise) under a typed `User` view that fails open, a
 * write-back layer that sends PUTs to the database later, and a read-through path with singleflight
 * and a bloom filter in front.
 *
 * What the service promises (docs/Program.md, "Durability"): a PUT it acknowledges can be stored (the
 * input was checked against what the database refuses, the email against the database and against
 * writes still pending), and the shutdown flush either stores every pending write or fails naming the
 * keys it could not store, which makes the program exit non-zero.
 *
 * @since 0.1.0
 */
import { createHash } from "node:crypto"
import { resolve } from "node:path"
import { Context, Duration, Effect, Either, Layer, Metric, Option, Redacted, Stream } from "effect"
import { Redis } from "ioredis"
import * as BloomFilter from "../Cache/BloomFilter.js"
import * as Cache from "../Cache/Cache.js"
import * as FailOpen from "../Cache/FailOpen.js"
import * as MemoryCache from "../Cache/MemoryCache.js"
import * as ReadThrough from "../Cache/ReadThrough.js"
import * as RedisCache from "../Cache/RedisCache.js"
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
  { readonly check: Effect.Effect<"none" | "ok" | "unreachable"> }
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
 * Commands time out after 250 ms and fail at once while disconnected (no offline queue, so a command
 * a caller saw fail is never sent later).
 */
const redisClient = (url: Redacted.Redacted) =>
  Effect.acquireRelease(
    Effect.gen(function* () {
      const client = new Redis(Redacted.value(url), {
        lazyConnect: true,
        commandTimeout: 250,
        connectTimeout: 1_000,
        maxRetriesPerRequest: 0,
        enableOfflineQueue: false,
        retryStrategy: (attempt) => Math.min(attempt * 200, 2_000)
      })
      // Failures reach callers through their commands; without a listener ioredis prints every one.
      client.on("error", () => {})
      yield* Effect.tryPromise(() => client.connect()).pipe(
        Effect.timeout("2 seconds"),
        Effect.zipRight(Effect.logInfo("cache: Redis connected")),
        Effect.catchAll(() =>
          Effect.logWarning(
            "cache: Redis unreachable at start; serving from the database (fail-open) and reconnecting in the background"
          )
        )
      )
      return client
    }),
    (client) => Effect.sync(() => client.disconnect())
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
          Layer.succeed(CacheStatus, { check: Effect.succeed("none" as const) })
        )
      }
      const executor = yield* Executor
      const namespace = Option.getOrElse(config.namespace, () => namespaceOf(executor.session.label))
      const client = yield* redisClient(config.redisUrl.value)
      yield* Effect.logInfo(`cache: Redis keys under effect-dal-demo:${namespace}:`)
      return Layer.merge(
        Layer.orDie(RedisCache.layer({ client, keyPrefix: `effect-dal-demo:${namespace}:` })),
        Layer.succeed(CacheStatus, redisStatus(client))
      )
    })
  )

const userCache = Layer.provide(
  FailOpen.layer(UserCache, name),
  Cache.layerSchema(UserCache, User, { prefix: "users:" })
)

/**
 * Emails of users whose pending (not yet stored) write changed their email, by email: a second user
 * must not take one, or the flush would hit the unique index. A claim ends when the store has the
 * user with that email, or when the same user claims another.
 */
const makeClaims = () => {
  const byEmail = new Map<string, number>()
  const byId = new Map<number, string>()
  return {
    holder: (email: string) => Option.fromNullable(byEmail.get(email)),
    claim: (id: number, email: string) => {
      const previous = byId.get(id)
      if (previous !== undefined) byEmail.delete(previous)
      byEmail.set(email, id)
      byId.set(id, email)
    },
    stored: (user: User) => {
      if (byEmail.get(user.email) !== user.id) return
      byEmail.delete(user.email)
      byId.delete(user.id)
    }
  }
}

type Claims = ReturnType<typeof makeClaims>

/** The entity store, telling the claims what it stored. */
const claimingStore = (claims: Claims): WriteThrough.Store<User, WriteThrough.EntityStoreError, Executor> => {
  const store = WriteThrough.entityStore(User)
  return {
    write: (entries) =>
      Effect.tap(store.write(entries), () =>
        Effect.sync(() => {
          for (const entry of entries) claims.stored(entry.value)
        })
      ),
    delete: store.delete
  }
}

/** The shutdown hook: flushes until everything is stored or the deadline; then fails naming what is not. */
const flushUntil = (control: WriteBack.WriteBack, budgetMs: number) =>
  Effect.gen(function* () {
    const deadline = Date.now() + budgetMs
    let written = 0
    for (;;) {
      const report = yield* control.flush
      written += report.written + report.deleted
      if (report.failures.length === 0) {
        return yield* Effect.logInfo(`shutdown: wrote back ${written} users`)
      }
      const keys = report.failures.flatMap((f) => [...f.writes.map((w) => w.key), ...f.deletes])
      const wait = Math.min(1_000, deadline - Date.now() - 250)
      if (wait <= 0) {
        yield* Metric.incrementBy(unstoredWrites, keys.length)
        return yield* Effect.fail(
          `${keys.length} acknowledged write(s) NOT stored after ${budgetMs} ms; user ids: ${keys.join(", ")}`
        )
      }
      yield* Effect.logWarning(
        `shutdown: ${keys.length} write(s) not stored yet (database unavailable?); retrying until the deadline`
      )
      yield* Effect.sleep(Duration.millis(wait))
    }
  })

const service = (claims: Claims) =>
  Effect.gen(function* () {
    const reads = yield* UserReads
    const cache = yield* UserCache
    const control = yield* WriteBack.WriteBack
    const executor = yield* Effect.context<Executor>()
    const hooks = yield* ShutdownHooks
    const config = yield* Effect.orDie(Config.Caches)
    const ttl = Duration.millis(config.ttlMs)
    // Email changes are checked and claimed one at a time: two requests cannot both see an email free.
    const emails = yield* Effect.makeSemaphore(1)
    // Claims first, then the database: a claim ends only after the store has the row.
    const ensureFree = (email: string, id: number | undefined) =>
      Effect.gen(function* () {
        const claimed = claims.holder(email)
        if (Option.isSome(claimed) && claimed.value !== id) return yield* new EmailTaken({ field: "email" })
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
    yield* hooks.register("write-back flush", flushUntil(control, config.flushTimeoutMs), {
      order: 0,
      timeout: Duration.millis(config.flushTimeoutMs + 1_000)
    })
    const users: UsersService = {
      create: (input) =>
        emails
          .withPermits(1)(
            Effect.zipRight(
              ensureFree(input.email, undefined),
              // Another writer may take the email between the check and the insert: the index answers.
              Effect.flatMap(
                unavailable(
                  UsersData.create(input).pipe(
                    Effect.map(Either.right),
                    Effect.catchIf(
                      (e) => e._tag === "SqlError" && e.reason === "unique",
                      () => Effect.succeed(Either.left(new EmailTaken({ field: "email" })))
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
              claims.claim(id, updated.email)
            }
            yield* unavailable(cache.set(String(id), updated, ttl))
            return updated
          })
          return yield* patch.email === undefined ? write : emails.withPermits(1)(write)
        }).pipe(Effect.provide(executor)),
      list: (options) => Effect.provide(unavailable(UsersData.list(options)), executor),
      flush: Effect.map(control.flush, (report) => ({
        written: report.written + report.deleted,
        failed: report.failures.flatMap((f) => [...f.writes.map((w) => w.key), ...f.deletes])
      }))
    }
    return users
  })

/**
 * The `Users` service with every cache in place; needs the database and the change feed.
 *
 * @since 0.1.0 @category layers
 */
export const users: Layer.Layer<Users | CacheStatus, never, Executor | ChangeFeed | ShutdownHooks> =
  Layer.unwrapEffect(
    Effect.gen(function* () {
      const config = yield* Effect.orDie(Config.Caches)
      const claims = makeClaims()
      const ttl = Duration.millis(config.ttlMs)
      const writeBack = Layer.provide(
        WriteBack.layer(UserCache, {
          store: claimingStore(claims),
          name,
          flushInterval: ttl,
          // The memory cache sees the keys through the "users:" view, and reports its evictions with it.
          evictionPrefix: "users:"
        }),
        userCache
      )
      const reads = ReadThrough.layer(UserReads, UserCache, {
        loader: (key) => UsersData.find(Number(key)),
        ttl,
        // Absences only: a failed load (the database down) is never remembered as "not found".
        negative: { ttl: "2 seconds", failures: () => false },
        name
      })
      const bloom = BloomFilter.layer(UserReads, {
        keys: Stream.map(Select.from(User).columns("id").stream(), (u) => String(u.id)),
        table: "users",
        key: (pk) => String(pk.id),
        // Rows inserted by another instance or straight into the database are admitted after a rebuild.
        rebuildInterval: ttl,
        name
      })
      return Layer.effect(Users, service(claims)).pipe(
        Layer.provide(Singleflight.layer(UserReads).pipe(Layer.provide(bloom), Layer.provide(reads))),
        Layer.provideMerge(writeBack),
        Layer.provideMerge(rawCache),
        // One eviction hub for the memory cache (which reports) and the write-back layer (which listens).
        Layer.provide(WriteBack.layerEvictions),
        Layer.orDie
      )
    })
  )
