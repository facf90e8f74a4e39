/**
 * An in-memory message broker (a channel-based Broker, plus the consumer groups a
 * plain channel lacks): every subscriber gets its own bounded buffer (an Effect `Queue`); a consumer
 * group shares one buffer among its members, so each group receives every message and exactly one
 * member of the group takes it. When a buffer is full its strategy decides: `fail` the publish ("queue
 * full"), `dropOldest`, or `backpressure` (the publisher waits). Closing the broker lets
 * subscribers drain what is buffered, then ends every subscription.
 *
 * @since 0.1.0
 */
import { Cause, Data, Deferred, Effect, Option, Queue, Stream } from "effect"
import type * as Scope from "effect/Scope"

/**
 * What a full buffer does with a new message.
 *
 * @since 0.1.0
 * @category models
 */
export type Strategy = "fail" | "dropOldest" | "backpressure"

/**
 * Options for `subscribe`. A group's buffer is created by its first member, whose capacity and
 * strategy it keeps; later members share it as it is.
 *
 * @since 0.1.0
 * @category models
 */
export interface SubscribeOptions {
  /** Default `backpressure`: nothing is lost and nothing fails, a slow subscriber slows publishers. */
  readonly strategy?: Strategy
  /** Join this consumer group instead of subscribing alone. */
  readonly group?: string
}

/**
 * One subscriber's (or group member's) end of the broker.
 *
 * @since 0.1.0
 * @category models
 */
export interface Subscription<A> {
  /** The next message; `None` once the broker has closed and the buffer is drained. */
  readonly take: Effect.Effect<Option.Option<A>>
  /** The messages as a stream that ends when `take` would return `None`. */
  readonly stream: Stream.Stream<A>
}

/**
 * The broker.
 *
 * @since 0.1.0
 * @category models
 */
export interface Broker<A> {
  /**
   * Delivers `message` to every subscriber and group, in publish order. Fails with `BrokerFullError`,
   * delivering to nobody, when a `fail` buffer is full; waits while a `backpressure` buffer is full.
   */
  readonly publish: (message: A) => Effect.Effect<void, BrokerFullError | BrokerClosedError>
  /** Subscribes (or joins `options.group`) for the lifetime of the scope. */
  readonly subscribe: (
    capacity: number,
    options?: SubscribeOptions
  ) => Effect.Effect<Subscription<A>, BrokerClosedError | Cause.IllegalArgumentException, Scope.Scope>
  /** Stops accepting messages and ends every subscription once drained; calling it again does nothing. */
  readonly close: Effect.Effect<void>
}

/**
 * A `fail` buffer was full: the message was delivered to nobody.
 *
 * @since 0.1.0
 * @category errors
 */
export class BrokerFullError extends Data.TaggedError("BrokerFullError")<{
  readonly subscriber: string
  readonly capacity: number
}> {
  /** @since 0.1.0 */
  override get message(): string {
    return `broker: the buffer of ${this.subscriber} is full (${this.capacity})`
  }
}

/**
 * The broker is closed.
 *
 * @since 0.1.0
 * @category errors
 */
export class BrokerClosedError extends Data.TaggedError("BrokerClosedError") {
  /** @since 0.1.0 */
  override get message(): string {
    return "broker: closed"
  }
}

const End: unique symbol = Symbol("effect-dal/Broker/End")

/** A buffer: one subscriber's, or one group's shared by its members. */
interface Outlet<A> {
  readonly name: string
  readonly capacity: number
  readonly strategy: Strategy
  readonly queue: Queue.Queue<A | typeof End>
  /** Completed when the outlet goes away (last member left, or broker closed): frees waiting publishers. */
  readonly gone: Deferred.Deferred<void>
  members: number
  ended: boolean
}

const sizeOf = <A>(outlet: Outlet<A>) => Option.getOrElse(outlet.queue.unsafeSize(), () => 0)

/**
 * Builds a broker that closes with the scope.
 *
 * @example
 * const broker = yield* Broker.make<string>()
 * const billing = yield* broker.subscribe(100, { group: "billing" })
 * yield* broker.publish("order-1")
 * @since 0.1.0
 * @category constructors
 */
