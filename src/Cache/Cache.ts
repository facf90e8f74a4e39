/**
 * The cache service: string keys, values with an optional TTL, and atomic composites (load-or-store,
 * load-and-delete, increment). Backends (`MemoryCache`, `RedisCache`, `layerTest`) implement the few
 * primitive operations; `make` derives the rest, so a decorator that overrides a primitive changes the
 * derived operations too. Typed views go through a Schema (`forSchema`), and each use gets its own
 * Tag (`Tag`), so a program can hold a `UserCache` and an `OrderCache` side by side.
 *
 * @since 0.1.0
 */
import { Clock, Context, type Duration, Effect, Either, HashMap, Layer, Option, Ref, Schema } from "effect"
import type * as Scope from "effect/Scope"
import { CacheError, type CacheFullError, CacheMissError } from "./CacheError.js"
import { checkIncrement, notAnInteger, ttlMillis } from "./internal/arguments.js"

/**
 * The outcome of `loadOrStore`: the value now under the key, and whether it was already there.
 *
 * @since 0.1.0
 * @category models
 */
export interface LoadOrStore<A> {
  readonly value: A
  readonly loaded: boolean
}

/**
 * What a backend or a decorator implements. Every operation is atomic on its own; a missing TTL means
 * the entry never expires, and `set` clears any TTL the key had.
 *
 * @since 0.1.0
 * @category models
 */
export interface Primitives<A> {
  /** The live value under `key`, if any. */
  readonly get: (key: string) => Effect.Effect<Option.Option<A>, CacheError>
  /** Stores `value`, replacing what was there (and its TTL). */
  readonly set: (
    key: string,
    value: A,
    ttl?: Duration.DurationInput
  ) => Effect.Effect<void, CacheError | CacheFullError>
  /** Removes `key` and returns the live value it held. */
  readonly delete: (key: string) => Effect.Effect<Option.Option<A>, CacheError>
  /** Whether a live value is stored under `key`. */
  readonly has: (key: string) => Effect.Effect<boolean, CacheError>
  /** Returns the live value under `key`, or stores `value` if there is none, in one atomic step. */
  readonly loadOrStore: (
    key: string,
    value: A,
    ttl?: Duration.DurationInput
  ) => Effect.Effect<LoadOrStore<A>, CacheError | CacheFullError>
  /**
   * Adds the integer `by` to the integer under `key` and returns the result; a missing key starts at 0
   * (and never expires), an existing key keeps its TTL. A non-integer value fails with reason `type`.
   */
  readonly incrBy: (key: string, by: number) => Effect.Effect<number, CacheError | CacheFullError>
}

/**
 * The cache service. Build one with `make` from `Primitives`.
 *
 * @since 0.1.0
 * @category models
 */
export interface Cache<A = unknown> extends Primitives<A> {
  /** Like `get`, but a missing key fails with `CacheMissError`. */
  readonly getOrFail: (key: string) => Effect.Effect<A, CacheError | CacheMissError>
  /** LoadAndDelete: the same atomic step as `delete`, under its composite name. */
  readonly loadAndDelete: (key: string) => Effect.Effect<Option.Option<A>, CacheError>
  /** `incrBy(key, -by)`. */
  readonly decrBy: (key: string, by: number) => Effect.Effect<number, CacheError | CacheFullError>
}

/**
 * The untyped cache: what `MemoryCache.layer` and `RedisCache.layer` provide.
 *
 * @since 0.1.0
 * @category tags
 */
export const Cache: Context.Tag<Cache, Cache> = Context.GenericTag<Cache>("effect-dal/Cache")

/**
 * Builds a `Cache` from its primitives. Derived operations always call the primitives given here, so a
 * decorator passes `{ ...inner, get: myGet }` and `getOrFail` follows its `get`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = <A>(primitives: Primitives<A>): Cache<A> => {
  const { get, set, delete: del, has, loadOrStore, incrBy } = primitives
  return {
    get,
    set,
    delete: del,
    has,
    loadOrStore,
    incrBy,
    getOrFail: (key) =>
      Effect.flatMap(get(key), (found) =>
        Option.isSome(found) ? Effect.succeed(found.value) : Effect.fail(new CacheMissError({ key }))
      ),
    loadAndDelete: del,
    decrBy: (key, by) => incrBy(key, -by)
  }
}

/**
 * A Tag class for one use of a cache (one cache per entity).
 *
 * @example
 * class UserCache extends Cache.Tag("app/UserCache")<UserCache, User>() {}
 * @since 0.1.0
 * @category tags
 */
