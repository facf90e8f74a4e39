/**
 * The local cache (map-backed, bounded by entry count or by memory, in one): a `Map`
 * of entries with per-entry TTL, expiry both lazy (checked on every read) and by a sweeper fiber whose
 * every tick is bounded by a key budget and a time budget, optional bounds on entry count and bytes
 * with LRU eviction or rejection, and an `onEvicted` callback told of every value that leaves.
 *
 * Each operation runs as one synchronous step, so operations are atomic without locks: the
 * double-checked expiry on read (re-check under the write lock) holds by construction.
 *
 * @since 0.1.0
 */
import { Context, Duration, Effect, Either, Layer, Option } from "effect"
import type * as Scope from "effect/Scope"
import * as Cache from "./Cache.js"
import { CacheError, CacheFullError } from "./CacheError.js"
import { checkIncrement, notAnInteger, ttlMillis } from "./internal/arguments.js"

/**
 * Why a value left the cache: `deleted` (delete / loadAndDelete), `expired` (found expired on read, by
 * the sweeper, or when its slot was reclaimed), `capacity` (evicted to make room), `replaced` (set or
 * incrBy put a new value under the key).
 *
 * @since 0.1.0
 * @category models
 */
export type EvictionReason = "deleted" | "expired" | "capacity" | "replaced"

/**
 * Options for `make` / `layer`. Every bound is optional: without bounds the cache grows freely.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options<R = never> {
  /** At most this many entries (expired ones count until removed). */
  readonly maxEntries?: number
  /** At most this many bytes, as measured by `sizeOf` (default `approximateSize`). */
  readonly maxBytes?: number
  /** The size of an entry in bytes; used only with `maxBytes`. */
  readonly sizeOf?: (key: string, value: unknown) => number
  /** When a bound is hit: evict the least recently used entries (`lru`, default) or fail the write (`reject`). */
  readonly policy?: "lru" | "reject"
  /** Time between two sweeps (default 1 second). */
  readonly sweepInterval?: Duration.DurationInput
  /** Most entries one sweep examines (default 1000). */
  readonly sweepKeyBudget?: number
  /** Most time one sweep runs (default 1 millisecond); at least one entry is examined per sweep. */
  readonly sweepTimeBudget?: Duration.DurationInput
  /** Told exactly once of every value that leaves the cache; failures and defects are logged, not raised. */
  readonly onEvicted?: (key: string, value: unknown, reason: EvictionReason) => Effect.Effect<void, never, R>
}

/**
 * A memory cache: the `Cache` service plus what only a local cache can tell.
 *
 * @since 0.1.0
 * @category models
 */
export interface MemoryCache extends Cache.Cache {
  /** Entries held, including expired ones the sweeper has not reached yet. */
  readonly size: Effect.Effect<number>
  /** Bytes held as measured by `sizeOf` (0 when `maxBytes` is not set). */
  readonly bytes: Effect.Effect<number>
}

/**
 * The memory cache's own tag; `layer` provides it alongside the generic `Cache`.
 *
 * @since 0.1.0
 * @category tags
 */
export const MemoryCache: Context.Tag<MemoryCache, MemoryCache> =
  Context.GenericTag<MemoryCache>("effect-dal/MemoryCache")

interface Entry {
  readonly key: string
  value: unknown
  /** Epoch millis; `Infinity` when the entry never expires. */
  expiresAt: number
  size: number
  /** Neighbours in recency order; maintained only under the `lru` policy with a bound. */
  newer: Entry | undefined
  older: Entry | undefined
}

interface Eviction {
  readonly key: string
  readonly value: unknown
  readonly reason: EvictionReason
}

const invalid = (detail: string) =>
  new CacheError({ reason: "invalid_argument", operation: "MemoryCache.make", detail })

const positiveInteger = (name: string, value: number | undefined) =>
  value === undefined || (Number.isSafeInteger(value) && value > 0)
    ? undefined
    : invalid(`${name} must be a positive integer, got ${value}`)

