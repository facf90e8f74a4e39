/**
 * Read-through: a cache that loads what it misses. `get` answers from the cache; on a miss it calls
 * the `loader` and stores what it found, in one of three modes:
 *
 * - `sync`: load, store, return;
 * - `semiAsync`: load and return; the store runs in the background;
 * - `async`: answer the miss at once (`None`); load and store in the background.
 *
 * Background work runs on the read path's own `TaskPool`, never as a loose fiber; when the pool is full
 * the work is skipped and counted (`effect_dal_cache_background_dropped_total`), so a burst of misses
 * never blocks callers in the asynchronous modes.
 *
 * The loader returns `Option`: `None` means the source has no such key. Neither an absence nor a
 * failed load is cached, unless negative caching is on: then both are remembered in-process for the
 * negative TTL, and a remembered failure fails again with the same error. A store that fails after a
 * good load is logged and counted, and the loaded value is still returned.
 *
 * Inside a transaction (the caller's `Executor` session holds one) the cache is bypassed: the loader
 * runs directly, nothing is read from or written to the cache, so uncommitted rows never reach other
 * callers and the transaction reads its own writes.
 *
 * The read path has slots that other patterns fill: `admits` (asked on a miss before any load, e.g.
 * `BloomFilter`), `flights` (around each fill of a key, e.g. `Singleflight`) and `guards` (around each
 * loader call, e.g. `RateLimited`). Each pattern is a Layer that rebuilds the service from its
 * `parts` with its slot filled, so the order the Layers are listed in does not change the result.
 *
 * @since 0.1.0
 */
import {
  Cause,
  Clock,
  Context,
  type Duration,
  Effect,
  Either,
  Exit,
  type Fiber,
  FiberRef,
  Layer,
  Option
} from "effect"
import type * as Scope from "effect/Scope"
import * as TaskPool from "../Concurrency/TaskPool.js"
import { Executor } from "../Query/Executor.js"
import type * as Cache from "./Cache.js"
import { CacheError, type CacheFullError, CacheMissError } from "./CacheError.js"
import { ttlMillis } from "./internal/arguments.js"
import { type KeyTracker, NegativeTable } from "./internal/keyTables.js"

/**
 * The stateful parts a decorator finds in `Parts`: the negative cache and the key tracker.
 *
 * @since 0.1.0 @category models
 */
export type { KeyTracker, NegativeTable }

import * as M from "./internal/patternMetrics.js"

/**
 * When a miss is loaded and stored (see the module doc).
 *
 * @since 0.1.0
 * @category models
 */
export type Mode = "sync" | "semiAsync" | "async"

/**
 * Loads the value of a key from the source; `None` when the source has none.
 *
 * @since 0.1.0
 * @category models
 */
export type Loader<A, E = never, R = never> = (key: string) => Effect.Effect<Option.Option<A>, E, R>

/**
 * Negative caching: absences (and, by default, failed loads) are remembered in-process for `ttl`.
 *
 * @since 0.1.0
 * @category models
 */
export interface NegativeOptions<E> {
  /** How long an absence or a failure is remembered; keep it shorter than the cache TTL. */
  readonly ttl: Duration.DurationInput
  /** Which failed loads are remembered (default: every one); absences always are. */
  readonly failures?: (error: E) => boolean
  /** At most this many remembered keys; the oldest goes first (default 10,000). */
  readonly maxEntries?: number
}

/**
 * Options for `make` / `layer`.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options<A, E = never, R = never> {
  readonly loader: Loader<A, E, R>
  /** TTL of stored values; none: they never expire. */
  readonly ttl?: Duration.DurationInput
  /** Default `sync`. */
  readonly mode?: Mode
  /** Off unless given. */
  readonly negative?: NegativeOptions<E>
  /** The `cache` tag of its metrics (the layer defaults it to the tag's key). */
  readonly name?: string
  /** The pool that runs background loads and stores (default 4 workers, 1,024 queued tasks). */
  readonly background?: { readonly concurrency: number; readonly capacity: number }
  /** `bypass` (default): inside a transaction, load directly; `use`: serve and fill the cache anyway. */
  readonly transactions?: "bypass" | "use"
}

