/**
 * Write-back: writes go to the cache and mark the entry dirty; the store (the database) gets them
 * later, in batches:
 *
 * - when the entry leaves the cache: it expires (its TTL is tracked here, so this works over Redis
 *   too) or a memory cache evicts it (wire `onEvicted` into `MemoryCache.layer`, see below);
 * - on `flush` (and every `flushInterval`, if set);
 * - all at once on `close`, or when the Layer's scope closes: the graceful-shutdown flush.
 *
 * Values a read-through path stores after loading them (`ReadThrough.filling`) are cached clean: the
 * store already has them. The dirty table holds the latest value of every dirty key until the store
 * has it, so an entry the cache has dropped is still read back (`get` falls back to it) and still
 * written. Deletes are written back too, at the next tick.
 *
 * Nothing acknowledged is forgotten silently:
 *
 * - a store failure that may pass (a connection error, a deadlock; see `isPermanent`) is retried on
 *   the `retry` schedule until the flush's deadline (`retryFor`, or what the caller gives `flushWithin`
 *   and `close`); what is still unwritten stays dirty for the next flush and is reported as `failed`;
 * - a batch the store refuses for good (a unique violation, a value the database rejects) is split in
 *   halves until the refused entries are isolated; each is tried once more after the rest of the flush
 *   (another entry may have freed its value), then moved to the dead-letter store (`DeadLetter`,
 *   default a SQLite file), removed from the cache, counted, and reported as `deadLettered`;
 * - dead letters are written again when the next process starts (`replayDeadLetters`);
 * - `close` writes everything with the time it is given, dead-letters what the store did not take,
 *   and fails with `WriteBackError` when anything written through this cache is not in the store: the
 *   program sees it (and exits non-zero). A scope closed without `close` does the same and dies.
 *
 * With `conflicts`, the cache follows the `ChangeFeed` (fed with every client's committed writes by
 * `ChangeStream.layerChangeFeed`) and never writes a pending entry over a row that changed in the
 * database after the entry became dirty: the entry is reported as `conflicted`, counted, logged by
 * key, moved to the dead-letter store (never replayed: an operator decides), and its value leaves the
 * cache so the next read loads the database's row. See docs/CachePatterns.md for the exact window.
 *
 * `indexes` keep the dirty values findable by a secondary key (`pendingBy`), so a uniqueness check
 * can see writes the store does not have yet; `withIndexLock` makes that check and the write one step
 * in this process.
 *
 * @example
 * class UserWriteBack extends WriteBack.Tag("app/UserWriteBack")<
 *   UserWriteBack,
 *   User,
 *   WriteThrough.EntityStoreError,
 *   "email"
 * >() {}
 * const CacheLive = MemoryCache.layer({ maxEntries: 10_000, onEvicted: WriteBack.onEvicted("users") })
 * const UsersLive = WriteBack.layer(UserCache, {
 *   store: WriteThrough.entityStore(User),
 *   name: "users",
 *   schema: User,
 *   indexes: { email: (u) => u.email },
 *   control: UserWriteBack
 * }).pipe(
 *   Layer.provide(Cache.layerSchema(UserCache, User)),
 *   Layer.provide(CacheLive),
 *   Layer.provide(WriteBack.layerEvictions),
 *   Layer.provide(DeadLetter.layerFile("/var/lib/app/dead-letters.sqlite"))
 * )
 * @since 0.1.0
 */
import {
  Cause,
  Clock,
  Context,
  Data,
  Duration,
  Effect,
  Either,
  FiberRef,
  Layer,
  Option,
  Queue,
  Schedule,
  Schema,
  type Scope
} from "effect"
import { type ChangeEvent, ChangeFeed } from "../Query/ChangeFeed.js"
import * as Cache from "./Cache.js"
import { CacheError } from "./CacheError.js"
import * as DeadLetter from "./DeadLetter.js"
import { ttlMillis } from "./internal/arguments.js"
import * as M from "./internal/patternMetrics.js"
import type { EvictionReason } from "./MemoryCache.js"
import * as ReadThrough from "./ReadThrough.js"
import type { Entry, Store } from "./WriteThrough.js"

/**
 * Entries the store did not take: the values to write and the keys to delete, with why.
 *
 * @since 0.1.0
 * @category models
 */
export interface Failure<A, E> {
  readonly writes: ReadonlyArray<Entry<A>>
  readonly deletes: ReadonlyArray<string>
  /**
   * The store's last error; a `Cause.TimeoutException` defect when the deadline passed before the
   * store answered at all; a `WriteConflict` defect when the row changed elsewhere (`conflicts`).
   */
  readonly cause: Cause.Cause<E>
  /** `true`: refused for good (`isPermanent`), so retrying the same entry cannot help. */
  readonly permanent: boolean
}

/**
 * What one flush did, by key.
 *
 * @since 0.1.0
 * @category models
 */
export interface FlushReport<A, E> {
  /** Keys whose values are now in the store. */
  readonly written: ReadonlyArray<string>
  /** Keys now deleted from the store. */
  readonly deleted: ReadonlyArray<string>
  /**
   * Not written before the deadline: still dirty (retried at the next flush). After `close`: neither
   * written nor dead-lettered (the dead-letter store failed too), so lost when the process exits.
   */
  readonly failed: ReadonlyArray<Failure<A, E>>
  /** Refused for good (or, on `close`, not written in time): now in the dead-letter store, no longer dirty. */
  readonly deadLettered: ReadonlyArray<Failure<A, E>>
  /**
   * Not written because the row changed in the database after the entry became dirty (`conflicts`):
   * now in the dead-letter store (left there by `replayDeadLetters`), no longer dirty nor cached. Their
   * cause is a `WriteConflict` defect. After `close`, also in `deadLettered`'s sense: not in the store.
   */
  readonly conflicted: ReadonlyArray<Failure<A, E>>
}

/**
 * The database row of `key` changed outside this cache after its pending value was written to the
 * cache: writing the value would overwrite the newer row.
 *
 * @since 0.1.0
 * @category errors
 */