const millis = (name: string, input: Duration.DurationInput, allowZero: boolean) =>
  Option.match(Duration.decodeUnknown(input), {
    onNone: () => Either.left(invalid(`${name}: bad duration ${String(input)}`)),
    onSome: (d) => {
      const ms = Duration.toMillis(d)
      return Number.isFinite(ms) && (allowZero ? ms >= 0 : ms > 0)
        ? Either.right(ms)
        : Either.left(invalid(`${name} must be finite and ${allowZero ? "non-negative" : "positive"}`))
    }
  })

/**
 * Builds a memory cache whose sweeper lives as long as the surrounding scope. Closing the scope stops
 * the sweeper (closing it again does nothing); the entries stay readable, with lazy expiry, by anyone
 * still holding the service, and no evictions are reported for them.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = <R = never>(
  options: Options<R> = {}
): Effect.Effect<MemoryCache, CacheError, Scope.Scope | R> =>
  Effect.gen(function* () {
    const badBound =
      positiveInteger("maxEntries", options.maxEntries) ??
      positiveInteger("maxBytes", options.maxBytes) ??
      positiveInteger("sweepKeyBudget", options.sweepKeyBudget)
    if (badBound !== undefined) return yield* badBound
    const intervalMs = yield* millis("sweepInterval", options.sweepInterval ?? "1 second", false)
    const timeBudgetMs = yield* millis("sweepTimeBudget", options.sweepTimeBudget ?? "1 millis", true)
    const keyBudget = options.sweepKeyBudget ?? 1000
    const { maxEntries, maxBytes, onEvicted } = options
    const sizeOf = maxBytes === undefined ? undefined : (options.sizeOf ?? approximateSize)
    const policy = options.policy ?? "lru"
    const lru = policy === "lru" && (maxEntries !== undefined || maxBytes !== undefined)
    const clock = yield* Effect.clock
    const context = yield* Effect.context<R>()

    const map = new Map<string, Entry>()
    let head: Entry | undefined
    let tail: Entry | undefined
    let bytes = 0
    let cursor: Iterator<Entry> | undefined
    const pending: Array<Eviction> = []

    const unlink = (e: Entry) => {
      if (e.newer === undefined) head = e.older
      else e.newer.older = e.older
      if (e.older === undefined) tail = e.newer
      else e.older.newer = e.newer
      e.newer = undefined
      e.older = undefined
    }
    const pushHead = (e: Entry) => {
      e.older = head
      if (head === undefined) tail = e
      else head.newer = e
      head = e
    }
    const touch = (e: Entry) => {
      if (head !== e) {
        unlink(e)
        pushHead(e)
      }
    }
    const remove = (e: Entry, reason: EvictionReason) => {
      map.delete(e.key)
      if (lru) unlink(e)
      bytes -= e.size
      if (onEvicted !== undefined) pending.push({ key: e.key, value: e.value, reason })
    }
    const isExpired = (e: Entry, now: number) => e.expiresAt <= now
    /** The entry under `key` if it is live; an expired one is removed on the spot (lazy expiry). */
    const live = (key: string): Entry | undefined => {
      const e = map.get(key)
      if (e === undefined) return undefined
      if (e.expiresAt !== Number.POSITIVE_INFINITY && isExpired(e, clock.unsafeCurrentTimeMillis())) {
        remove(e, "expired")
        return undefined
      }
      return e
    }
    const insert = (key: string, value: unknown, expiresAt: number, size: number) => {
      const e: Entry = { key, value, expiresAt, size, newer: undefined, older: undefined }
      map.set(key, e)
      bytes += size
      if (lru) pushHead(e)
    }
    /** One bounded pass of the sweeper, resuming where the previous one stopped. */
    const sweepOnce = () => {
      const started = performance.now()
      const now = clock.unsafeCurrentTimeMillis()
      for (let scanned = 0; scanned < keyBudget; ) {
        cursor ??= map.values()
        const next = cursor.next()
        if (next.done === true) {
          cursor = undefined
          return
        }
        scanned++
        if (isExpired(next.value, now)) remove(next.value, "expired")
        if (performance.now() - started >= timeBudgetMs) return
      }
    }
    const overEntries = (self: Entry | undefined) =>
      self === undefined && maxEntries !== undefined && map.size >= maxEntries
    const overBytes = (self: Entry | undefined, size: number) =>
      maxBytes !== undefined && bytes - (self?.size ?? 0) + size > maxBytes
    /**
     * Frees room for an entry of `size` bytes (a new key when `self` is undefined), or says why it cannot.
     * `lru` evicts from the least recent end; `reject` first reclaims expired entries with one sweep.
     */
    const makeRoom = (key: string, size: number, self: Entry | undefined): CacheFullError | undefined => {
      if (maxBytes !== undefined && size > maxBytes)
        return new CacheFullError({ key, limit: "bytes", max: maxBytes })
      if (!overEntries(self) && !overBytes(self, size)) return undefined
      if (!lru) {
        sweepOnce()
        if (maxEntries !== undefined && overEntries(self)) {
          return new CacheFullError({ key, limit: "entries", max: maxEntries })
        }
        if (maxBytes !== undefined && overBytes(self, size)) {
          return new CacheFullError({ key, limit: "bytes", max: maxBytes })
        }
        return undefined
      }
      const now = clock.unsafeCurrentTimeMillis()
      while ((overEntries(self) || overBytes(self, size)) && tail !== undefined && tail !== self) {
        remove(tail, isExpired(tail, now) ? "expired" : "capacity")
      }
      return undefined
    }
    /** Puts `value` under `key` (replacing a live entry in place) if the bounds allow it. */
    const store = (key: string, value: unknown, expiresAt: number, existing: Entry | undefined) => {
      const size = sizeOf === undefined ? 0 : sizeOf(key, value)
      if (existing !== undefined && lru) touch(existing)
      const full = makeRoom(key, size, existing)
      if (full !== undefined) return full
      if (existing === undefined) {
        insert(key, value, expiresAt, size)
        return undefined
      }
      const old = existing.value
      existing.value = value
      existing.expiresAt = expiresAt
      bytes += size - existing.size
      existing.size = size
      if (onEvicted !== undefined) pending.push({ key, value: old, reason: "replaced" })
      return undefined
    }
    const expiry = (operation: string, key: string, ttl: Duration.DurationInput | undefined) => {
      if (ttl === undefined) return Number.POSITIVE_INFINITY
      const ms = ttlMillis(operation, key, ttl)
      if (Either.isLeft(ms)) return ms.left
      return ms.right === undefined ? Number.POSITIVE_INFINITY : clock.unsafeCurrentTimeMillis() + ms.right
    }

    const report = (evictions: ReadonlyArray<Eviction>) =>
      Effect.forEach(
        evictions,
        (ev) =>
          Effect.catchAllCause(onEvicted?.(ev.key, ev.value, ev.reason) ?? Effect.void, (cause) =>
            Effect.logWarning(`MemoryCache onEvicted failed for "${ev.key}"`, cause)
          ),
        { discard: true }
      ).pipe(Effect.provide(context))
    // Without a callback an operation is a bare synchronous step; with one, the step and the report of
    // the evictions it caused run uninterruptibly, so every eviction is reported exactly once.
    const run: <A, E>(step: () => Effect.Effect<A, E>) => Effect.Effect<A, E> =
      onEvicted === undefined
        ? Effect.suspend
        : (step) =>
            Effect.uninterruptible(
              Effect.suspend(() => {
                const result = step()
                return pending.length === 0 ? result : Effect.zipRight(report(pending.splice(0)), result)
              })
            )
    const runSync: <A>(step: () => A) => Effect.Effect<A> =
      onEvicted === undefined ? Effect.sync : (step) => run(() => Effect.succeed(step()))

    const cache = Cache.make<unknown>({
      get: (key) =>
        runSync(() => {
          const e = live(key)
          if (e === undefined) return Option.none()
          if (lru) touch(e)
          return Option.some(e.value)
        }),
      set: (key, value, ttl) =>
        run((): Effect.Effect<void, CacheError | CacheFullError> => {
          const expiresAt = expiry("set", key, ttl)
          if (typeof expiresAt !== "number") return Effect.fail(expiresAt)
          const full = store(key, value, expiresAt, live(key))
          return full === undefined ? Effect.void : Effect.fail(full)
        }),
      delete: (key) =>
        runSync(() => {
          const e = live(key)
          if (e === undefined) return Option.none()
          remove(e, "deleted")
          return Option.some(e.value)
        }),
      has: (key) => runSync(() => live(key) !== undefined),
      loadOrStore: (key, value, ttl) =>
        run((): Effect.Effect<Cache.LoadOrStore<unknown>, CacheError | CacheFullError> => {
          const e = live(key)
          if (e !== undefined) {
            if (lru) touch(e)
            return Effect.succeed({ value: e.value, loaded: true })
          }
          const expiresAt = expiry("loadOrStore", key, ttl)
          if (typeof expiresAt !== "number") return Effect.fail(expiresAt)
          const full = store(key, value, expiresAt, undefined)
          return full === undefined ? Effect.succeed({ value, loaded: false }) : Effect.fail(full)
        }),
      incrBy: (key, by) =>
        run((): Effect.Effect<number, CacheError | CacheFullError> => {
          const bad = checkIncrement("incrBy", key, by)
          if (bad !== undefined) return Effect.fail(bad)
          const e = live(key)
          const current = e === undefined ? 0 : e.value
          const next = typeof current === "number" ? current + by : Number.NaN
          if (!Number.isSafeInteger(current) || !Number.isSafeInteger(next)) {
            return Effect.fail(notAnInteger("incrBy", key))
          }
          const full = store(key, next, e?.expiresAt ?? Number.POSITIVE_INFINITY, e)
          return full === undefined ? Effect.succeed(next) : Effect.fail(full)
        })
    })

    yield* Effect.forkScoped(
      Effect.forever(Effect.zipRight(Effect.sleep(Duration.millis(intervalMs)), runSync(sweepOnce)))
    )

    return {
      ...cache,
      size: Effect.sync(() => map.size),
      bytes: Effect.sync(() => bytes)
    }
  })

