/**
 * The query cache: a middleware that answers a SELECT from a cache, under a hash of its SQL, its
 * parameters and the current generation of every table it reads (Drizzle's design, with
 * generations instead of key sets). A write to a table bumps that table's generation, so every
 * cached result that read it is never looked up again (it expires by its TTL).
 *
 * - Invalidations come from the `ChangeFeed` (install `ChangeCapture`): every query drains the events
 *   pending before it reads generations, so the query after a write (after its commit, inside a
 *   transaction) already misses, in this fiber and in every other. A raw write whose table is unknown
 *   publishes no event; passing through this middleware, it invalidates the whole database.
 * - Generations live in the backing cache itself (with a random start, so a generation the cache
 *   evicted never comes back to an old value): processes sharing a Redis share invalidations.
 * - Bypassed inside a transaction (it may read its own uncommitted writes), for RAW statements, and
 *   for SELECTs holding raw SQL fragments (the tables they read are unknown).
 * - A cache that fails is a miss (logged): the query still runs.
 *
 * Rows are stored in a self-describing encoding (dates, bigints, bytes and JSON values survive a
 * Redis round trip), so any `Cache` can back it.
 *
 * @since 0.1.0
 */
import { createHash } from "node:crypto"
import {
  type Context,
  type Duration,
  Effect,
  FiberRef,
  Layer,
  Option,
  Queue,
  Random,
  type Schema,
  type Scope
} from "effect"
import { type ChangeEvent, ChangeFeed } from "../Query/ChangeFeed.js"
import * as Executor from "../Query/Executor.js"
import type { QueryError } from "../Query/QueryError.js"
import type * as Cache from "./Cache.js"
import type { CacheError, CacheFullError } from "./CacheError.js"
import * as M from "./internal/patternMetrics.js"

/**
 * Options for `make` / `layer`.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** How long a result is kept (default 1 minute). */
  readonly ttl?: Duration.DurationInput
  /** The `cache` tag of its metrics (default `query`). */
  readonly name?: string
  /** Prepended to every key it writes (default `effect-dal:query:`). */
  readonly keyPrefix?: string
  /** Which SELECTs are cached (default: all). */
  readonly cacheable?: (ctx: Executor.QueryContext) => boolean
  /** How often change events are applied when no query comes to apply them (default 1 second). */
  readonly drainInterval?: Duration.DurationInput
}

type Encoded = string | number | boolean | null | readonly [string, unknown]

const encodeValue = (value: unknown): Encoded => {
  if (value === null || value === undefined) return null
  switch (typeof value) {
    case "string":
    case "number":
    case "boolean":
      return value
    case "bigint":
      return ["n", value.toString()]
    default:
      if (value instanceof Date) return ["d", value.toISOString()]
      if (value instanceof Uint8Array) return ["b", Buffer.from(value).toString("base64")]
      return ["j", value]
  }
}

const decodeValue = (value: unknown): unknown => {
  if (!Array.isArray(value)) return value
  const [tag, payload] = value as [string, unknown]
  switch (tag) {
    case "n":
      return BigInt(String(payload))
    case "d":
      return new Date(String(payload))
    case "b":
      return Buffer.from(String(payload), "base64")
    default:
      return payload
  }
}

/** Rows as `{ c: columns, r: rows of encoded values }`: compact, and JSON-safe for any backend. */
const encodeRows = (rows: ReadonlyArray<Executor.Row>) => {
  const first = rows[0]
  const columns = first === undefined ? [] : Object.keys(first)
  return { c: columns, r: rows.map((row) => columns.map((c) => encodeValue(row[c]))) }
}

const decodeRows = (stored: unknown): Option.Option<ReadonlyArray<Executor.Row>> => {
  if (typeof stored !== "object" || stored === null || !("c" in stored) || !("r" in stored))
    return Option.none()
  const { c, r } = stored
  if (!Array.isArray(c) || !Array.isArray(r)) return Option.none()
  return Option.some(
    r.map((values: ReadonlyArray<unknown>) =>
      Object.fromEntries(c.map((column: string, i: number) => [column, decodeValue(values[i])]))
    )
  )
}

const isNode = (u: unknown): u is { readonly _tag: string } =>
  typeof u === "object" && u !== null && "_tag" in u && typeof u._tag === "string"

/**
 * The tables a SELECT reads: every table source in its node tree (FROM, joins, derived tables,
 * subqueries); `undefined` when a raw SQL fragment makes that unknowable.
 */
const tablesOf = (ctx: Executor.QueryContext): ReadonlyArray<string> | undefined => {
  const tables = new Set<string>([ctx.table])
  let unknown = false
  const visit = (u: unknown): void => {
    if (unknown || typeof u !== "object" || u === null) return
    if (Array.isArray(u)) {
      for (const item of u) visit(item)
      return
    }
    if (isNode(u)) {
      if (u._tag === "Raw") {
        unknown = true
        return
      }
      if (u._tag === "Value") return
      if (u._tag === "Table" && "schema" in u) {
        const model = ctx.session.registry.get(u.schema as Schema.Schema.AnyNoContext)
        if (model._tag === "Left") unknown = true
        else tables.add(model.right.table)
        return
      }
    } else if (Object.getPrototypeOf(u) !== Object.prototype) {
      return
    }
    for (const [key, value] of Object.entries(u)) if (key !== "schema" && key !== "shape") visit(value)
  }
  visit(ctx.description)
  return unknown ? undefined : [...tables].sort()
}

