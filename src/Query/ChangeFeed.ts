/**
 * The feed of committed writes. `ChangeCapture` publishes one `ChangeEvent` per successful INSERT,
 * UPDATE or DELETE (after commit when a transaction is open); caches subscribe to invalidate.
 * Backed by an unbounded Effect `PubSub`: a slow subscriber never blocks writers and never misses
 * an event, at the cost of memory while it lags.
 *
 * @example
 * const invalidations = Effect.gen(function* () {
 *   const changes = yield* ChangeFeed.subscribe
 *   const event = yield* Queue.take(changes)
 *   yield* Console.log(event.table, event.primaryKeys)
 * })
 * @since 0.1.0
 */
import { Context, Effect, Layer, PubSub, type Queue, type Scope, Stream } from "effect"

/** The kind of write a change event reports. @since 0.1.0 @category models */
export type ChangeType = "INSERT" | "UPDATE" | "DELETE"

/** One committed write. @since 0.1.0 @category models */
export interface ChangeEvent {
  /** The session label of the database written to (no credentials). */
  readonly database: string
  /** The table written; `"*"` when a raw statement wrote tables that cannot be named (any table). */
  readonly table: string
  readonly type: ChangeType
  /**
   * The primary keys of the rows written, keyed by entity field name, when the statement names
   * them (a WHERE on the key, RETURNING rows, or a single generated id); `undefined` when unknown,
   * which a cache must read as "any row of the table".
   */
  readonly primaryKeys: ReadonlyArray<Readonly<Record<string, unknown>>> | undefined
  readonly rowsAffected: number
}

/** @since 0.1.0 @category models */
export interface ChangeFeedService {
  readonly publish: (event: ChangeEvent) => Effect.Effect<void>
  /** A queue receiving every event published after this call, until the scope closes. */
  readonly subscribe: Effect.Effect<Queue.Dequeue<ChangeEvent>, never, Scope.Scope>
  /** Every event published after the stream starts. */
  readonly changes: Stream.Stream<ChangeEvent>
}

/** @since 0.1.0 @category tags */
export class ChangeFeed extends Context.Tag("effect-dal/ChangeFeed")<ChangeFeed, ChangeFeedService>() {}

/**
 * A feed whose PubSub shuts down (ending every subscription) when the scope closes.
 *
 * @since 0.1.0 @category constructors
 */
export const make: Effect.Effect<ChangeFeedService, never, Scope.Scope> = Effect.map(
  Effect.acquireRelease(PubSub.unbounded<ChangeEvent>(), PubSub.shutdown),
  (pubsub) => ({
    publish: (event) => Effect.asVoid(PubSub.publish(pubsub, event)),
    subscribe: PubSub.subscribe(pubsub),
    changes: Stream.fromPubSub(pubsub)
  })
)

/** @since 0.1.0 @category layers */
export const layer: Layer.Layer<ChangeFeed> = Layer.scoped(ChangeFeed, make)

/**
 * Subscribes to the feed in the context.
 *
 * @since 0.1.0 @category accessors
 */
export const subscribe: Effect.Effect<
  Queue.Dequeue<ChangeEvent>,
  never,
  ChangeFeed | Scope.Scope
> = Effect.flatMap(ChangeFeed, (feed) => feed.subscribe)

/**
 * Every event published after the stream starts, from the feed in the context.
 *
 * @since 0.1.0 @category accessors
 */
export const changes: Stream.Stream<ChangeEvent, never, ChangeFeed> = Stream.unwrap(
  Effect.map(ChangeFeed, (feed) => feed.changes)
)