export class WriteConflict extends Data.TaggedError("WriteConflict")<{
  readonly cache: string
  readonly key: string
}> {
  /** @since 0.1.0 */
  override get message(): string {
    return `${conflictPrefix} cache ${this.cache}: the row of "${this.key}" changed in the database after its pending write; not overwritten`
  }
}

/** How the dead letters of conflicts begin: `replayDeadLetters` leaves those in place. */
const conflictPrefix = "write conflict:"

/**
 * Following the database's changes so that a pending entry never overwrites a newer row (`Options.conflicts`).
 *
 * @since 0.1.0
 * @category models
 */
export interface Conflicts {
  /** The table the store writes (a `ChangeEvent`'s `table`). */
  readonly table: string
  /** The cache key of a changed row, from its primary key (entity field names). */
  readonly key: (primaryKey: Readonly<Record<string, unknown>>) => string
  /** Only events of this database (a session label); default: any. */
  readonly database?: string
  /**
   * How long after this cache's own store write of a key an event for that key is taken as the echo
   * of that write rather than a change from elsewhere (default 30 seconds; keep it above the change
   * stream's lag).
   */
  readonly echoFor?: Duration.DurationInput
}

/**
 * The keys of a report's failures.
 *
 * @since 0.1.0
 * @category getters
 */
export const keysOf = <A, E>(failures: ReadonlyArray<Failure<A, E>>): ReadonlyArray<string> =>
  failures.flatMap((f) => [...f.writes.map((w) => w.key), ...f.deletes])

/**
 * `close` could not put everything written through the cache into the store. `report` is the close
 * flush; `deadLettered` every key dead-lettered since the cache started (its values wait in the
 * dead-letter store); `lost` the keys neither written nor dead-lettered.
 *
 * @since 0.1.0
 * @category errors
 */
export class WriteBackError extends Data.TaggedError("WriteBackError")<{
  readonly cache: string
  readonly report: FlushReport<unknown, unknown>
  readonly deadLettered: ReadonlyArray<string>
  readonly lost: ReadonlyArray<string>
}> {
  /** @since 0.1.0 */
  override get message(): string {
    const show = (keys: ReadonlyArray<string>) =>
      keys.length > 20 ? `${keys.slice(0, 20).join(", ")} and ${keys.length - 20} more` : keys.join(", ")
    const parts = [
      this.lost.length > 0 ? `${this.lost.length} lost (${show(this.lost)})` : undefined,
      this.deadLettered.length > 0
        ? `${this.deadLettered.length} dead-lettered (${show(this.deadLettered)})`
        : undefined
    ].filter((p) => p !== undefined)
    return `write-back cache ${this.cache} closed with writes not in the store: ${parts.join("; ")}`
  }
}

/**
 * The pending change of a key: a value the store does not have yet, or a delete.
 *
 * @since 0.1.0
 * @category models
 */
export type Change<A> = { readonly op: "write"; readonly value: A } | { readonly op: "delete" }

/**
 * The control side of a write-back cache. `X` names its `indexes`.
 *
 * @since 0.1.0
 * @category models
 */