/**
 * Provides a memory cache as both `MemoryCache` and the generic `Cache`; the sweeper stops when the
 * Layer's scope closes.
 *
 * @example
 * const CacheLive = MemoryCache.layer({ maxEntries: 10_000, sweepInterval: "1 second" })
 * @since 0.1.0
 * @category layers
 */
export const layer = <R = never>(
  options: Options<R> = {}
): Layer.Layer<MemoryCache | Cache.Cache, CacheError, R> =>
  Layer.scopedContext(
    Effect.map(make(options), (cache) =>
      Context.make(MemoryCache, cache).pipe(Context.add(Cache.Cache, cache))
    )
  )

const valueSize = (value: unknown, seen: Set<object>): number => {
  switch (typeof value) {
    case "string":
      return 2 * value.length
    case "number":
      return 8
    case "boolean":
      return 4
    case "bigint":
      return 8 + Math.ceil(value.toString(16).length / 2)
    case "object": {
      if (value === null || seen.has(value)) return 0
      seen.add(value)
      if (ArrayBuffer.isView(value) || value instanceof ArrayBuffer) return value.byteLength
      if (value instanceof Date) return 8
      let total = 0
      if (value instanceof Map) {
        for (const [k, v] of value) total += valueSize(k, seen) + valueSize(v, seen)
        return total
      }
      if (value instanceof Set || Array.isArray(value)) {
        for (const v of value) total += valueSize(v, seen)
        return total
      }
      for (const [k, v] of Object.entries(value)) total += 2 * k.length + valueSize(v, seen)
      return total
    }
    default:
      return 0
  }
}

/**
 * The default `sizeOf`: walks the value (a recursive size), counting 2 bytes per string
 * character, 8 per number and the byte length of binary data. An estimate, not V8's real footprint.
 *
 * @since 0.1.0
 * @category sizing
 */
export const approximateSize = (key: string, value: unknown): number =>
  2 * key.length + valueSize(value, new Set())