/**
 * Wraps the fill (load, then store) of one key; `Singleflight` shares one fill among concurrent misses.
 *
 * @since 0.1.0
 * @category slots
 */
export type Flight = <X, E2, R2>(key: string, fill: Effect.Effect<X, E2, R2>) => Effect.Effect<X, E2, R2>

/**
 * A value served in place of a load (e.g. a default when the load was refused): returned to the
 * caller, never stored, never remembered as an absence.
 *
 * @since 0.1.0
 * @category slots
 */
export interface Fallback<A> {
  readonly _tag: "Fallback"
  readonly value: Option.Option<A>
}

/**
 * What a guarded load yields: the loader's answer, or a fallback.
 *
 * @since 0.1.0
 * @category slots
 */
export type Loaded<A> = Option.Option<A> | Fallback<A>

/**
 * Makes a `Fallback`.
 *
 * @since 0.1.0
 * @category slots
 */
export const fallback = <A>(value: Option.Option<A>): Fallback<A> => ({ _tag: "Fallback", value })

/**
 * Wraps one loader call; `RateLimited` refuses it (failing, or answering a `Fallback`).
 *
 * @since 0.1.0
 * @category slots
 */
export type Guard<A, E, R> = (
  key: string,
  load: Effect.Effect<Loaded<A>, E, R>
) => Effect.Effect<Loaded<A>, E, R>

/**
 * Asked on a miss before anything is loaded: `false` means the key is known to be absent.
 *
 * @since 0.1.0
 * @category slots
 */
export type Admit = (key: string) => Effect.Effect<boolean>

/**
 * What a read-through service is built from. Stateful parts (the negative cache, the pool, the key
 * tracker) are created once by `make`; decorators rebuild the service with `fromParts`.
 *
 * @since 0.1.0
 * @category models
 */
export interface Parts<A, E, R> {
  readonly name: string
  readonly cache: Cache.Cache<A>
  readonly loader: Loader<A, E, R>
  readonly ttl: number | undefined
  readonly mode: Mode
  readonly negative:
    | { readonly table: NegativeTable<E>; readonly failures: (error: E) => boolean }
    | undefined
  readonly pool: TaskPool.TaskPool
  readonly bypassTransactions: boolean
  readonly admits: ReadonlyArray<Admit>
  readonly flights: ReadonlyArray<Flight>
  readonly guards: ReadonlyArray<Guard<A, E, R>>
  /** Set by `RefreshAhead`: the keys stored here and for how long they are remembered (ms). */
  readonly tracker: { readonly keys: KeyTracker; readonly forMillis: number } | undefined
  /** Run before every cached read, e.g. `RefreshAhead` applying the changes pending. */
  readonly before: ReadonlyArray<Effect.Effect<void>>
}

/**
 * A read-through cache.
 *
 * @since 0.1.0
 * @category models
 */
export interface ReadThrough<A, E = never, R = never> {
  /** The cached value, or the loaded one on a miss (`None` in `async` mode, or when the source has none). */
  readonly get: (key: string) => Effect.Effect<Option.Option<A>, E | CacheError, R>
  /** Like `get`, failing with `CacheMissError` instead of `None`. */
  readonly getOrFail: (key: string) => Effect.Effect<A, E | CacheError | CacheMissError, R>
  /** Loads `key` now and stores the result (or forgets the key if the source has none). */
  readonly refresh: (key: string) => Effect.Effect<Option.Option<A>, E | CacheError, R>
  /** Removes `key` from the cache and from the negative cache. */
  readonly invalidate: (key: string) => Effect.Effect<void, CacheError>
  /** Forgets every negative entry and every key tracked by `RefreshAhead`; without tracking, only negatives. */
  readonly invalidateAll: Effect.Effect<void, CacheError>
  /** The cache underneath (writes go there). */
  readonly cache: Cache.Cache<A>
  readonly parts: Parts<A, E, R>
}

