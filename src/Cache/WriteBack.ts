/**
 * Write-back: writes go to the cache and mark the entry dirty; the store (the database) gets them
 * later, in batches:
 *
 * - when the entry leaves the cache: it expires (its TTL is tracked here, so this works over Redis
 *   too) or a memory cache evicts it (wire `onEvicted` into `MemoryCache.layer`, see below);
 * - on `flush` (and every `flushInterval`, if set);
 * - all at once when the Layer's scope closes: the graceful-shutdown flush of the notes.
 *
 * Values a read-through path stores after loading them (`ReadThrough.filling`) are cached clean: the
 * store already has them. The dirty table holds the latest value of every dirty key until the store has it, so an entry the
 * cache has dropped is still read back (`get` falls back to it) and still written. Deletes are
 * written back too, at the next tick. A batch the store refuses is retried on the `retry` schedule,
 * then split in halves to isolate the entries that fail; what still fails is logged with its keys,
 * counted, handed to `onFailure`, and kept dirty for the next flush: never dropped silently.
 *
 * @example
 * const CacheLive = MemoryCache.layer({ maxEntries: 10_000, onEvicted: WriteBack.onEvicted("users") })
 * const UsersLive = WriteBack.layer(UserCache, { store: WriteThrough.entityStore(User), name: "users" }).pipe(
 *   Layer.provide(Cache.layerSchema(UserCache, User)),
 *   Layer.provide(CacheLive),
 *   Layer.provide(WriteBack.layerEvictions)
 * )
 * @since 0.1.0
 */
import {
  Cause,
  Clock,
  Context,
  Duration,
  Effect,
  Either,
  FiberRef,
  Layer,
  Option,
  Queue,
  Schedule,
  type Scope
} from "effect"
import * as Cache from "./Cache.js"
import { CacheError } from "./CacheError.js"
import { ttlMillis } from "./internal/arguments.js"
import * as M from "./internal/patternMetrics.js"
import type { EvictionReason } from "./MemoryCache.js"
import * as ReadThrough from "./ReadThrough.js"
import type { Entry, Store } from "./WriteThrough.js"

/**
 * Entries the store refused after every retry: the values to write and the keys to delete, with why.
 *
 * @since 0.1.0
 * @category models
 */
export interface Failure<A, E> {
  readonly writes: ReadonlyArray<Entry<A>>
  readonly deletes: ReadonlyArray<string>
  readonly cause: Cause.Cause<E>
}

/**
 * What one flush did.
 *
 * @since 0.1.0
 * @category models
 */
export interface FlushReport<A, E> {
  /** Entries written to the store. */
  readonly written: number
  /** Keys deleted from the store. */
  readonly deleted: number
  readonly failures: ReadonlyArray<Failure<A, E>>
}

/**
 * The control side of a write-back cache.
 *
 * @since 0.1.0
 * @category models
 */
export interface WriteBack<A = unknown, E = unknown> {
  /** Writes every dirty entry to the store now. */
  readonly flush: Effect.Effect<FlushReport<A, E>>
  /** How many entries are dirty. */
  readonly dirty: Effect.Effect<number>
}

/**
 * The control of the write-back cache `layer` provides.
 *
 * @since 0.1.0
 * @category tags
 */
export const WriteBack: Context.Tag<WriteBack, WriteBack> =
  Context.GenericTag<WriteBack>("effect-dal/WriteBack")

/**
 * Options for `make` / `layer`.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options<A, E = never, R = never> {
  readonly store: Store<A, E, R>
  /** The `cache` tag of its metrics, and the name eviction notices are matched by. */
  readonly name?: string
  /** Retries of a refused batch (default: 3, exponential from 50 ms). */
  readonly retry?: Schedule.Schedule<unknown, E>
  /** Entries per store call (default 500). */
  readonly batchSize?: number
  /** How often expired and evicted entries are written back (default 1 second). */
  readonly tick?: Duration.DurationInput
  /** If set, every dirty entry is written back this often as well. */
  readonly flushInterval?: Duration.DurationInput
  /** Told of every failure (after it is logged and counted). */
  readonly onFailure?: (failure: Failure<A, E>) => Effect.Effect<void>
  /** The prefix eviction notices carry when the memory cache is shared through a prefixed view. */
  readonly evictionPrefix?: string
}

/**
 * Where a memory cache reports its evictions so write-back caches over it can write back what leaves.
 *
 * @since 0.1.0
 * @category models
 */
export interface Evictions {
  readonly notify: (name: string, key: string, reason: EvictionReason) => void
  readonly listen: (
    name: string,
    listener: (key: string, reason: EvictionReason) => void
  ) => Effect.Effect<void, never, Scope.Scope>
}

