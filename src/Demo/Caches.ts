/**
 * The demo program's caches, composed from the library's Layers: a raw cache (Redis when `REDIS_URL`
 * is set, memory otherwise) under a typed `User` view that fails open, a write-back layer that sends
 * PUTs to the database later, and a read-through path with singleflight and a bloom filter in front.
 *
 * @since 0.1.0
 */
import { Config, Effect, Layer, Option, Stream } from "effect"
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
import type { Executor } from "../Query/Executor.js"
import type { SelectError } from "../Query/Select.js"
import * as Select from "../Query/Select.js"
import { Users, type UsersService } from "./App.js"
import { ShutdownHooks } from "./ShutdownHooks.js"
import * as UsersData from "./Users.js"
import { User } from "./Users.js"

/** Users by id (the decimal id as the key). @since 0.1.0 @category tags */
export class UserCache extends Cache.Tag("effect-dal/demo/UserCache")<UserCache, User>() {}

/** The read path of users. @since 0.1.0 @category tags */
export class UserReads extends ReadThrough.Tag("effect-dal/demo/UserReads")<
  UserReads,
  User,
  SelectError,
  Executor
>() {}

const name = "users"

/**
 * The raw cache: Redis at `REDIS_URL` (commands time out after 250 ms and fail at once while
 * disconnected, so a dead Redis costs a request little), or a memory cache bounded to
 * `CACHE_MAX_ENTRIES` (default 50,000) whose evictions reach the write-back layer.
 *
 * @since 0.1.0 @category layers
 */
export const rawCache: Layer.Layer<Cache.Cache, unknown, WriteBack.Evictions> = Layer.unwrapEffect(
  Effect.map(
    Config.all([
      Config.option(Config.string("REDIS_URL")),
      Config.withDefault(Config.integer("CACHE_MAX_ENTRIES"), 50_000)
    ]),
    ([url, maxEntries]) =>
      Option.match(url, {
        onNone: () => MemoryCache.layer({ maxEntries, onEvicted: WriteBack.onEvicted(name) }),
        onSome: (url) =>
          RedisCache.layer({
            url,
            keyPrefix: "effect-dal-demo:",
            commandTimeout: "250 millis",
            redisOptions: { maxRetriesPerRequest: 0, enableOfflineQueue: false }
          })
      })
  )
)

const userCache = Layer.provide(
  FailOpen.layer(UserCache, name),
  Cache.layerSchema(UserCache, User, { prefix: "users:" })
)

const writeBack = Layer.provide(
  WriteBack.layer(UserCache, {
    store: WriteThrough.entityStore(User),
    name,
    flushInterval: "30 seconds",
    // The memory cache sees the keys through the "users:" view, and reports its evictions with it.
    evictionPrefix: "users:"
  }),
  userCache
)

const reads = ReadThrough.layer(UserReads, UserCache, {
  loader: (key) => UsersData.find(Number(key)),
  ttl: "10 minutes",
  negative: { ttl: "2 seconds" },
  name
})

const bloom = BloomFilter.layer(UserReads, {
  keys: Stream.map(Select.from(User).columns("id").stream(), (u) => String(u.id)),
  table: "users",
  key: (pk) => String(pk.id),
  name
})

const service = Effect.gen(function* () {
  const reads = yield* UserReads
  const cache = yield* UserCache
  const control = yield* WriteBack.WriteBack
  const executor = yield* Effect.context<Executor>()
  const hooks = yield* ShutdownHooks
  // The write-back flush is the first exit hook: dirty users reach the database before it closes.
  yield* hooks.register(
    "write-back flush",
    Effect.flatMap(control.flush, (report) =>
      report.failed.length + report.deadLettered.length === 0
        ? Effect.logInfo(`shutdown: wrote back ${report.written.length} users`)
        : Effect.logError(
            `shutdown: write-back left ${WriteBack.keysOf(report.failed).length} users unwritten, ` +
              `dead-lettered ${WriteBack.keysOf(report.deadLettered).length}`
          )
    ),
    { order: 0, timeout: "30 seconds" }
  )
  const users: UsersService = {
    create: (input) => Effect.provide(UsersData.create(input), executor),
    get: (id) => Effect.provide(reads.get(String(id)), executor),
    update: (id, patch) =>
      Effect.gen(function* () {
        const current = yield* reads.get(String(id))
        if (Option.isNone(current)) return Option.none()
        if (patch.email !== undefined && patch.email !== current.value.email) {
          const owner = yield* UsersData.findByEmail(patch.email)
          if (Option.isSome(owner) && owner.value.id !== id)
            return yield* new UsersData.EmailTakenError({ email: patch.email })
        }
        // exactOptionalPropertyTypes: a field absent from the patch keeps its value.
        const updated = new User({
          id,
          firstName: patch.firstName ?? current.value.firstName,
          lastName: patch.lastName ?? current.value.lastName,
          email: patch.email ?? current.value.email,
          age: patch.age ?? current.value.age
        })
        yield* cache.set(String(id), updated)
        return Option.some(updated)
      }).pipe(Effect.provide(executor)),
    list: (options) => Effect.provide(UsersData.list(options), executor),
    flush: Effect.map(control.flush, (report) => report.written.length)
  }
  return users
})

/**
 * The `Users` service with every cache in place; needs the database and the change feed.
 *
 * @since 0.1.0 @category layers
 */
export const users: Layer.Layer<Users, unknown, Executor | ChangeFeed | ShutdownHooks> = Layer.effect(
  Users,
  service
).pipe(
  Layer.provide(Singleflight.layer(UserReads).pipe(Layer.provide(bloom), Layer.provide(reads))),
  Layer.provideMerge(writeBack),
  Layer.provide(rawCache),
  // One eviction hub for the memory cache (which reports) and the write-back layer (which listens).
  Layer.provide(WriteBack.layerEvictions)
)