/**
 * The query cache middleware over `cache`, subscribed to the `ChangeFeed` for the life of the scope.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  cache: Cache.Cache,
  options: Options = {}
): Effect.Effect<Executor.Middleware, never, ChangeFeed | Scope.Scope> =>
  Effect.gen(function* () {
    const name = options.name ?? "query"
    const prefix = options.keyPrefix ?? "effect-dal:query:"
    const ttl = options.ttl ?? "1 minute"
    const cacheable = options.cacheable ?? (() => true)
    const drainInterval = options.drainInterval ?? "1 second"
    const genKey = (database: string, table: string) => `${prefix}gen:${database}:${table}`

    const failOpen =
      <B>(fallback: B, what: string) =>
      (e: CacheError | CacheFullError) =>
        Effect.as(
          Effect.logWarning(`query cache ${name}: ${what} failed, going to the database`, e),
          fallback
        )

    /** The generation of a table; a missing one starts at a random value (see the module doc). */
    const generation = (database: string, table: string) =>
      Effect.flatMap(cache.get(genKey(database, table)), (found) =>
        Option.isSome(found)
          ? Effect.succeed(found.value)
          : Effect.flatMap(Random.nextIntBetween(1, 2 ** 31), (start) =>
              Effect.map(cache.loadOrStore(genKey(database, table), start), (r) => r.value)
            )
      )
    const bump = (database: string, table: string) =>
      Effect.zipRight(
        Effect.asVoid(generation(database, table)),
        cache.incrBy(genKey(database, table), 1)
      ).pipe(
        Effect.zipRight(M.count(M.invalidations, name)),
        Effect.catchAll((e) => Effect.logError(`query cache ${name}: invalidating ${table} failed`, e))
      )

    // Events are drained, never awaited: a reader takes what is pending before it reads generations,
    // so a write's event is applied by the next query, in whichever fiber runs it (no consumer fiber
    // to race with); a background drain bounds the queue when no query comes.
    const events = yield* Effect.flatMap(ChangeFeed, (feed) => feed.subscribe)
    const drain = Effect.suspend(() =>
      Option.getOrElse(events.unsafeSize(), () => 0) > 0
        ? Effect.flatMap(Queue.takeAll(events), (taken) =>
            Effect.forEach(taken, (event: ChangeEvent) => bump(event.database, event.table), {
              discard: true
            })
          )
        : Effect.void
    )
    yield* Effect.forkScoped(Effect.forever(Effect.zipRight(Effect.sleep(drainInterval), drain)))

    const read =
      (next: Executor.Handler) =>
      (
        ctx: Executor.QueryContext,
        tables: ReadonlyArray<string>
      ): Effect.Effect<Executor.QueryResult, QueryError> => {
        const database = ctx.session.label
        return Effect.flatMap(
          Effect.catchAll(
            Effect.forEach(["*", ...tables], (table) => generation(database, table)),
            failOpen(undefined, "reading generations")
          ),
          (gens) => {
            if (gens === undefined) return next(ctx)
            const key =
              prefix +
              createHash("sha256")
                .update(
                  JSON.stringify([
                    database,
                    ctx.statement.sql,
                    ctx.statement.params.map(encodeValue),
                    tables,
                    gens
                  ])
                )
                .digest("base64url")
            return Effect.flatMap(
              Effect.catchAll(cache.get(key), failOpen(Option.none<unknown>(), "get")),
              (stored) => {
                const rows = Option.flatMap(stored, decodeRows)
                if (Option.isSome(rows)) {
                  M.add(M.hits, name)
                  return Effect.succeed({ _tag: "Rows" as const, rows: rows.value })
                }
                M.add(M.misses, name)
                return Effect.tap(next(ctx), (result) =>
                  Effect.catchAll(cache.set(key, encodeRows(result.rows), ttl), (e) =>
                    M.reportStoreFailure(name, key, e)
                  )
                )
              }
            )
          }
        )
      }

    /** A raw write whose table is unknown publishes no event: bump the whole database (after commit). */
    const wroteUnknown = (ctx: Executor.QueryContext) => {
      const now = bump(ctx.session.label, "*")
      return Effect.flatMap(FiberRef.get(ctx.session.transaction), (tx) =>
        Option.isSome(tx) ? tx.value.afterCommit(now) : now
      )
    }

    return (next) => {
      const cached = read(next)
      return (ctx) => {
        if (ctx.type !== "SELECT") {
          const unknownWrite = ctx.description._tag === "Raw" && ctx.description.writes === undefined
          return unknownWrite ? Effect.tap(next(ctx), () => wroteUnknown(ctx)) : next(ctx)
        }
        if (!cacheable(ctx)) return next(ctx)
        return Effect.flatMap(FiberRef.get(ctx.session.transaction), (tx) => {
          if (Option.isSome(tx)) return next(ctx)
          const tables = tablesOf(ctx)
          return tables === undefined ? next(ctx) : Effect.zipRight(drain, cached(ctx, tables))
        })
      }
    }
  })

/**
 * Wraps the Executor below in the query cache, backed by the cache under `cacheTag`.
 *
 * @example
 * const ExecutorLive = QueryCache.layer(Cache.Cache, { ttl: "30 seconds" }).pipe(Layer.provide(Database.layer({ url })))
 * @since 0.1.0
 * @category layers
 */
export const layer = <CI>(
  cacheTag: Context.Tag<CI, Cache.Cache>,
  options: Options = {}
): Layer.Layer<Executor.Executor, never, Executor.Executor | ChangeFeed | CI> =>
  Layer.scoped(
    Executor.Executor,
    Effect.flatMap(cacheTag, (cache) =>
      Effect.flatMap(make(cache, options), (middleware) =>
        Effect.map(Executor.Executor, (ex) => ({
          ...ex,
          execute: Executor.applyMiddleware(ex.execute, [middleware])
        }))
      )
    )
  )