/**
 * The eviction hub a memory cache reports to (through `onEvicted`) and write-back caches listen on.
 *
 * @since 0.1.0
 * @category tags
 */
export const Evictions: Context.Tag<Evictions, Evictions> = Context.GenericTag<Evictions>(
  "effect-dal/WriteBack/Evictions"
)

/**
 * An eviction hub.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeEvictions = (): Evictions => {
  const listeners = new Map<string, Set<(key: string, reason: EvictionReason) => void>>()
  return {
    notify: (name, key, reason) => {
      for (const listener of listeners.get(name) ?? []) listener(key, reason)
    },
    listen: (name, listener) =>
      Effect.acquireRelease(
        Effect.sync(() => {
          const set = listeners.get(name) ?? new Set()
          set.add(listener)
          listeners.set(name, set)
        }),
        () => Effect.sync(() => listeners.get(name)?.delete(listener))
      )
  }
}

/**
 * Provides an eviction hub; build it below both the memory cache and the write-back caches.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerEvictions: Layer.Layer<Evictions> = Layer.sync(Evictions, makeEvictions)

/**
 * The `onEvicted` callback for `MemoryCache.layer`: counts every eviction of cache `name` in
 * `effect_dal_cache_evictions_total` and tells the write-back cache of that name.
 *
 * @since 0.1.0
 * @category constructors
 */
export const onEvicted =
  (name: string) =>
  (key: string, _value: unknown, reason: EvictionReason): Effect.Effect<void, never, Evictions> =>
    Effect.zipRight(
      M.countEviction(name, reason),
      Effect.map(Evictions, (hub) => hub.notify(name, key, reason))
    )

type Pending<A> =
  | { readonly op: "write"; readonly value: A; readonly version: number; expiresAt: number; due: boolean }
  | { readonly op: "delete"; readonly version: number; due: boolean }

const invalid = (detail: string) =>
  new CacheError({ reason: "invalid_argument", operation: "WriteBack.make", detail })

const durationMillis = (name: string, input: Duration.DurationInput) =>
  Option.match(Duration.decodeUnknown(input), {
    onNone: () => Either.left(invalid(`${name}: bad duration ${String(input)}`)),
    onSome: (d) => {
      const ms = Duration.toMillis(d)
      return Number.isFinite(ms) && ms > 0
        ? Either.right(ms)
        : Either.left(invalid(`${name} must be positive and finite`))
    }
  })

