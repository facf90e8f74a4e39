/**
 * Singleflight (one load per key at a time, for the cache breakdown problem): concurrent calls
 * for one key share a single run of the effect. The first caller (the leader) starts it in a fiber of
 * the group's scope, with the leader's own context (its services and fiber refs; not a context
 * captured when the group was made, the trap of effect's `Cache`); every caller, the leader included,
 * then waits for its result, and each gets the value, or the failure, of that one run. Interrupting
 * a waiter stops only its own wait: the run goes on for the others, and ends when the scope closes.
 *
 * On a read-through cache the flight covers the fill of a missed key (load and store), and the fill
 * reads the cache again first, so a cold key hit by a thousand concurrent gets is loaded once.
 *
 * @since 0.1.0
 */
import { Deferred, Effect, type Exit, FiberId, type Layer, type Scope } from "effect"
import type * as Context from "effect/Context"
import * as ReadThrough from "./ReadThrough.js"

/**
 * A singleflight group.
 *
 * @since 0.1.0
 * @category models
 */
export interface Singleflight {
  /** Runs `effect` for `key`, or joins the run already in flight for it. */
  readonly run: ReadThrough.Flight
  /** How many keys have a run in flight. */
  readonly inFlight: Effect.Effect<number>
}

/**
 * Makes a group whose runs are interrupted when the scope closes.
 *
 * @example
 * const group = yield* Singleflight.make
 * const user = yield* group.run(`user:${id}`, loadUser(id))
 * @since 0.1.0
 * @category constructors
 */
export const make: Effect.Effect<Singleflight, never, Scope.Scope> = Effect.map(Effect.scope, (scope) => {
  const flights = new Map<string, Deferred.Deferred<unknown, unknown>>()
  const run = <X, E, R>(key: string, effect: Effect.Effect<X, E, R>): Effect.Effect<X, E, R> =>
    Effect.uninterruptibleMask((restore) => {
      const existing = flights.get(key) as Deferred.Deferred<X, E> | undefined
      if (existing !== undefined) return restore(Deferred.await(existing))
      const result = Deferred.unsafeMake<X, E>(FiberId.none)
      flights.set(key, result as Deferred.Deferred<unknown, unknown>)
      // Registered and forked in one uninterruptible step, so a result is always delivered to joiners.
      const settle = (exit: Exit.Exit<X, E>) =>
        Effect.suspend(() => {
          if (flights.get(key) === result) flights.delete(key)
          return Deferred.done(result, exit)
        })
      return Effect.zipRight(
        Effect.forkIn(Effect.onExit(Effect.interruptible(effect), settle), scope),
        restore(Deferred.await(result))
      )
    })
  return { run, inFlight: Effect.sync(() => flights.size) }
})

/**
 * Adds a singleflight group to the read-through cache under `tag`: concurrent misses of one key
 * run one fill.
 *
 * @example
 * const UserReadsLive = Singleflight.layer(UserReads).pipe(Layer.provide(ReadThrough.layer(UserReads, UserCache, { loader: loadUser })))
 * @since 0.1.0
 * @category layers
 */
export const layer = <I, A, E, R>(
  tag: Context.Tag<I, ReadThrough.ReadThrough<A, E, R>>
): Layer.Layer<I, never, I> =>
  ReadThrough.decorate(tag, (parts) =>
    Effect.map(make, (group) => ({ ...parts, flights: [...parts.flights, group.run] }))
  )
