/**
 * Write-through: a write goes to the store (the database) and to the cache. The store is an
 * abstraction (`Store`: write entries, delete keys), so any source can sit behind the cache;
 * `entityStore` writes entities through the query builders.
 *
 * - `order`: `storeFirst` (default) writes the store, then the cache; `cacheFirst` the other way.
 * - `mode`: `sync` (default) returns once both are written; `async` hands the whole write to the
 *   cache's `TaskPool` and returns at once (waiting only while the pool is full); its failures are
 *   logged and counted.
 *
 * A failed store leaves the cache as it was: with `storeFirst` the cache is not touched; with
 * `cacheFirst` the previous value is put back (with the write's TTL), or the key removed if it had
 * none. When the cache write fails after a good store, the write is durable, so it succeeds; the
 * failure is counted and the key is removed from the cache so no stale value stays behind.
 *
 * @since 0.1.0
 */
import { Context, type Duration, Effect, Layer, Option } from "effect"
import type * as Scope from "effect/Scope"
import * as TaskPool from "../Concurrency/TaskPool.js"
import * as Delete from "../Query/Delete.js"
import { Executor } from "../Query/Executor.js"
import * as Expr from "../Query/Expr.js"
import * as Insert from "../Query/Insert.js"
import { type DecodeError, QueryBuildError } from "../Query/QueryError.js"
import type { WriteError } from "../Query/Returning.js"
import * as Select from "../Query/Select.js"
import * as Update from "../Query/Update.js"
import type { InvalidEntityError } from "../Schema/EntityError.js"
import type { EntitySchema } from "../Schema/EntityModel.js"
import type * as Cache from "./Cache.js"
import { CacheError, type CacheFullError } from "./CacheError.js"
import * as M from "./internal/patternMetrics.js"

/**
 * One value to write under its key.
 *
 * @since 0.1.0
 * @category models
 */
export interface Entry<A> {
  readonly key: string
  readonly value: A
}

/**
 * Where written values end up (the database). Both operations take batches, so a write-back flush
 * can send many entries in one statement.
 *
 * @since 0.1.0
 * @category models
 */
export interface Store<A, E = never, R = never> {
  readonly write: (entries: ReadonlyArray<Entry<A>>) => Effect.Effect<void, E, R>
  readonly delete: (keys: ReadonlyArray<string>) => Effect.Effect<void, E, R>
}

/**
 * Options for `make` / `layer`.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options<A, E = never, R = never> {
  readonly store: Store<A, E, R>
  /** Default `storeFirst`. */
  readonly order?: "storeFirst" | "cacheFirst"
  /** Default `sync`. */
  readonly mode?: "sync" | "async"
  /** TTL of cached values when `set` is given none; none: they never expire. */
  readonly ttl?: Duration.DurationInput
  /** The `cache` tag of its metrics (the layer defaults it to the tag's key). */
  readonly name?: string
  /** The pool of `async` mode (default 4 workers, 1,024 queued writes). */
  readonly background?: { readonly concurrency: number; readonly capacity: number }
}

/**
 * A write-through cache.
 *
 * @since 0.1.0
 * @category models
 */
export interface WriteThrough<A, E = never, R = never> {
  /** Writes `value` to the store and the cache. */
  readonly set: (
    key: string,
    value: A,
    ttl?: Duration.DurationInput
  ) => Effect.Effect<void, E | CacheError | CacheFullError, R>
  /** Deletes `key` from the store and the cache. */
  readonly delete: (key: string) => Effect.Effect<void, E | CacheError, R>
  /** Reads the cache (a miss is the caller's to load). */
  readonly get: (key: string) => Effect.Effect<Option.Option<A>, CacheError>
  readonly cache: Cache.Cache<A>
}

/**
 * A Tag class for one write-through cache.
 *
 * @since 0.1.0
 * @category tags
 */
export const Tag =
  <const Id extends string>(id: Id) =>
  <Self, A, E = never, R = never>(): Context.TagClass<Self, Id, WriteThrough<A, E, R>> =>
    Context.Tag(id)<Self, WriteThrough<A, E, R>>()