/**
 * True while a read path stores a value it loaded from the source, or drops a cached value to be
 * loaded again (`invalidate`, as `RefreshAhead` does): a decorator that treats writes as new data
 * (`WriteBack`) must not treat these so, since the source already has the value, and an invalidation
 * is not a delete of the data.
 *
 * @since 0.1.0
 * @category fiber refs
 */
export const filling: FiberRef.FiberRef<boolean> = FiberRef.unsafeMake(false)

/**
 * A Tag class for one read-through cache.
 *
 * @example
 * class UserReads extends ReadThrough.Tag("app/UserReads")<UserReads, User, Select.SelectError, Executor.Executor>() {}
 * @since 0.1.0
 * @category tags
 */
export const Tag =
  <const Id extends string>(id: Id) =>
  <Self, A, E = never, R = never>(): Context.TagClass<Self, Id, ReadThrough<A, E, R>> =>
    Context.Tag(id)<Self, ReadThrough<A, E, R>>()

const invalid = (detail: string) =>
  new CacheError({ reason: "invalid_argument", operation: "ReadThrough.make", detail })

/** Whether the caller's own Executor session holds a transaction. */
/** Read from the fiber in one step: this check sits on every cache hit. */
const inTransaction = (fiber: Fiber.RuntimeFiber<unknown, unknown>): boolean => {
  const executor = Context.getOption(fiber.getFiberRef(FiberRef.currentContext), Executor)
  return Option.isSome(executor) && Option.isSome(fiber.getFiberRef(executor.value.session.transaction))
}

/**
 * Submits `task` to `pool` if it has room now; otherwise (or once closed) skips it and counts it.
 *
 * @since 0.1.0
 * @category combinators
 */
export const background = <R>(
  pool: TaskPool.TaskPool,
  name: string,
  task: Effect.Effect<void, never, R>
): Effect.Effect<void, never, R> =>
  Effect.timeoutOption(pool.submit(task), 0).pipe(
    Effect.flatMap((accepted) => (Option.isSome(accepted) ? Effect.void : Effect.fail(undefined))),
    Effect.catchAll(() => M.count(M.backgroundDropped, name))
  )

/**
 * Builds the service from its parts (what decorators call after filling a slot).
 *
 * @since 0.1.0
 * @category constructors
 */