export const Tag =
  <const Id extends string>(id: Id) =>
  <Self, A = unknown>(): Context.TagClass<Self, Id, Cache<A>> =>
    Context.Tag(id)<Self, Cache<A>>()

/**
 * A decorator as a Layer: it reads the cache under `tag`, wraps it with `f` and provides the result
 * under the same tag. Compose with `Layer.provide(base)`.
 *
 * @example
 * const Counted = Cache.decorate(Cache.Cache, (inner) => Effect.succeed({ ...inner, get: countedGet(inner) }))
 * const layer = Counted.pipe(Layer.provide(MemoryCache.layer({})))
 * @since 0.1.0
 * @category combinators
 */
export const decorate = <I, A, E = never, R = never>(
  tag: Context.Tag<I, Cache<A>>,
  f: (self: Cache<A>) => Effect.Effect<Primitives<A>, E, R>
): Layer.Layer<I, E, I | Exclude<R, Scope.Scope>> =>
  Layer.scoped(
    tag,
    Effect.flatMap(tag, (self) => Effect.map(f(self), make))
  )

/**
 * Prefixes every key, so several views can share one backend without colliding.
 *
 * @since 0.1.0
 * @category combinators
 */
export const prefixed =
  (prefix: string) =>
  <A>(self: Cache<A>): Cache<A> =>
    make({
      get: (key) => self.get(prefix + key),
      set: (key, value, ttl) => self.set(prefix + key, value, ttl),
      delete: (key) => self.delete(prefix + key),
      has: (key) => self.has(prefix + key),
      loadOrStore: (key, value, ttl) => self.loadOrStore(prefix + key, value, ttl),
      incrBy: (key, by) => self.incrBy(prefix + key, by)
    })

/**
 * A typed view of an untyped cache through a Schema: writes store the encoded value (the backend then
 * keeps it as-is in memory, or as JSON text in Redis), reads decode it. A stored value that does not
 * decode fails with reason `decode`; a value the Schema cannot encode fails with reason `encode`.
 * `incrBy` passes through untouched (counters are plain integers).
 *
 * @example
 * const users = Cache.forSchema(User)(cache)
 * yield* users.set(`user:${user.id}`, user, "5 minutes")
 * @since 0.1.0
 * @category combinators
 */
export const forSchema =
  <A, I>(schema: Schema.Schema<A, I>) =>
  (self: Cache): Cache<A> => {
    const decode = Schema.decodeUnknown(schema)
    const encode = Schema.encode(schema)
    const read = (operation: string, key: string, stored: unknown) =>
      Effect.mapError(
        decode(stored),
        (cause) => new CacheError({ reason: "decode", operation, key, detail: cause.message, cause })
      )
    const write = (operation: string, key: string, value: A) =>
      Effect.mapError(
        encode(value),
        (cause) => new CacheError({ reason: "encode", operation, key, detail: cause.message, cause })
      )
    const readOption = (operation: string, key: string) => (stored: Option.Option<unknown>) =>
      Option.isNone(stored) ? Effect.succeedNone : Effect.asSome(read(operation, key, stored.value))
    return make({
      get: (key) => Effect.flatMap(self.get(key), readOption("get", key)),
      set: (key, value, ttl) =>
        Effect.flatMap(write("set", key, value), (encoded) => self.set(key, encoded, ttl)),
      delete: (key) => Effect.flatMap(self.delete(key), readOption("delete", key)),
      has: self.has,
      loadOrStore: (key, value, ttl) =>
        Effect.flatMap(write("loadOrStore", key, value), (encoded) =>
          Effect.flatMap(
            self.loadOrStore(key, encoded, ttl),
            (result): Effect.Effect<LoadOrStore<A>, CacheError> =>
              result.loaded
                ? Effect.map(read("loadOrStore", key, result.value), (decoded) => ({
                    value: decoded,
                    loaded: true
                  }))
                : Effect.succeed({ value, loaded: false })
          )
        ),
      incrBy: self.incrBy
    })
  }