export interface WriteBack<A = unknown, E = unknown, X extends string = never> {
  /** Writes every dirty entry now, retrying what may pass until `retryFor` has passed. */
  readonly flush: Effect.Effect<FlushReport<A, E>>
  /** Writes every dirty entry now, retrying what may pass until `within` has passed. */
  readonly flushWithin: (within: Duration.DurationInput) => Effect.Effect<FlushReport<A, E>>
  /**
   * The last flush (default budget `closeWithin`): writes everything, dead-letters what the store did
   * not take, and from then on writes go straight to the store. Fails when anything written through
   * the cache since it started is not in the store.
   */
  readonly close: (within?: Duration.DurationInput) => Effect.Effect<FlushReport<A, E>, WriteBackError>
  /** How many entries are dirty. */
  readonly dirty: Effect.Effect<number>
  /** The change of `key` the store does not have yet, if any. */
  readonly pending: (key: string) => Effect.Effect<Option.Option<Change<A>>>
  /** The dirty values whose index `index` is `value` (pending deletes have no value, so none). */
  readonly pendingBy: (index: X, value: string) => Effect.Effect<ReadonlyArray<Entry<A>>>
  /**
   * Runs `effect` holding this process's lock of (`index`, `value`): a check (store and `pendingBy`)
   * and the `set` after it, both inside, cannot interleave with another for the same value.
   */
  readonly withIndexLock: <B, E2, R2>(
    index: X,
    value: string,
    effect: Effect.Effect<B, E2, R2>
  ) => Effect.Effect<B, E2, R2>
  /** Writes this cache's dead letters to the store again (within `retryFor`); removes those written. */
  readonly replayDeadLetters: Effect.Effect<FlushReport<A, E>, CacheError>
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
 * A tag of its own for a write-back control, typed with the value, the store's error and the index
 * names (give it to `layer` as `control`).
 *
 * @example
 * class UserWriteBack extends WriteBack.Tag("app/UserWriteBack")<UserWriteBack, User, Returning.WriteError, "email">() {}
 * @since 0.1.0
 * @category tags
 */
export const Tag =
  <const Id extends string>(id: Id) =>
  <Self, A, E = unknown, X extends string = never>(): Context.TagClass<Self, Id, WriteBack<A, E, X>> =>
    Context.Tag(id)<Self, WriteBack<A, E, X>>()

const permanentSqlReasons: ReadonlySet<unknown> = new Set(["unique", "foreign_key", "not_null", "syntax"])
const permanentTags: ReadonlySet<unknown> = new Set([
  "QueryBuildError",
  "InvalidEntityError",
  "UnknownFieldError",
  "UnsafeDmlError",
  "ParseError"
])

/**
 * The default test of a store error that retrying cannot fix: a `DatabaseError` for a unique, foreign-key
 * or not-null violation or a syntax error, and the errors of a value that cannot be turned into a
 * statement (`QueryBuildError`, `InvalidEntityError`, `UnknownFieldError`, `UnsafeDmlError`, a Schema
 * `ParseError`). Anything else (connection, deadlock, lock timeout, `other`) may pass and is retried.
 *
 * @since 0.1.0
 * @category predicates
 */
export const isPermanent = (error: unknown): boolean => {
  if (typeof error !== "object" || error === null || !("_tag" in error)) return false
  if (error._tag === "DatabaseError") return "reason" in error && permanentSqlReasons.has(error.reason)
  return permanentTags.has(error._tag)
}

/**
 * Options for `make` / `layer`.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options<A, E = never, R = never, X extends string = never, I = A> {
  readonly store: Store<A, E, R>
  /** The `cache` tag of its metrics, the name eviction notices are matched by, and its dead letters' name. */
  readonly name?: string
  /** The pause between attempts of a store call that failed (default: exponential from 50 ms, at most 1 s). */
  readonly retry?: Schedule.Schedule<unknown, E>
  /** How long `flush` and the background writer retry a failure that may pass (default 5 seconds). */
  readonly retryFor?: Duration.DurationInput
  /** How long `close` (and a scope closing without it) retries (default 20 seconds). */
  readonly closeWithin?: Duration.DurationInput
  /** Tells a store error that retrying cannot fix (default `isPermanent`). */
  readonly permanent?: (error: E) => boolean
  /** Entries per store call (default 500). */
  readonly batchSize?: number
  /** How often expired and evicted entries are written back (default 1 second). */
  readonly tick?: Duration.DurationInput
  /** If set, every dirty entry is written back this often as well. */
  readonly flushInterval?: Duration.DurationInput
  /** Told of every failure (kept dirty or dead-lettered), after it is logged and counted. */
  readonly onFailure?: (failure: Failure<A, E>) => Effect.Effect<void>
  /** The prefix eviction notices carry when the memory cache is shared through a prefixed view. */
  readonly evictionPrefix?: string
  /** Encodes values for the dead-letter store; without it values are kept as plain JSON. */
  readonly schema?: Schema.Schema<A, I>
  /** Secondary keys of dirty values, looked up with `pendingBy`. */
  readonly indexes?: { readonly [K in X]: (value: A) => string | undefined }
  /** Write this cache's dead letters again when it starts (default `true`). */
  readonly replay?: boolean
  /** Never overwrite a row changed outside the cache; needs a `ChangeFeed` in the context. */
  readonly conflicts?: Conflicts
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

/** `conflict`: the row changed in the database since the key became dirty (see `Options.conflicts`). */
type Dirty<A> =
  | {
      readonly op: "write"
      readonly value: A
      readonly version: number
      expiresAt: number
      due: boolean
      conflict: boolean
    }
  | { readonly op: "delete"; readonly version: number; due: boolean; conflict: boolean }

interface WriteItem<A> {
  readonly key: string
  readonly value: A
  readonly version: number
}

interface DeleteItem {
  readonly key: string
  readonly version: number
}

/** What a store call did to its items: taken, failed for now (as batches), refused for good (one by one). */
interface Outcome<T, E> {
  readonly done: ReadonlyArray<T>
  readonly failed: ReadonlyArray<readonly [ReadonlyArray<T>, Cause.Cause<E>]>
  readonly refused: ReadonlyArray<readonly [T, Cause.Cause<E>]>
}

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

const defaultRetry = Schedule.union(Schedule.exponential("50 millis"), Schedule.spaced("1 second"))

const lockStripes = 64

const stripeOf = (text: string) => {
  let hash = 0
  for (let i = 0; i < text.length; i++) hash = (Math.imul(hash, 31) + text.charCodeAt(i)) | 0
  return Math.abs(hash) % lockStripes
}

const describe = (cause: Cause.Cause<unknown>) => {
  const text = Cause.pretty(cause)
  return text.length > 2000 ? `${text.slice(0, 2000)}…` : text
}

const show = (keys: ReadonlyArray<string>) =>
  keys.length > 50 ? `${keys.slice(0, 50).join(", ")} and ${keys.length - 50} more` : keys.join(", ")

/**
 * Builds a write-back cache over `cache`: the decorated cache and its control. Closing the scope
 * without `close` runs `close` and dies with its `WriteBackError` if it fails.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = <A, E = never, R = never, X extends string = never, I = A>(
  cache: Cache.Cache<A>,
  options: Options<A, E, R, X, I>
): Effect.Effect<
  { readonly cache: Cache.Cache<A>; readonly control: WriteBack<A, E, X> },
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
    const retryFor = yield* durationMillis("retryFor", options.retryFor ?? "5 seconds")
    const closeWithin = yield* durationMillis("closeWithin", options.closeWithin ?? "20 seconds")
    const retry: Schedule.Schedule<unknown, E> = options.retry ?? defaultRetry
    const permanent = options.permanent ?? isPermanent
    const context = yield* Effect.context<R>()
    const store = options.store
    const prefix = options.evictionPrefix ?? ""
    const provided = yield* Effect.serviceOption(DeadLetter.DeadLetters)
    const letters = Option.isSome(provided)
      ? provided.value
      : yield* DeadLetter.makeFile(DeadLetter.defaultFile)
    const schema = options.schema
    const encodeValue = (value: A): Effect.Effect<string, unknown> =>
      schema === undefined
        ? Effect.try(() => {
            const text = JSON.stringify(value)
            if (text === undefined) throw new Error("the value has no JSON form")
            return text
          })
        : Effect.map(Schema.encode(schema)(value), (encoded) => JSON.stringify(encoded))
    const decodeValue = (text: string): Effect.Effect<A, unknown> => {
      const parsed = Effect.try(() => JSON.parse(text) as unknown)
      // Without a schema the value was plain JSON when it was written, and is read back as such.
      return schema === undefined
        ? Effect.map(parsed, (json) => json as A)
        : Effect.flatMap(parsed, Schema.decodeUnknown(schema))
    }

    const pending = new Map<string, Dirty<A>>()
    const indexes = Object.entries(options.indexes ?? {}) as Array<[X, (value: A) => string | undefined]>
    const byIndex = new Map<X, Map<string, Set<string>>>(indexes.map(([index]) => [index, new Map()]))
    const stripes = yield* Effect.forEach(Array.from({ length: lockStripes }), () => Effect.makeSemaphore(1))
    const counterStripes = yield* Effect.forEach(Array.from({ length: lockStripes }), () =>
      Effect.makeSemaphore(1)
    )
    let version = 0
    let closed = false
    /** Keys dead-lettered since this cache started and not superseded since: `close` fails while any is. */
    const buried = new Set<string>()
    /** Dead letters of this cache known to wait in the dead-letter store. */
    let waiting = 0
    const wake = yield* Queue.sliding<void>(1)
    const flushLock = yield* Effect.makeSemaphore(1)
    const gauge = Effect.sync(() => M.setDirty(name, pending.size))