export const fromParts = <A, E, R>(parts: Parts<A, E, R>): ReadThrough<A, E, R> => {
  const { cache, name, negative, mode, tracker } = parts

  const callLoader = (key: string): Effect.Effect<Option.Option<A>, E, R> =>
    Effect.zipRight(
      M.count(M.loads, name),
      Effect.tapError(parts.loader(key), () => M.count(M.loadFailures, name))
    )
  const guarded = (key: string): Effect.Effect<Loaded<A>, E, R> =>
    parts.guards.reduce((load, guard) => guard(key, load), callLoader(key) as Effect.Effect<Loaded<A>, E, R>)

  const store = (key: string, value: A): Effect.Effect<void> =>
    Effect.flatMap(Clock.currentTimeMillis, (now) => {
      if (tracker !== undefined) tracker.keys.add(key, now + tracker.forMillis, now)
      return Effect.catchAll(
        Effect.locally(cache.set(key, value, parts.ttl), filling, true),
        (e: CacheError | CacheFullError) => M.reportStoreFailure(name, key, e)
      )
    })

  /** Loads, remembers absences and failures when negative caching is on, and stores per the mode. */
  const loadAndStore = (key: string, storeInBackground: boolean): Effect.Effect<Option.Option<A>, E, R> =>
    Effect.flatMap(Effect.exit(guarded(key)), (exit) =>
      Effect.flatMap(Clock.currentTimeMillis, (now) => {
        if (Exit.isSuccess(exit)) {
          const found = exit.value
          if (found._tag === "Fallback") return Effect.succeed(found.value)
          if (Option.isNone(found)) {
            negative?.table.absent(key, now)
            return Effect.succeed(found)
          }
          const stored = storeInBackground
            ? background(parts.pool, name, store(key, found.value))
            : store(key, found.value)
          return Effect.as(stored, found)
        }
        const failure = Cause.failureOption(exit.cause)
        if (negative !== undefined && Option.isSome(failure) && negative.failures(failure.value)) {
          negative.table.failed(key, failure.value, now)
        }
        return Effect.failCause(exit.cause)
      })
    )

  /** What a miss already knows without loading: a negative entry, or an admit saying "absent". */
  const known = (key: string): Effect.Effect<Option.Option<Option.Option<A>>, E> =>
    Effect.flatMap(Clock.currentTimeMillis, (now) => {
      const entry = negative === undefined ? Option.none() : negative.table.get(key, now)
      if (Option.isSome(entry)) {
        const remembered = entry.value
        const answer: Effect.Effect<Option.Option<Option.Option<A>>, E> = remembered._tag === "Absent"
          ? Effect.succeed(Option.some(Option.none()))
          : Effect.fail(remembered.error)
        return Effect.zipRight(M.count(M.negativeHits, name), answer)
      }
      return Effect.map(
        Effect.forEach(parts.admits, (admit) => admit(key)),
        (verdicts): Option.Option<Option.Option<A>> =>
          verdicts.every(Boolean) ? Option.none() : Option.some(Option.none())
      )
    })

  const flown = <X, E2, R2>(key: string, fill: Effect.Effect<X, E2, R2>): Effect.Effect<X, E2, R2> =>
    parts.flights.reduce((inner, flight) => flight(key, inner), fill)

  /**
   * The fill of a missed key. Under a flight, the cache is read again first: a caller that missed
   * just before another caller's fill stored the value then finds it instead of loading again.
   */
  const fill = (key: string): Effect.Effect<Option.Option<A>, E | CacheError, R> => {
    const load = loadAndStore(key, mode === "semiAsync")
    if (parts.flights.length === 0) return load
    return Effect.flatMap(
      Effect.orElseSucceed(cache.get(key), () => Option.none<A>()),
      (again) => (Option.isSome(again) ? Effect.succeed(again) : load)
    )
  }

  const miss = (key: string): Effect.Effect<Option.Option<A>, E | CacheError, R> =>
    Effect.flatMap(known(key), (answer) => {
      if (Option.isSome(answer)) return Effect.succeed(answer.value)
      if (mode !== "async") return flown(key, fill(key))
      const task = Effect.catchAllCause(Effect.asVoid(flown(key, fill(key))), (cause) =>
        Effect.logWarning(`cache ${name}: background load of "${key}" failed`, cause)
      )
      return Effect.as(background(parts.pool, name, task), Option.none<A>())
    })

  const lookup = (key: string): Effect.Effect<Option.Option<A>, E | CacheError, R> =>
    Effect.flatMap(cache.get(key), (found) => {
      if (Option.isSome(found)) {
        M.add(M.hits, name)
        return Effect.succeed(found)
      }
      M.add(M.misses, name)
      return miss(key)
    })
  const prelude = parts.before.length === 0 ? undefined : Effect.all(parts.before, { discard: true })
  const cached = prelude === undefined ? lookup : (key: string) => Effect.zipRight(prelude, lookup(key))

  const get = (key: string): Effect.Effect<Option.Option<A>, E | CacheError, R> =>
    parts.bypassTransactions
      ? Effect.withFiberRuntime((fiber) => (inTransaction(fiber) ? callLoader(key) : cached(key)))
      : cached(key)

  const invalidate = (key: string): Effect.Effect<void, CacheError> =>
    Effect.suspend(() => {
      negative?.table.delete(key)
      tracker?.keys.delete(key)
      return Effect.asVoid(Effect.locally(cache.delete(key), filling, true))
    })

  return {
    get,
    getOrFail: (key) =>
      Effect.flatMap(get(key), (found) =>
        Option.isSome(found) ? Effect.succeed(found.value) : Effect.fail(new CacheMissError({ key }))
      ),
    refresh: (key) =>
      Effect.flatMap(
        Effect.sync(() => negative?.table.delete(key)),
        () =>
          Effect.tap(loadAndStore(key, false), (found) =>
            Option.isNone(found) ? cache.delete(key) : Effect.void
          )
      ),
    invalidate,
    invalidateAll: Effect.flatMap(Clock.currentTimeMillis, (now) => {
      negative?.table.clear()
      const keys = tracker === undefined ? [] : tracker.keys.drain(now)
      return Effect.forEach(keys, (key) => cache.delete(key), { discard: true })
    }),
    cache,
    parts
  }
}