/**
 * Builds a write-through cache over `cache`; in `async` mode, closing the scope waits for the
 * writes already handed over.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = <A, E = never, R = never>(
  cache: Cache.Cache<A>,
  options: Options<A, E, R>
): Effect.Effect<WriteThrough<A, E, R>, CacheError, Scope.Scope> =>
  Effect.gen(function* () {
    const name = options.name ?? "cache"
    const { store } = options
    const storeFirst = (options.order ?? "storeFirst") === "storeFirst"
    const pool =
      options.mode === "async"
        ? yield* Effect.mapError(
            TaskPool.make(options.background ?? { concurrency: 4, capacity: 1024 }),
            (e) =>
              new CacheError({
                reason: "invalid_argument",
                operation: "WriteThrough.make",
                detail: `background: ${e.message}`
              })
          )
        : undefined

    /** After a durable store: a failed cache write must not leave the old value cached. */
    const cacheAfterStore = (key: string, write: Effect.Effect<unknown, CacheError | CacheFullError>) =>
      Effect.catchAll(write, (e) =>
        Effect.zipRight(
          M.reportStoreFailure(name, key, e),
          Effect.catchAll(Effect.asVoid(cache.delete(key)), (again) =>
            Effect.logError(`cache ${name}: "${key}" may be stale, removing it failed too`, again)
          )
        )
      )

    /** Puts back what the cache held before a write whose store then failed. */
    const restore = (key: string, previous: Option.Option<A>, ttl: Duration.DurationInput | undefined) =>
      Effect.catchAll(
        Option.isSome(previous) ? cache.set(key, previous.value, ttl) : Effect.asVoid(cache.delete(key)),
        (e) => Effect.logError(`cache ${name}: restoring "${key}" after a failed store failed`, e)
      )

    const countFailure = <X>(effect: Effect.Effect<X, E, R>) =>
      Effect.tapError(effect, () => M.count(M.storeFailures, name))

    const setNow = (key: string, value: A, ttl: Duration.DurationInput | undefined) =>
      storeFirst
        ? Effect.zipRight(
            countFailure(store.write([{ key, value }])),
            cacheAfterStore(key, cache.set(key, value, ttl))
          )
        : Effect.flatMap(cache.get(key), (previous) =>
            Effect.zipRight(
              cache.set(key, value, ttl),
              Effect.tapError(countFailure(store.write([{ key, value }])), () => restore(key, previous, ttl))
            )
          )

    const deleteNow = (key: string) =>
      storeFirst
        ? Effect.zipRight(countFailure(store.delete([key])), cacheAfterStore(key, cache.delete(key)))
        : Effect.flatMap(cache.delete(key), (previous) =>
            Effect.tapError(countFailure(store.delete([key])), () => restore(key, previous, options.ttl))
          )

    /** In async mode the write runs on the pool; once the pool is closed it runs inline. */
    const run = <X, E2>(key: string, write: Effect.Effect<X, E2, R>): Effect.Effect<void, E2, R> =>
      pool === undefined
        ? Effect.asVoid(write)
        : Effect.catchTag(
            pool.submit(
              Effect.catchAllCause(Effect.asVoid(write), (cause) =>
                Effect.logWarning(`cache ${name}: background write of "${key}" failed`, cause)
              )
            ),
            "TaskPoolClosedError",
            () => write
          ).pipe(Effect.asVoid)

    const service: WriteThrough<A, E, R> = {
      set: (key, value, ttl) => run(key, setNow(key, value, ttl ?? options.ttl)),
      delete: (key) => run(key, deleteNow(key)),
      get: cache.get,
      cache
    }
    return service
  })

/**
 * Provides a write-through cache under `tag`, over the cache under `cacheTag`.
 *
 * @example
 * const UserWritesLive = WriteThrough.layer(UserWrites, UserCache, { store: WriteThrough.entityStore(User) })
 * @since 0.1.0
 * @category layers
 */