    const indexEntry = (key: string, entry: Dirty<A> | undefined, add: boolean) => {
      if (entry?.op !== "write") return
      for (const [index, of] of indexes) {
        const value = of(entry.value)
        if (value === undefined) continue
        const byValue = byIndex.get(index)
        const keys = byValue?.get(value)
        if (add) {
          if (keys === undefined) byValue?.set(value, new Set([key]))
          else keys.add(key)
        } else if (keys !== undefined) {
          keys.delete(key)
          if (keys.size === 0) byValue?.delete(value)
        }
      }
    }
    const putDirty = (key: string, entry: Dirty<A>) => {
      const previous = pending.get(key)
      indexEntry(key, previous, false)
      // A conflict stays until the flush reports it: the newer value may rest on the stale one.
      entry.conflict = previous?.conflict ?? false
      pending.set(key, entry)
      indexEntry(key, entry, true)
    }
    const dropDirty = (key: string) => {
      indexEntry(key, pending.get(key), false)
      pending.delete(key)
    }

    /**
     * Conflict detection. Events are taken from the feed before a key becomes dirty and before a
     * flush picks its entries, so an event published before a key became dirty is never held
     * against it; one published while this cache's own write of the key runs, or within `echoFor`
     * after it, is taken as that write's echo.
     */
    const conflicts = options.conflicts
    const echoFor =
      conflicts === undefined
        ? 0
        : yield* durationMillis("conflicts.echoFor", conflicts.echoFor ?? "30 seconds")
    const feed = conflicts === undefined ? Option.none() : yield* Effect.serviceOption(ChangeFeed)
    if (conflicts !== undefined && Option.isNone(feed))
      return yield* invalid("conflicts needs a ChangeFeed in the context (ChangeFeed.layer)")
    const changes = Option.isSome(feed) ? yield* feed.value.subscribe : undefined
    /** Keys whose store write is running. */
    const inFlight = new Map<string, number>()
    /** When this cache's last store write of a key ended. */
    const ownWrites = new Map<string, number>()
    const absorb = (event: ChangeEvent, now: number) => {
      if (conflicts === undefined || (event.table !== conflicts.table && event.table !== "*")) return
      if (conflicts.database !== undefined && event.database !== conflicts.database) return
      // An unknown row may be any row: every dirty key is suspect.
      const keys =
        event.primaryKeys === undefined ? [...pending.keys()] : event.primaryKeys.map(conflicts.key)
      for (const key of keys) {
        const entry = pending.get(key)
        if (entry === undefined || entry.conflict || inFlight.has(key)) continue
        const own = ownWrites.get(key)
        if (own !== undefined && now - own <= echoFor) continue
        entry.conflict = true
      }
    }
    const drainChanges: Effect.Effect<void> =
      changes === undefined
        ? Effect.void
        : Effect.suspend(() =>
            Option.getOrElse(changes.unsafeSize(), () => 0) === 0
              ? Effect.void
              : Effect.flatMap(Queue.takeAll(changes), (events) =>
                  Effect.map(Clock.currentTimeMillis, (now) => {
                    for (const event of events) absorb(event, now)
                  })
                )
          )
    const startWrites = (keys: ReadonlyArray<string>) =>
      Effect.sync(() => {
        if (conflicts === undefined) return
        for (const key of keys) inFlight.set(key, (inFlight.get(key) ?? 0) + 1)
      })
    const endWrites = (keys: ReadonlyArray<string>) =>
      conflicts === undefined
        ? Effect.void
        : Effect.zipRight(
            drainChanges,
            Effect.map(Clock.currentTimeMillis, (now) => {
              for (const key of keys) {
                const n = (inFlight.get(key) ?? 1) - 1
                if (n === 0) inFlight.delete(key)
                else inFlight.set(key, n)
                ownWrites.set(key, now)
              }
            })
          )
    const forgetEchoes = Effect.map(Clock.currentTimeMillis, (now) => {
      for (const [key, at] of ownWrites) if (now - at > echoFor) ownWrites.delete(key)
    })

    /** Applies pending change events first when conflicts are followed; otherwise `effect` alone (the write path). */
    const afterChanges = <X>(effect: Effect.Effect<X>): Effect.Effect<X> =>
      changes === undefined ? effect : Effect.zipRight(drainChanges, effect)
    const markWrite = (key: string, value: A, ttl: Duration.DurationInput | undefined) =>
      afterChanges(
        Effect.flatMap(Clock.currentTimeMillis, (now) => {
          const ms = ttlMillis("set", key, ttl)
          const expiresAt =
            Either.isRight(ms) && ms.right !== undefined ? now + ms.right : Number.POSITIVE_INFINITY
          putDirty(key, { op: "write", value, version: ++version, expiresAt, due: false, conflict: false })
          return gauge
        })
      )
    const markDelete = (key: string) =>
      afterChanges(
        Effect.suspend(() => {
          putDirty(key, { op: "delete", version: ++version, due: true, conflict: false })
          return Effect.zipRight(gauge, Queue.offer(wake, undefined))
        })
      )

    const isRefusal = (cause: Cause.Cause<E>) =>
      Option.match(Cause.failureOption(cause), { onNone: () => false, onSome: permanent })

    /**
     * Runs a store call with the layer's context until it succeeds, is refused for good, or the
     * deadline passes (an attempt still running then is interrupted). The call is interruptible even
     * when `close` runs in an uninterruptible region (a finalizer, a shutdown hook): otherwise a store
     * that never answers would hold the close past its deadline.
     */
    const attempt = (call: Effect.Effect<void, E, R>, deadline: number): Effect.Effect<void, E> =>
      Effect.flatMap(Clock.currentTimeMillis, (now) => {
        let last: Cause.Cause<E> | undefined
        const tracked = Effect.tapErrorCause(call, (cause) =>
          Effect.sync(() => {
            last = cause
          })
        )
        return Effect.timeoutFailCause(
          Effect.interruptible(
            Effect.provide(Effect.retry(tracked, { schedule: retry, while: (e) => !permanent(e) }), context)
          ),
          {
            duration: Duration.millis(Math.max(0, deadline - now)),
            onTimeout: () =>
              last ?? Cause.die(new Cause.TimeoutException(`cache ${name}: the write-back deadline passed`))
          }
        )
      })