export const make = <A>(): Effect.Effect<Broker<A>, never, Scope.Scope> =>
  Effect.gen(function* () {
    const outlets = new Set<Outlet<A>>()
    const groups = new Map<string, Outlet<A>>()
    const order = yield* Effect.makeSemaphore(1)
    let closed = false
    let anonymous = 0

    const endOutlet = (outlet: Outlet<A>) => {
      outlet.ended = true
      Deferred.unsafeDone(outlet.gone, Effect.void)
      // Only an empty buffer can have members waiting in take; wake one (it passes the marker on).
      if (sizeOf(outlet) <= 0) outlet.queue.unsafeOffer(End)
    }

    const deliver = (outlet: Outlet<A>, message: A): Effect.Effect<void> => {
      if (outlet.strategy !== "backpressure") return Queue.offer(outlet.queue, message)
      if (outlet.queue.unsafeOffer(message)) return Effect.void
      return Effect.raceFirst(Queue.offer(outlet.queue, message), Deferred.await(outlet.gone))
    }

    const publish = (message: A): Effect.Effect<void, BrokerFullError | BrokerClosedError> =>
      order.withPermits(1)(
        Effect.suspend((): Effect.Effect<void, BrokerFullError | BrokerClosedError> => {
          if (closed) return Effect.fail(new BrokerClosedError())
          const targets = [...outlets]
          for (const outlet of targets) {
            if (outlet.strategy === "fail" && sizeOf(outlet) >= outlet.capacity) {
              return Effect.fail(new BrokerFullError({ subscriber: outlet.name, capacity: outlet.capacity }))
            }
          }
          return Effect.zipRight(
            Effect.forEach(targets, (outlet) => deliver(outlet, message), { discard: true }),
            Effect.suspend(() => (closed ? Effect.fail(new BrokerClosedError()) : Effect.void))
          )
        })
      )

    const subscriptionOf = (outlet: Outlet<A>): Subscription<A> => {
      // The end marker is put back so that every member of a group sees it.
      const ended = Effect.sync(() => {
        outlet.queue.unsafeOffer(End)
        return Option.none<A>()
      })
      const take: Effect.Effect<Option.Option<A>> = Effect.flatMap(Queue.poll(outlet.queue), (polled) => {
        if (Option.isSome(polled))
          return polled.value === End ? ended : Effect.succeed(Option.some(polled.value))
        if (outlet.ended) return Effect.succeedNone
        return Effect.flatMap(Queue.take(outlet.queue), (next) =>
          next === End ? ended : Effect.succeed(Option.some(next))
        )
      })
      return {
        take,
        stream: Stream.repeatEffectOption(
          Effect.flatMap(take, (next) =>
            Option.isSome(next) ? Effect.succeed(next.value) : Effect.fail(Option.none())
          )
        )
      }
    }

    const join = (capacity: number, options: SubscribeOptions) =>
      Effect.gen(function* () {
        const strategy = options.strategy ?? "backpressure"
        const queue = yield* strategy === "dropOldest"
          ? Queue.sliding<A | typeof End>(capacity)
          : Queue.bounded<A | typeof End>(capacity)
        const gone = yield* Deferred.make<void>()
        // Checked and registered in one synchronous step, so a concurrent close cannot slip in between.
        return yield* Effect.suspend(() => {
          if (closed) return Effect.fail(new BrokerClosedError())
          const existing = options.group === undefined ? undefined : groups.get(options.group)
          if (existing !== undefined) {
            existing.members++
            return Effect.succeed(existing)
          }
          const name = options.group === undefined ? `subscriber #${++anonymous}` : `group "${options.group}"`
          const outlet: Outlet<A> = { name, capacity, strategy, queue, gone, members: 1, ended: false }
          outlets.add(outlet)
          if (options.group !== undefined) groups.set(options.group, outlet)
          return Effect.succeed(outlet)
        })
      })

    const leave = (outlet: Outlet<A>, group: string | undefined) =>
      Effect.sync(() => {
        if (--outlet.members > 0) return
        outlets.delete(outlet)
        if (group !== undefined && groups.get(group) === outlet) groups.delete(group)
        Deferred.unsafeDone(outlet.gone, Effect.void)
      })

    const close = Effect.sync(() => {
      if (closed) return
      closed = true
      for (const outlet of outlets) endOutlet(outlet)
    })

    yield* Effect.addFinalizer(() => close)

    return {
      publish,
      subscribe: (capacity, options = {}) =>
        Number.isSafeInteger(capacity) && capacity > 0
          ? Effect.map(
              Effect.acquireRelease(join(capacity, options), (outlet) => leave(outlet, options.group)),
              subscriptionOf
            )
          : Effect.fail(
              new Cause.IllegalArgumentException(`Broker.subscribe: capacity must be a positive integer`)
            ),
      close
    }
  })