export const layer = <I, A, E, R, CI>(
  tag: Context.Tag<I, WriteThrough<A, E, R>>,
  cacheTag: Context.Tag<CI, Cache.Cache<A>>,
  options: Options<A, E, R>
): Layer.Layer<I, CacheError, CI> =>
  Layer.scoped(
    tag,
    Effect.flatMap(cacheTag, (cache) => make(cache, { ...options, name: options.name ?? tag.key }))
  )

/**
 * What an `entityStore` call can fail with.
 *
 * @since 0.1.0
 * @category stores
 */
export type EntityStoreError = WriteError | InvalidEntityError | DecodeError

/**
 * A `Store` that writes entities through the query builders: `write` upserts the values and `delete`
 * deletes by primary key (`DELETE ... WHERE pk IN (...)`). On PostgreSQL and SQLite an upsert is one
 * `INSERT ... ON CONFLICT (pk) DO UPDATE` per batch (split by the builder past the dialect's parameter
 * limit). MySQL/MariaDB's `ON DUPLICATE KEY UPDATE` fires on *any* unique key: a new row whose email
 * another row holds would update that row and be dropped without an error. So there a batch reads
 * which primary keys exist, INSERTs the new rows (a unique violation is an error) and UPDATEs the
 * others by primary key, one statement each; a batch that fails half-way is safe to send again. The entity needs a single-field primary key; `id` turns a cache
 * key back into its value (default: the number the key spells, else the key itself). Writes go
 * through the Executor, so middleware (ChangeCapture included) sees them.
 *
 * @example
 * const store = WriteThrough.entityStore(User)
 * @since 0.1.0
 * @category stores
 */
export const entityStore = <A, I>(
  schema: EntitySchema<A, I>,
  options: { readonly id?: (key: string) => string | number | bigint } = {}
): Store<A, EntityStoreError, Executor> => {
  const id = options.id ?? ((key: string) => (/^-?\d+$/.test(key) ? Number(key) : key))
  const primaryKey = Effect.flatMap(Executor, (ex) =>
    Effect.flatMap(ex.session.registry.get(schema), (model) => {
      const [pk, ...rest] = model.primaryKey
      return pk === undefined || rest.length > 0
        ? Effect.fail(
            new QueryBuildError({
              reason: `entityStore needs a single-field primary key; ${model.name} has ${model.primaryKey.length}`
            })
          )
        : Effect.succeed(pk.field)
    })
  )
  /** MySQL/MariaDB: INSERT what is new, UPDATE what exists, each by its primary key only. */
  const writeByKey = (field: string, entries: ReadonlyArray<Entry<A>>) =>
    Effect.gen(function* () {
      const pk = field as keyof A & string
      const column = Expr.column<string | number | bigint>(field)
      const found = yield* Select.from(schema)
        .columns(pk)
        .where(column.in(entries.map((e) => id(e.key))))
        .getMulti()
      const existing = new Set(found.map((row) => String(row[pk])))
      const fresh = entries.filter((e) => !existing.has(String(id(e.key))))
      if (fresh.length > 0)
        yield* Insert.into(schema)
          .values(fresh.map((e) => e.value))
          .exec()
      yield* Effect.forEach(
        entries.filter((e) => existing.has(String(id(e.key)))),
        (e) =>
          Update.table(schema)
            .setPartial(e.value)
            .where(column.eq(id(e.key)))
            .exec(),
        { discard: true }
      )
    })
  return {
    write: (entries) =>
      entries.length === 0
        ? Effect.void
        : Effect.flatMap(Executor, (ex) =>
            ex.session.dialect.name === "mysql"
              ? Effect.flatMap(primaryKey, (field) => writeByKey(field, entries))
              : Effect.asVoid(
                  Insert.into(schema)
                    .values(entries.map((e) => e.value))
                    .onConflictDoUpdate()
                    .exec()
                )
          ),
    delete: (keys) =>
      keys.length === 0
        ? Effect.void
        : Effect.flatMap(primaryKey, (field) =>
            Effect.asVoid(
              Delete.from(schema)
                .where(Expr.column<string | number | bigint>(field).in(keys.map(id)))
                .exec()
            )
          )
  }
}