/**
 * Builds a read-through service over `cache`; its background pool drains when the scope closes.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = <A, E = never, R = never>(
  cache: Cache.Cache<A>,
  options: Options<A, E, R>
): Effect.Effect<ReadThrough<A, E, R>, CacheError, Scope.Scope> =>
  Effect.gen(function* () {
    const name = options.name ?? "cache"
    const ttl = ttlMillis("ReadThrough.make", "", options.ttl)
    if (Either.isLeft(ttl)) return yield* invalid(ttl.left.detail ?? "bad TTL")
    let negative: Parts<A, E, R>["negative"]
    if (options.negative !== undefined) {
      const negativeTtl = ttlMillis("ReadThrough.make", "", options.negative.ttl)
      if (Either.isLeft(negativeTtl) || negativeTtl.right === undefined) {
        return yield* invalid("negative.ttl must be a positive, finite duration")
      }
      const maxEntries = options.negative.maxEntries ?? 10_000
      if (!Number.isSafeInteger(maxEntries) || maxEntries < 1) {
        return yield* invalid("negative.maxEntries must be a positive integer")
      }
      negative = {
        table: new NegativeTable<E>(negativeTtl.right, maxEntries),
        failures: options.negative.failures ?? (() => true)
      }
    }
    const sizing = options.background ?? { concurrency: 4, capacity: 1024 }
    const pool = yield* Effect.mapError(TaskPool.make(sizing), (e) => invalid(`background: ${e.message}`))
    return fromParts<A, E, R>({
      name,
      cache,
      loader: options.loader,
      ttl: ttl.right,
      mode: options.mode ?? "sync",
      negative,
      pool,
      bypassTransactions: (options.transactions ?? "bypass") === "bypass",
      admits: [],
      flights: [],
      guards: [],
      tracker: undefined,
      before: []
    })
  })

/**
 * Provides a read-through service under `tag`, over the cache under `cacheTag`.
 *
 * @example
 * const UserReadsLive = ReadThrough.layer(UserReads, UserCache, {
 *   loader: (id) => Select.from(User).where((u) => u.id.eq(Number(id))).getMulti().pipe(Effect.map(Array.head)),
 *   ttl: "5 minutes",
 *   negative: { ttl: "10 seconds" }
 * })
 * @since 0.1.0
 * @category layers
 */
export const layer = <I, A, E, R, CI>(
  tag: Context.Tag<I, ReadThrough<A, E, R>>,
  cacheTag: Context.Tag<CI, Cache.Cache<A>>,
  options: Options<A, E, R>
): Layer.Layer<I, CacheError, CI> =>
  Layer.scoped(
    tag,
    Effect.flatMap(cacheTag, (cache) => make(cache, { ...options, name: options.name ?? tag.key }))
  )

/**
 * A decorator of a read-through service as a Layer: rebuilds the service under `tag` from its parts
 * after `f` changes them. `Singleflight`, `BloomFilter`, `RateLimited` and `RefreshAhead` are built on it.
 *
 * @since 0.1.0
 * @category combinators
 */
export const decorate = <I, A, E, R, E2 = never, R2 = never>(
  tag: Context.Tag<I, ReadThrough<A, E, R>>,
  f: (parts: Parts<A, E, R>) => Effect.Effect<Parts<A, E, R>, E2, R2>
): Layer.Layer<I, E2, I | Exclude<R2, Scope.Scope>> =>
  Layer.scoped(
    tag,
    Effect.flatMap(tag, (self) => Effect.map(f(self.parts), fromParts))
  )
