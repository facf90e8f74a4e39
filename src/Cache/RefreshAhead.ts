/**
 * Refresh-ahead (a cache driven by change data capture): a read-through cache subscribes to the `ChangeFeed`,
 * and a committed write to a row of its table invalidates the cache key mapped from the row's primary
 * key (`action: "invalidate"`, the default), or reloads it at once on the cache's background pool
 * (`action: "reload"`; a deleted row is then removed). Negative entries of the key go too, so an
 * INSERT makes an absent key loadable at once.
 *
 * Every read first applies the changes pending (so the read after a committed write, in any fiber,
 * already misses); changes are otherwise applied every `drainInterval`, from the feed and from Redis.
 *
 * A change whose rows are unknown (an UPDATE by a non-key condition, a raw statement) invalidates
 * every key this process stored through the cache, and so does a raw write whose tables cannot be
 * named (table `"*"`: a `CALL`, a `DO` block, DDL) of the configured database (of any, without one): the read path tracks them, for `trackFor` (twice
 * the TTL by default; raise it when a decorator such as `RandomExpiration` stretches TTLs further).
 *
 * With `redis`, every change applied here is also published on a Redis channel, and changes published
 * by other processes are applied here: processes with their own memory caches invalidate one
 * another. A process ignores its own messages.
 *
 * @since 0.1.0
 */
import { type Context, Duration, Effect, type Layer, Option, Queue } from "effect"
import type { ChangeEvent, ChangeFeed } from "../Query/ChangeFeed.js"
import { CacheError } from "./CacheError.js"
import * as Channel from "./internal/channel.js"
import * as Drain from "./internal/drain.js"
import { KeyTracker } from "./internal/keyTables.js"
import * as M from "./internal/patternMetrics.js"
import * as ReadThrough from "./ReadThrough.js"

/**
 * Where processes tell one another of changes: a channel on a Redis at `url` (connections opened and
 * closed with the Layer), or on a client the caller owns (a duplicate of it subscribes).
 *
 * @since 0.1.0
 * @category models
 */
export type RedisChannel = Channel.RedisChannel

/**
 * Options for `layer`.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** The table whose changes concern the cache (a `ChangeEvent`'s `table`). */
  readonly table: string
  /** The cache key of a changed row, from its primary key (entity field names). */
  readonly key: (primaryKey: Readonly<Record<string, unknown>>) => string
  /** Only events of this database (a session label); default: any. */
  readonly database?: string
  /** Default `invalidate`. */
  readonly action?: "invalidate" | "reload"
  /** Share invalidations with other processes through Redis pub/sub. */
  readonly redis?: RedisChannel
  /** How long a stored key is remembered for changes whose rows are unknown (see the module doc). */
  readonly trackFor?: Duration.DurationInput
  /** How often changes are applied when no read comes to apply them (default 250 ms). */
  readonly drainInterval?: Duration.DurationInput
}

/** How long keys are tracked: `trackFor`, or twice the TTL (forever without one). */
const trackingMillis = (ttl: number | undefined, trackFor: Duration.DurationInput | undefined) =>
  trackFor === undefined
    ? ttl === undefined
      ? Number.POSITIVE_INFINITY
      : 2 * ttl
    : Option.match(Duration.decodeUnknown(trackFor), { onNone: () => Number.NaN, onSome: Duration.toMillis })

/**
 * Subscribes the read-through cache under `tag` to the change feed (and to other processes through
 * Redis, if configured). Reloads run with the Layer's context.
 *
 * @example
 * const fresh = RefreshAhead.layer(UserReads, {
 *   table: "users",
 *   key: (pk) => String(pk.id),
 *   redis: { url: "redis://127.0.0.1:6379", channel: "app:users:changes" }
 * })
 * @since 0.1.0
 * @category layers
 */
export const layer = <I, A, E, R>(
  tag: Context.Tag<I, ReadThrough.ReadThrough<A, E, R>>,
  options: Options
): Layer.Layer<I, CacheError, I | ChangeFeed | R> =>
  ReadThrough.decorate(tag, (parts) =>
    Effect.gen(function* () {
      const forMillis = trackingMillis(parts.ttl, options.trackFor)
      if (!(forMillis > 0)) {
        return yield* new CacheError({
          reason: "invalid_argument",
          operation: "RefreshAhead.layer",
          detail: "trackFor must be positive"
        })
      }
      const base: ReadThrough.Parts<A, E, R> = {
        ...parts,
        tracker: parts.tracker ?? { keys: new KeyTracker(), forMillis }
      }
      const rt = ReadThrough.fromParts(base)
      const context = yield* Effect.context<R>()
      const scope = yield* Effect.scope
      const reload = options.action === "reload"

      /** Applies a change here: some keys, or every key (`null`). */
      const apply = (keys: ReadonlyArray<string> | null): Effect.Effect<void> => {
        const work =
          keys === null
            ? rt.invalidateAll
            : Effect.forEach(
                keys,
                (key) =>
                  reload
                    ? ReadThrough.background(
                        parts.pool,
                        parts.name,
                        Effect.catchAllCause(Effect.asVoid(rt.refresh(key)), (cause) =>
                          Effect.logWarning(`refresh-ahead ${parts.name}: reloading "${key}" failed`, cause)
                        ).pipe(Effect.provide(context))
                      )
                    : rt.invalidate(key),
                { discard: true }
              )
        return Effect.zipRight(
          Effect.catchAllCause(work, (cause) =>
            Effect.logWarning(`refresh-ahead ${parts.name}: invalidation failed`, cause)
          ),
          M.count(M.invalidations, parts.name, keys === null ? 1 : keys.length)
        )
      }

      /** Texts from other processes; `null`: the subscription is back after a drop. */
      const remote = yield* Queue.unbounded<string | null>()
      const channel =
        options.redis === undefined
          ? undefined
          : yield* Channel.connect(
              options.redis,
              `refresh-ahead ${parts.name}`,
              (text) => remote.unsafeOffer(text),
              () => remote.unsafeOffer(null)
            )

      const onEvent = (event: ChangeEvent): Effect.Effect<void> => {
        // `"*"`: a raw write whose tables cannot be named may have written this table.
        const anyTable = event.table === "*"
        if (!anyTable && event.table !== options.table) return Effect.void
        if (options.database !== undefined && event.database !== options.database) return Effect.void
        const keys = anyTable || event.primaryKeys === undefined ? null : event.primaryKeys.map(options.key)
        const applied = apply(keys)
        // Published from a fiber of the Layer's scope: a read that drained this change never waits on Redis.
        return channel === undefined
          ? applied
          : Effect.zipRight(applied, Effect.asVoid(Effect.forkIn(channel.publish(keys), scope)))
      }

      // Invalidations published while the subscription was down are lost: after a drop, every key goes.
      const onRemote = (text: string | null): Effect.Effect<void> =>
        text === null || channel === undefined
          ? apply(null)
          : Effect.flatMap(channel.parse(text), Option.match({ onNone: () => Effect.void, onSome: apply }))

      // Every get first applies the changes pending (so the read after a committed write already
      // misses, in any fiber); a background drain applies them when no read comes (reloads happen then).
      const drain = yield* Drain.make({
        onEvent,
        remote,
        onRemote,
        interval: options.drainInterval ?? "250 millis"
      })
      return { ...base, before: [...base.before, drain] }
    })
  )