/**
 * Provides a typed, optionally prefixed view of the untyped `Cache` under its own Tag.
 *
 * @example
 * const UserCacheLive = Cache.layerSchema(UserCache, User, { prefix: "user:" })
 * @since 0.1.0
 * @category layers
 */
export const layerSchema = <Id, A, I>(
  tag: Context.Tag<Id, Cache<A>>,
  schema: Schema.Schema<A, I>,
  options?: { readonly prefix?: string }
): Layer.Layer<Id, never, Cache> =>
  Layer.effect(
    tag,
    Effect.map(Cache, (raw) =>
      forSchema(schema)(options?.prefix === undefined ? raw : prefixed(options.prefix)(raw))
    )
  )

interface TestEntry {
  readonly value: unknown
  readonly expiresAt: number | undefined
}

const isLive = (entry: TestEntry, now: number) => entry.expiresAt === undefined || entry.expiresAt > now

/**
 * The reference implementation behind `layerTest`: an immutable map in a `Ref`, time from the `Clock`
 * service (so `TestClock` drives expiry). No sweeper and no bounds: expired entries are simply ignored.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeTest: Effect.Effect<Cache> = Effect.map(
  Ref.make(HashMap.empty<string, TestEntry>()),
  (ref) => {
    const modify = <B, E>(
      f: (
        map: HashMap.HashMap<string, TestEntry>,
        now: number
      ) => readonly [Either.Either<B, E>, HashMap.HashMap<string, TestEntry>]
    ): Effect.Effect<B, E> =>
      Effect.flatMap(Clock.currentTimeMillis, (now) => Effect.flatten(Ref.modify(ref, (map) => f(map, now))))
    const live = (map: HashMap.HashMap<string, TestEntry>, key: string, now: number) =>
      Option.filter(HashMap.get(map, key), (entry) => isLive(entry, now))
    const store = (
      operation: string,
      key: string,
      value: unknown,
      ttl: Duration.DurationInput | undefined,
      now: number
    ) =>
      Either.map(ttlMillis(operation, key, ttl), (ms) => ({
        value,
        expiresAt: ms === undefined ? undefined : now + ms
      }))
    return make<unknown>({
      get: (key) =>
        modify((map, now) => [Either.right(Option.map(live(map, key, now), (e) => e.value)), map]),
      set: (key, value, ttl) =>
        modify((map, now) => {
          const entry = store("set", key, value, ttl, now)
          return [
            Either.map(entry, () => undefined),
            Either.isRight(entry) ? HashMap.set(map, key, entry.right) : map
          ]
        }),
      delete: (key) =>
        modify((map, now) => [
          Either.right(Option.map(live(map, key, now), (e) => e.value)),
          HashMap.remove(map, key)
        ]),
      has: (key) => modify((map, now) => [Either.right(Option.isSome(live(map, key, now))), map]),
      loadOrStore: (key, value, ttl) =>
        modify((map, now) => {
          const found = live(map, key, now)
          if (Option.isSome(found))
            return [Either.right<LoadOrStore<unknown>>({ value: found.value.value, loaded: true }), map]
          const entry = store("loadOrStore", key, value, ttl, now)
          return [
            Either.map(entry, (): LoadOrStore<unknown> => ({ value, loaded: false })),
            Either.isRight(entry) ? HashMap.set(map, key, entry.right) : map
          ]
        }),
      incrBy: (key, by) =>
        modify((map, now) => {
          const bad = checkIncrement("incrBy", key, by)
          if (bad !== undefined) return [Either.left(bad), map]
          const found = live(map, key, now)
          const current = Option.isSome(found) ? found.value.value : 0
          const next = typeof current === "number" ? current + by : Number.NaN
          if (!Number.isSafeInteger(current) || !Number.isSafeInteger(next)) {
            return [Either.left(notAnInteger("incrBy", key)), map]
          }
          const expiresAt = Option.isSome(found) ? found.value.expiresAt : undefined
          return [Either.right(next), HashMap.set(map, key, { value: next, expiresAt })]
        })
    })
  }
)

/**
 * An in-memory `Cache` for tests that swap Layers (the sibling of every live layer): the obvious
 * reference implementation, driven by the `Clock` service.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerTest: Layer.Layer<Cache> = Layer.effect(Cache, makeTest)