/**
 * Builds a write-back cache over `cache`: the decorated cache and its control. Closing the scope
 * stops the background writer and writes back everything still dirty; writes made after that go
 * straight to the store.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = <A, E = never, R = never>(
  cache: Cache.Cache<A>,
  options: Options<A, E, R>
): Effect.Effect<
  { readonly cache: Cache.Cache<A>; readonly control: WriteBack<A, E> },
  CacheError,
  Scope.Scope | R
> =>
  Effect.gen(function* () {
    const name = options.name ?? "cache"
    const batchSize = options.batchSize ?? 500
    if (!Number.isSafeInteger(batchSize) || batchSize < 1)
      return yield* invalid("batchSize must be a positive integer")
    const tick = yield* durationMillis("tick", options.tick ?? "1 second")
    const flushEvery =
      options.flushInterval === undefined
        ? undefined
        : yield* durationMillis("flushInterval", options.flushInterval)
    const retry = options.retry ?? Schedule.intersect(Schedule.exponential("50 millis"), Schedule.recurs(3))
    const context = yield* Effect.context<R>()
    const store = options.store
    const prefix = options.evictionPrefix ?? ""

    const pending = new Map<string, Pending<A>>()
    let version = 0
    let closed = false
    const wake = yield* Queue.sliding<void>(1)
    const flushLock = yield* Effect.makeSemaphore(1)
    const gauge = Effect.sync(() => M.setDirty(name, pending.size))

    const markWrite = (key: string, value: A, ttl: Duration.DurationInput | undefined) =>
      Effect.flatMap(Clock.currentTimeMillis, (now) => {
        const ms = ttlMillis("set", key, ttl)
        const expiresAt =
          Either.isRight(ms) && ms.right !== undefined ? now + ms.right : Number.POSITIVE_INFINITY
        pending.set(key, { op: "write", value, version: ++version, expiresAt, due: false })
        return gauge
      })
    const markDelete = (key: string) =>
      Effect.suspend(() => {
        pending.set(key, { op: "delete", version: ++version, due: true })
        return Effect.zipRight(gauge, Queue.offer(wake, undefined))
      })

    /** Runs a store call with the layer's context, retried on the schedule. */
    const attempt = (call: Effect.Effect<void, E, R>, retried: boolean) =>
      Effect.provide(retried ? Effect.retry(call, retry) : call, context)

    /** Writes (or deletes) `items`; a refused batch is split until the failing entries are isolated. */
    const send = <T>(
      items: ReadonlyArray<T>,
      call: (items: ReadonlyArray<T>) => Effect.Effect<void, E, R>,
      retried: boolean
    ): Effect.Effect<{
      readonly done: ReadonlyArray<T>
      readonly failed: ReadonlyArray<readonly [ReadonlyArray<T>, Cause.Cause<E>]>
    }> =>
      Effect.matchCauseEffect(attempt(call(items), retried), {
        onSuccess: () => Effect.succeed({ done: items, failed: [] }),
        onFailure: (cause) => {
          if (items.length <= 1 || Cause.isInterruptedOnly(cause)) {
            return Effect.succeed({ done: [], failed: [[items, cause] as const] })
          }
          const half = Math.ceil(items.length / 2)
          return Effect.map(
            Effect.all([send(items.slice(0, half), call, false), send(items.slice(half), call, false)]),
            ([a, b]) => ({ done: [...a.done, ...b.done], failed: [...a.failed, ...b.failed] })
          )
        }
      })

    const chunks = <T>(items: ReadonlyArray<T>): ReadonlyArray<ReadonlyArray<T>> => {
      const out: Array<ReadonlyArray<T>> = []
      for (let i = 0; i < items.length; i += batchSize) out.push(items.slice(i, i + batchSize))
      return out
    }

    /** Removes a written entry unless it was written again meanwhile. */
    const settle = (key: string, written: number) => {
      if (pending.get(key)?.version === written) pending.delete(key)
    }

    const report = (failure: Failure<A, E>) => {
      const keys = [...failure.writes.map((w) => w.key), ...failure.deletes]
      const shown =
        keys.length > 50 ? `${keys.slice(0, 50).join(", ")} and ${keys.length - 50} more` : keys.join(", ")
      return Effect.logError(
        `cache ${name}: write-back of ${keys.length} entries failed; keys: ${shown}`,
        failure.cause
      ).pipe(
        Effect.zipRight(M.count(M.storeFailures, name, keys.length)),
        Effect.zipRight(options.onFailure?.(failure) ?? Effect.void)
      )
    }

    /** Writes back the dirty entries `select` picks, batch by batch. */
    const flushWhere = (select: (entry: Pending<A>) => boolean): Effect.Effect<FlushReport<A, E>> =>
      flushLock.withPermits(1)(
        Effect.gen(function* () {
          const writes: Array<Entry<A> & { readonly version: number }> = []
          const deletes: Array<{ readonly key: string; readonly version: number }> = []
          for (const [key, entry] of pending) {
            if (!select(entry)) continue
            entry.due = false
            if (entry.op === "write") writes.push({ key, value: entry.value, version: entry.version })
            else deletes.push({ key, version: entry.version })
          }
          const failures: Array<Failure<A, E>> = []
          let written = 0
          let deleted = 0
          for (const batch of chunks(writes)) {
            const result = yield* send(
              batch,
              (items) => store.write(items.map(({ key, value }) => ({ key, value }))),
              true
            )
            for (const item of result.done) settle(item.key, item.version)
            written += result.done.length
            for (const [items, cause] of result.failed) {
              // Kept dirty, but no longer due by expiry: retried at the next flush, not at every tick.
              for (const item of items) {
                const entry = pending.get(item.key)
                if (entry?.op === "write" && entry.version === item.version)
                  entry.expiresAt = Number.POSITIVE_INFINITY
              }
              failures.push({ writes: items.map(({ key, value }) => ({ key, value })), deletes: [], cause })
            }
          }
          for (const batch of chunks(deletes)) {
            const result = yield* send(batch, (items) => store.delete(items.map((d) => d.key)), true)
            for (const item of result.done) settle(item.key, item.version)
            deleted += result.done.length
            for (const [items, cause] of result.failed) {
              failures.push({ writes: [], deletes: items.map((d) => d.key), cause })
            }
          }
          yield* M.count(M.flushed, name, written + deleted)
          yield* gauge
          yield* Effect.forEach(failures, report, { discard: true })
          return { written, deleted, failures }
        })
      )

    const flushDue = Effect.flatMap(Clock.currentTimeMillis, (now) =>
      flushWhere((entry) => entry.due || (entry.op === "write" && entry.expiresAt <= now))
    )

    const evictions = yield* Effect.serviceOption(Evictions)
    if (Option.isSome(evictions)) {
      yield* evictions.value.listen(name, (rawKey, reason) => {
        if (reason !== "expired" && reason !== "capacity") return
        if (!rawKey.startsWith(prefix)) return
        const entry = pending.get(rawKey.slice(prefix.length))
        if (entry === undefined) return
        entry.due = true
        wake.unsafeOffer(undefined)
      })
    }

    // Added before the writer fibers are forked, so it runs after they are interrupted (reverse order).
    yield* Effect.addFinalizer(() =>
      Effect.zipRight(
        Effect.sync(() => {
          closed = true
        }),
        Effect.flatMap(
          flushWhere(() => true),
          (result) =>
            Effect.logInfo(
              `cache ${name}: write-back on close wrote ${result.written}, deleted ${result.deleted}, ` +
                `${result.failures.length} failed batches`
            )
        )
      )
    )

    // The background writer: wakes on a tick, on an eviction or a delete, and writes back what is due.
    const writer = Effect.forever(
      Effect.zipRight(
        Effect.race(Queue.take(wake), Effect.sleep(Duration.millis(tick))),
        Effect.asVoid(flushDue)
      )
    )
    yield* Effect.forkScoped(Effect.interruptible(writer))
    if (flushEvery !== undefined) {
      yield* Effect.forkScoped(
        Effect.interruptible(
          Effect.forever(
            Effect.zipRight(
              Effect.sleep(Duration.millis(flushEvery)),
              flushWhere(() => true)
            )
          )
        )
      )
    }
    /** After close there is no writer: a write goes straight to the store, failures reported. */
    const direct = (
      key: string,
      call: Effect.Effect<void, E, R>,
      failure: (cause: Cause.Cause<E>) => Failure<A, E>
    ) =>
      Effect.catchAllCause(attempt(call, true), (cause) => report(failure(cause))).pipe(
        Effect.zipRight(
          Effect.logWarning(`cache ${name}: written to the store directly after close: "${key}"`)
        )
      )

    const primitives: Cache.Primitives<A> = {
      get: (key) =>
        Effect.map(cache.get(key), (found) => {
          if (Option.isSome(found)) return found
          const entry = pending.get(key)
          return entry?.op === "write" ? Option.some(entry.value) : Option.none()
        }),
      set: (key, value, ttl) =>
        Effect.flatMap(FiberRef.get(ReadThrough.filling), (fill) => {
          // A value a read path loaded is already in the store: cache it clean, and never over a
          // dirty value (the load may predate the write).
          if (fill) return pending.has(key) ? Effect.void : cache.set(key, value, ttl)
          return Effect.zipRight(
            cache.set(key, value, ttl),
            Effect.suspend(() =>
              closed
                ? direct(key, store.write([{ key, value }]), (cause) => ({
                    writes: [{ key, value }],
                    deletes: [],
                    cause
                  }))
                : markWrite(key, value, ttl)
            )
          )
        }),
      delete: (key) =>
        Effect.flatMap(cache.delete(key), (found) =>
          Effect.suspend(() => {
            const entry = pending.get(key)
            const previous = Option.isSome(found) || entry?.op !== "write" ? found : Option.some(entry.value)
            const record = closed
              ? direct(key, store.delete([key]), (cause) => ({ writes: [], deletes: [key], cause }))
              : markDelete(key)
            return Effect.as(record, previous)
          })
        ),
      has: (key) => Effect.map(cache.has(key), (has) => has || pending.get(key)?.op === "write"),
      loadOrStore: (key, value, ttl) =>
        Effect.suspend(() => {
          const entry = pending.get(key)
          if (entry?.op === "write") return Effect.succeed({ value: entry.value, loaded: true })
          return Effect.tap(cache.loadOrStore(key, value, ttl), (result) =>
            result.loaded
              ? Effect.void
              : closed
                ? direct(key, store.write([{ key, value }]), (cause) => ({
                    writes: [{ key, value }],
                    deletes: [],
                    cause
                  }))
                : markWrite(key, value, ttl)
          )
        }),
      incrBy: (key, by) =>
        Effect.tap(cache.incrBy(key, by), () =>
          Effect.flatMap(cache.get(key), (now) =>
            Option.isSome(now) ? markWrite(key, now.value, undefined) : Effect.void
          )
        )
    }

    return {
      cache: Cache.make(primitives),
      control: { flush: Effect.suspend(() => flushWhere(() => true)), dirty: Effect.sync(() => pending.size) }
    }
  })

/**
 * Decorates the cache under `tag` with write-back to `options.store`, and provides its control as
 * `WriteBack`. The store's requirements are taken from the Layer's context (its writes run in the
 * background, not in a caller's fiber).
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = <I, A, E, R>(
  tag: Context.Tag<I, Cache.Cache<A>>,
  options: Options<A, E, R>
): Layer.Layer<I | WriteBack, CacheError, I | R> =>
  Layer.scopedContext(
    Effect.flatMap(tag, (inner) =>
      Effect.map(make(inner, { ...options, name: options.name ?? tag.key }), ({ cache, control }) =>
        Context.make(tag, cache).pipe(Context.add(WriteBack, control))
      )
    )
  )