    /** Sends `items`; a batch refused for good is split until the refused entries are isolated. */
    const send = <T>(
      items: ReadonlyArray<T>,
      call: (items: ReadonlyArray<T>) => Effect.Effect<void, E, R>,
      deadline: number
    ): Effect.Effect<Outcome<T, E>> =>
      Effect.matchCauseEffect(attempt(call(items), deadline), {
        onSuccess: () => Effect.succeed({ done: items, failed: [], refused: [] }),
        onFailure: (cause) => {
          if (!isRefusal(cause))
            return Effect.succeed({ done: [], failed: [[items, cause] as const], refused: [] })
          if (items.length <= 1)
            return Effect.succeed({
              done: [],
              failed: [],
              refused: items.map((item) => [item, cause] as const)
            })
          const half = Math.ceil(items.length / 2)
          return Effect.map(
            Effect.all([send(items.slice(0, half), call, deadline), send(items.slice(half), call, deadline)]),
            ([a, b]) => ({
              done: [...a.done, ...b.done],
              failed: [...a.failed, ...b.failed],
              refused: [...a.refused, ...b.refused]
            })
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
      if (pending.get(key)?.version === written) dropDirty(key)
    }

    /** A store call, with its keys in flight meanwhile (their echoes are no conflicts). */
    const ownCall = (keys: ReadonlyArray<string>, call: Effect.Effect<void, E, R>) =>
      Effect.ensuring(Effect.zipRight(startWrites(keys), call), endWrites(keys))
    const writeCall = (items: ReadonlyArray<{ readonly key: string; readonly value: A }>) =>
      ownCall(
        items.map((i) => i.key),
        store.write(items.map(({ key, value }) => ({ key, value })))
      )
    const deleteCall = (items: ReadonlyArray<{ readonly key: string }>) => {
      const keys = items.map((d) => d.key)
      return ownCall(keys, store.delete(keys))
    }

    const writeFailure = (items: ReadonlyArray<WriteItem<A>>, cause: Cause.Cause<E>, refused: boolean) => ({
      writes: items.map(({ key, value }) => ({ key, value })),
      deletes: [],
      cause,
      permanent: refused
    })
    const deleteFailure = (items: ReadonlyArray<DeleteItem>, cause: Cause.Cause<E>, refused: boolean) => ({
      writes: [],
      deletes: items.map((d) => d.key),
      cause,
      permanent: refused
    })

    const report = (failure: Failure<A, E>, fate: "kept dirty" | "dead-lettered" | "lost") => {
      const keys = [...failure.writes.map((w) => w.key), ...failure.deletes]
      return Effect.logError(
        `cache ${name}: write-back of ${keys.length} entries failed (${failure.permanent ? "refused" : "not taken"}, ${fate}); keys: ${show(keys)}`,
        failure.cause
      ).pipe(
        Effect.zipRight(M.count(M.storeFailures, name, keys.length)),
        Effect.zipRight(options.onFailure?.(failure) ?? Effect.void)
      )
    }

    /**
     * Moves entries to the dead-letter store: once stored, an entry is no longer dirty (unless written
     * again meanwhile) and its refused value leaves the cache. What cannot be stored stays dirty.
     */
    const bury = (
      entries: ReadonlyArray<{ readonly item: WriteItem<A> | DeleteItem; readonly failure: Failure<A, E> }>,
      conflict = false
    ): Effect.Effect<{
      readonly buried: ReadonlyArray<Failure<A, E>>
      readonly kept: ReadonlyArray<Failure<A, E>>
    }> =>
      Effect.gen(function* () {
        if (entries.length === 0) return { buried: [], kept: [] }
        const now = yield* Clock.currentTimeMillis
        const encoded: Array<{
          readonly item: WriteItem<A> | DeleteItem
          readonly failure: Failure<A, E>
          readonly letter: DeadLetter.Letter
        }> = []
        const kept: Array<Failure<A, E>> = []
        for (const entry of entries) {
          // A conflict's letter is kept out of `close`'s count and out of replays: an operator decides.
          const error = conflict
            ? new WriteConflict({ cache: name, key: entry.item.key }).message
            : describe(entry.failure.cause)
          if (!("value" in entry.item)) {
            encoded.push({
              ...entry,
              letter: { cache: name, key: entry.item.key, op: "delete", error, at: now }
            })
            continue
          }
          const value = yield* Effect.either(encodeValue(entry.item.value))
          if (Either.isLeft(value)) {
            yield* Effect.logError(
              `cache ${name}: "${entry.item.key}" cannot be encoded for the dead-letter store`,
              value.left
            )
            kept.push(entry.failure)
          } else {
            encoded.push({
              ...entry,
              letter: { cache: name, key: entry.item.key, op: "write", value: value.right, error, at: now }
            })
          }
        }
        const stored = yield* Effect.either(letters.put(encoded.map((e) => e.letter)))
        if (Either.isLeft(stored)) {
          yield* Effect.logError(
            `cache ${name}: the dead-letter store failed; ${encoded.length} entries stay dirty: ${show(encoded.map((e) => e.item.key))}`,
            stored.left
          )
          return { buried: [], kept: [...kept, ...encoded.map((e) => e.failure)] }
        }
        for (const { item } of encoded) {
          if (!conflict) buried.add(item.key)
          if (pending.get(item.key)?.version !== item.version) continue
          dropDirty(item.key)
          yield* Effect.catchAll(Effect.asVoid(cache.delete(item.key)), (e) =>
            Effect.logWarning(
              `cache ${name}: removing the refused value of "${item.key}" from the cache failed`,
              e
            )
          )
        }
        waiting += encoded.length
        M.setDeadLetters(name, waiting)
        yield* M.count(conflict ? M.conflicts : M.deadLettered, name, encoded.length)
        return { buried: encoded.map((e) => e.failure), kept }
      })

    /**
     * A key dead-lettered earlier whose newer value (or delete) the store has now taken: its dead
     * letters are stale, and replaying them would write the old value over the new one. They go.
     */
    const supersede = (landed: ReadonlyArray<string>) =>
      Effect.suspend(() => {
        const keys = new Set(landed.filter((key) => buried.has(key)))
        if (keys.size === 0) return Effect.void
        return letters.list(name).pipe(
          Effect.flatMap((stored) => {
            const stale = stored.filter((l) => keys.has(l.key))
            return Effect.as(letters.remove(stale.map((l) => l.id)), stale.length)
          }),
          Effect.flatMap((removed) =>
            Effect.sync(() => {
              for (const key of keys) buried.delete(key)
              waiting = Math.max(0, waiting - removed)
              M.setDeadLetters(name, waiting)
            })
          ),
          Effect.catchAll((e) =>
            Effect.logError(
              `cache ${name}: removing the dead letters superseded by newer writes failed: ${show([...keys])}`,
              e
            )
          )
        )
      })

    /** Writes back the dirty entries `select` picks, batch by batch, until `deadline`. Run under `flushLock`. */
    const flushSelected = (
      select: (key: string, entry: Dirty<A>) => boolean,
      deadline: number
    ): Effect.Effect<FlushReport<A, E>> =>
      Effect.gen(function* () {
        yield* drainChanges
        yield* forgetEchoes
        const writes: Array<WriteItem<A>> = []
        const deletes: Array<DeleteItem> = []
        const clashes: Array<{ readonly item: WriteItem<A> | DeleteItem; readonly failure: Failure<A, E> }> =
          []
        for (const [key, entry] of pending) {
          if (!select(key, entry)) continue
          entry.due = false
          const item: WriteItem<A> | DeleteItem =
            entry.op === "write"
              ? { key, value: entry.value, version: entry.version }
              : { key, version: entry.version }
          if (entry.conflict) {
            const cause = Cause.die(new WriteConflict({ cache: name, key }))
            clashes.push({
              item,
              failure:
                "value" in item ? writeFailure([item], cause, true) : deleteFailure([item], cause, true)
            })
          } else if ("value" in item) writes.push(item)
          else deletes.push(item)
        }
        const settled = yield* bury(clashes, true)
        const conflicted = settled.buried
        if (conflicted.length > 0)
          yield* Effect.logWarning(
            `cache ${name}: ${conflicted.length} pending entries not written: their rows changed in the database since (dead-lettered, dropped from the cache); keys: ${show(keysOf(conflicted))}`
          )
        const failed: Array<Failure<A, E>> = []
        const written: Array<string> = []
        const deleted: Array<string> = []
        const refused: Array<{ readonly item: WriteItem<A> | DeleteItem; readonly cause: Cause.Cause<E> }> =
          []
        const keepDirty = (items: ReadonlyArray<WriteItem<A> | DeleteItem>) => {
          // No longer due by expiry: retried at the next flush, not at every tick.
          for (const item of items) {
            const entry = pending.get(item.key)
            if (entry?.op === "write" && entry.version === item.version)
              entry.expiresAt = Number.POSITIVE_INFINITY
          }
        }
        for (const batch of chunks(writes)) {
          const result = yield* send(batch, writeCall, deadline)
          for (const item of result.done) {
            settle(item.key, item.version)
            written.push(item.key)
          }
          for (const [items, cause] of result.failed) {
            keepDirty(items)
            failed.push(writeFailure(items, cause, false))
          }
          for (const [item, cause] of result.refused) refused.push({ item, cause })
        }
        for (const batch of chunks(deletes)) {
          const result = yield* send(batch, deleteCall, deadline)
          for (const item of result.done) {
            settle(item.key, item.version)
            deleted.push(item.key)
          }
          for (const [items, cause] of result.failed) failed.push(deleteFailure(items, cause, false))
          for (const [item, cause] of result.refused) refused.push({ item, cause })
        }
        // A second chance, after the rest: an entry written later in this flush may have freed a
        // unique value the refused one takes (a user's email moved to another user).
        const toBury: Array<{ readonly item: WriteItem<A> | DeleteItem; readonly failure: Failure<A, E> }> =
          []
        for (const { item, cause } of refused) {
          const isWrite = "value" in item
          const again =
            written.length + deleted.length === 0
              ? Effect.failCause(cause)
              : attempt(isWrite ? writeCall([item]) : deleteCall([item]), deadline)
          const exit = yield* Effect.exit(again)
          if (exit._tag === "Success") {
            settle(item.key, item.version)
            ;(isWrite ? written : deleted).push(item.key)
            continue
          }
          const failure = isWrite
            ? writeFailure([item], exit.cause, isRefusal(exit.cause))
            : deleteFailure([item], exit.cause, isRefusal(exit.cause))
          if (failure.permanent) toBury.push({ item, failure })
          else {
            keepDirty([item])
            failed.push(failure)
          }
        }
        const { buried: deadLettered, kept } = yield* bury(toBury)
        failed.push(...kept, ...settled.kept)
        yield* supersede([...written, ...deleted])
        yield* M.count(M.flushed, name, written.length + deleted.length)
        yield* gauge
        yield* Effect.forEach(failed, (f) => report(f, "kept dirty"), { discard: true })
        yield* Effect.forEach(deadLettered, (f) => report(f, "dead-lettered"), { discard: true })
        return { written, deleted, failed, deadLettered, conflicted }
      })

    const deadlineIn = (millis: number) => Effect.map(Clock.currentTimeMillis, (now) => now + millis)

    const flushWhere = (select: (key: string, entry: Dirty<A>) => boolean, millis: number) =>
      flushLock.withPermits(1)(
        Effect.flatMap(deadlineIn(millis), (deadline) => flushSelected(select, deadline))
      )

    /**
     * The flush nothing comes after (close, or a write after close): what the store did not take
     * by the deadline is dead-lettered too; `failed` is then what could not even be dead-lettered.
     */
    const flushFinal = (select: (key: string) => boolean, millis: number) =>
      flushLock.withPermits(1)(
        Effect.gen(function* () {
          const deadline = yield* deadlineIn(millis)
          let result = yield* flushSelected(select, deadline)
          // Writes made while it ran (after close they come straight here) are written too, in time left.
          for (;;) {
            const tried = new Set(keysOf(result.failed))
            const fresh = new Set([...pending.keys()].filter((key) => select(key) && !tried.has(key)))
            if (fresh.size === 0 || (yield* Clock.currentTimeMillis) >= deadline) break
            const more = yield* flushSelected((key) => fresh.has(key), deadline)
            result = {
              written: [...result.written, ...more.written],
              deleted: [...result.deleted, ...more.deleted],
              failed: [...result.failed, ...more.failed],
              deadLettered: [...result.deadLettered, ...more.deadLettered],
              conflicted: [...result.conflicted, ...more.conflicted]
            }
          }
          const causes = new Map<string, Failure<A, E>>()
          for (const failure of result.failed) for (const key of keysOf([failure])) causes.set(key, failure)
          const left: Array<{ readonly item: WriteItem<A> | DeleteItem; readonly failure: Failure<A, E> }> =
            []
          for (const [key, entry] of pending) {
            if (!select(key)) continue
            const item: WriteItem<A> | DeleteItem =
              entry.op === "write"
                ? { key, value: entry.value, version: entry.version }
                : { key, version: entry.version }
            const cause =
              causes.get(key)?.cause ??
              Cause.die(new Cause.TimeoutException(`cache ${name}: not written before close`))
            left.push({
              item,
              failure:
                "value" in item ? writeFailure([item], cause, false) : deleteFailure([item], cause, false)
            })
          }
          const { buried: late, kept } = yield* bury(left)
          yield* gauge
          yield* Effect.forEach(kept, (f) => report(f, "lost"), { discard: true })
          return { ...result, failed: kept, deadLettered: [...result.deadLettered, ...late] }
        })
      )

    const close = (within?: Duration.DurationInput): Effect.Effect<FlushReport<A, E>, WriteBackError> =>
      Effect.gen(function* () {
        const millis =
          within === undefined ? closeWithin : yield* durationMillis("close", within).pipe(Effect.orDie)
        closed = true
        const result = yield* flushFinal(() => true, millis)
        yield* Effect.logInfo(
          `cache ${name}: write-back on close wrote ${result.written.length}, deleted ${result.deleted.length}, ` +
            `dead-lettered ${keysOf(result.deadLettered).length}, lost ${keysOf(result.failed).length}`
        )
        const lost = keysOf(result.failed)
        if (lost.length === 0 && buried.size === 0) return result
        return yield* new WriteBackError({ cache: name, report: result, deadLettered: [...buried], lost })
      })

    const replayDeadLetters: Effect.Effect<FlushReport<A, E>, CacheError> = flushLock.withPermits(1)(
      Effect.gen(function* () {
        const stored = yield* letters.list(name)
        const latest = new Map<string, DeadLetter.StoredLetter>()
        const superseded: Array<number> = []
        for (const letter of stored) {
          const older = latest.get(letter.key)
          if (older !== undefined) superseded.push(older.id)
          latest.set(letter.key, letter)
        }
        const writes: Array<{ readonly key: string; readonly value: A; readonly id: number }> = []
        const deletes: Array<{ readonly key: string; readonly id: number }> = []
        let undecodable = 0
        for (const [key, letter] of latest) {
          // A conflict's value would overwrite a newer row: it waits for an operator.
          if (letter.error.startsWith(conflictPrefix)) continue
          // Written again since: the newer value wins, the letter is done with.
          if (pending.has(key)) {
            superseded.push(letter.id)
            continue
          }
          if (letter.op === "delete") {
            deletes.push({ key, id: letter.id })
            continue
          }
          const value = yield* Effect.either(decodeValue(letter.value ?? "null"))
          if (Either.isLeft(value)) {
            undecodable++
            yield* Effect.logError(
              `cache ${name}: dead letter of "${key}" no longer decodes; left in place`,
              value.left
            )
          } else writes.push({ key, value: value.right, id: letter.id })
        }
        const deadline = yield* deadlineIn(retryFor)
        const w = yield* Effect.flatMap(Effect.succeed(chunks(writes)), (batches) =>
          Effect.forEach(batches, (batch) => send(batch, writeCall, deadline))
        )
        const d = yield* Effect.forEach(chunks(deletes), (batch) => send(batch, deleteCall, deadline))
        const doneW = w.flatMap((r) => r.done)
        const doneD = d.flatMap((r) => r.done)
        yield* letters.remove([...superseded, ...doneW.map((x) => x.id), ...doneD.map((x) => x.id)])
        for (const { key } of [...doneW, ...doneD]) buried.delete(key)
        const toFailure =
          (fails: boolean) =>
          (
            items: ReadonlyArray<{ readonly key: string; readonly value?: A }>,
            cause: Cause.Cause<E>
          ): Failure<A, E> => ({
            writes: items.flatMap((i) =>
              "value" in i && i.value !== undefined ? [{ key: i.key, value: i.value }] : []
            ),
            deletes: items.flatMap((i) => ("value" in i ? [] : [i.key])),
            cause,
            permanent: fails
          })
        const failed = [...w, ...d].flatMap((r) =>
          r.failed.map(([items, cause]) => toFailure(false)(items, cause))
        )
        const refusedAgain = [...w, ...d].flatMap((r) =>
          r.refused.map(([item, cause]) => toFailure(true)([item], cause))
        )
        waiting = stored.length - superseded.length - doneW.length - doneD.length
        M.setDeadLetters(name, waiting)
        if (doneW.length + doneD.length > 0)
          yield* Effect.logInfo(
            `cache ${name}: ${doneW.length + doneD.length} dead letters written to the store: ${show([...doneW, ...doneD].map((x) => x.key))}`
          )
        if (failed.length + refusedAgain.length + undecodable > 0)
          yield* Effect.logError(
            `cache ${name}: ${keysOf([...failed, ...refusedAgain]).length + undecodable} dead letters are still not in the store: ${show(keysOf([...failed, ...refusedAgain]))}`
          )
        return {
          written: doneW.map((x) => x.key),
          deleted: doneD.map((x) => x.key),
          failed,
          deadLettered: refusedAgain,
          conflicted: []
        }
      })
    )

    const flushDue = Effect.flatMap(Clock.currentTimeMillis, (now) =>
      flushWhere((_, entry) => entry.due || (entry.op === "write" && entry.expiresAt <= now), retryFor)
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
      closed
        ? Effect.void
        : Effect.catchAll(close(), (error) =>
            Effect.zipRight(
              Effect.logError(`cache ${name}: closed by its scope without close: ${error.message}`),
              Effect.die(error)
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
              flushWhere(() => true, retryFor)
            )
          )
        )
      )
    }
    if (options.replay !== false) {
      yield* Effect.forkScoped(
        Effect.catchAll(Effect.asVoid(replayDeadLetters), (e) =>
          Effect.logError(`cache ${name}: reading the dead letters failed`, e)
        )
      )
    }

    /** After close there is no writer: a write goes straight to the store, or to the dead letters. */
    const direct = (key: string, record: Effect.Effect<void>) =>
      Effect.zipRight(
        record,
        Effect.flatMap(
          flushFinal((k) => k === key, retryFor),
          (result) =>
            result.written.length + result.deleted.length > 0
              ? Effect.logWarning(`cache ${name}: written to the store directly after close: "${key}"`)
              : Effect.void
        )
      )

    const deleteAndMark = (key: string) =>
      Effect.flatMap(cache.delete(key), (found) =>
        Effect.suspend(() => {
          const entry = pending.get(key)
          const previous = Option.isSome(found) || entry?.op !== "write" ? found : Option.some(entry.value)
          return Effect.as(closed ? direct(key, markDelete(key)) : markDelete(key), previous)
        })
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
              closed ? direct(key, markWrite(key, value, ttl)) : markWrite(key, value, ttl)
            )
          )
        }),
      delete: (key) =>
        Effect.flatMap(FiberRef.get(ReadThrough.filling), (fill) =>
          // A read path dropping its copy (an invalidation) deletes nothing in the store, and a
          // pending write stays pending: reads fall back to it.
          fill ? cache.delete(key) : deleteAndMark(key)
        ),
      has: (key) => Effect.map(cache.has(key), (has) => has || pending.get(key)?.op === "write"),
      loadOrStore: (key, value, ttl) =>
        Effect.suspend(() => {
          const entry = pending.get(key)
          if (entry?.op === "write") return Effect.succeed({ value: entry.value, loaded: true })
          return Effect.tap(cache.loadOrStore(key, value, ttl), (result) =>
            result.loaded
              ? Effect.void
              : Effect.suspend(() =>
                  closed ? direct(key, markWrite(key, value, ttl)) : markWrite(key, value, ttl)
                )
          )
        }),
      // One increment of a key at a time in this process, so the dirty value is the latest count.
      incrBy: (key, by) =>
        Effect.suspend(() => {
          const stripe = counterStripes[stripeOf(key)]
          const step = Effect.suspend(() => {
            const entry = pending.get(key)
            const before = entry?.op === "write" && typeof entry.value === "number" ? entry.value : undefined
            return Effect.flatMap(cache.incrBy(key, by), (n) =>
              // The cache lost the dirty count (expired, evicted, Redis restarted): add it back.
              before !== undefined && before !== 0 && n === by ? cache.incrBy(key, before) : Effect.succeed(n)
            ).pipe(
              Effect.tap(() =>
                Effect.flatMap(cache.get(key), (now) =>
                  Option.isNone(now)
                    ? Effect.void
                    : closed
                      ? direct(key, markWrite(key, now.value, undefined))
                      : markWrite(key, now.value, undefined)
                )
              )
            )
          })
          return stripe === undefined ? step : stripe.withPermits(1)(step)
        })
    }

    const control: WriteBack<A, E, X> = {
      flush: Effect.suspend(() => flushWhere(() => true, retryFor)),
      flushWithin: (within) =>
        Effect.flatMap(Effect.orDie(durationMillis("flushWithin", within)), (millis) =>
          flushWhere(() => true, millis)
        ),
      close,
      dirty: Effect.sync(() => pending.size),
      pending: (key) =>
        Effect.sync(() => {
          const entry = pending.get(key)
          if (entry === undefined) return Option.none()
          return Option.some(entry.op === "write" ? { op: "write", value: entry.value } : { op: "delete" })
        }),
      pendingBy: (index, value) =>
        Effect.sync(() => {
          const keys = byIndex.get(index)?.get(value) ?? new Set<string>()
          return [...keys].flatMap((key) => {
            const entry = pending.get(key)
            return entry?.op === "write" ? [{ key, value: entry.value }] : []
          })
        }),
      withIndexLock: (index, value, effect) =>
        Effect.suspend(() => {
          const stripe = stripes[stripeOf(`${index}\u0000${value}`)]
          return stripe === undefined ? effect : stripe.withPermits(1)(effect)
        }),
      replayDeadLetters
    }
    return { cache: Cache.make(primitives), control }
  })

/**
 * Decorates the cache under `tag` with write-back to `options.store`, and provides its control as
 * `WriteBack` (and under `options.control`, typed, if given). The store's requirements are taken from
 * the Layer's context (its writes run in the background, not in a caller's fiber). Dead letters go to
 * the `DeadLetters` in the context, or to `DeadLetter.defaultFile`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = <Id, A, E, R, X extends string = never, I = A, C = never>(
  tag: Context.Tag<Id, Cache.Cache<A>>,
  options: Options<A, E, R, X, I> & { readonly control?: Context.Tag<C, WriteBack<A, E, X>> }
): Layer.Layer<Id | WriteBack | C, CacheError, Id | R> =>
  Layer.scopedContext(
    Effect.flatMap(tag, (inner) =>
      Effect.map(make(inner, { ...options, name: options.name ?? tag.key }), ({ cache, control }) => {
        const base = Context.make(tag, cache).pipe(Context.add(WriteBack, control))
        // Without `control`, C is `never` (its default): the context is complete as it is.
        return options.control === undefined
          ? (base as Context.Context<Id | WriteBack | C>)
          : Context.add(base, options.control, control)
      })
    )
  )
