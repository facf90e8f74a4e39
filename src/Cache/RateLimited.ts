/**
 * Rate-limited loads (a limiter on the way back to the database): loader calls of a
 * read-through cache pass through Effect's `RateLimiter`. Cache hits are never limited. A call that
 * gets no permit within `maxWait` (default zero: at once) fails with `RateLimitedError`, or, with
 * `layerFallback`, answers a default value that is returned but not stored.
 *
 * @since 0.1.0
 */
import { Data, type Duration, Effect, type Layer, Option, RateLimiter } from "effect"
import type * as Context from "effect/Context"
import type * as Scope from "effect/Scope"
import * as M from "./internal/patternMetrics.js"
import * as ReadThrough from "./ReadThrough.js"

/**
 * A loader call was refused by the rate limiter.
 *
 * @since 0.1.0
 * @category errors
 */
export class RateLimitedError extends Data.TaggedError("RateLimitedError")<{
  readonly cache: string
  readonly key: string
}> {
  /** @since 0.1.0 */
  override get message(): string {
    return `cache ${this.cache}: load of "${this.key}" refused by the rate limiter`
  }
}

/**
 * The limit: at most `limit` loads per `interval` (Effect's `RateLimiter` options).
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  readonly limit: number
  readonly interval: Duration.DurationInput
  /** `token-bucket` (default) refills one permit at a time; `fixed-window` resets all at once. */
  readonly algorithm?: "token-bucket" | "fixed-window"
  /** How long a load may wait for a permit before it counts as refused (default 0). */
  readonly maxWait?: Duration.DurationInput
}

/**
 * A guard: `run(key, load)` runs `load` with a permit, or answers `onLimited(key)` without one.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = <A, E, R>(
  name: string,
  options: Options,
  onLimited: (key: string) => Effect.Effect<ReadThrough.Loaded<A>, E>
): Effect.Effect<ReadThrough.Guard<A, E, R>, never, Scope.Scope> =>
  Effect.map(
    RateLimiter.make({
      limit: options.limit,
      interval: options.interval,
      algorithm: options.algorithm ?? "token-bucket"
    }),
    (limiter) => {
      const permit = Effect.timeoutOption(limiter(Effect.void), options.maxWait ?? 0)
      return (key, load) =>
        Effect.flatMap(permit, (granted) =>
          Option.isSome(granted) ? load : Effect.zipRight(M.count(M.rateLimited, name), onLimited(key))
        )
    }
  )

/**
 * Limits the loads of the read-through cache under `tag`; a refused load fails with
 * `RateLimitedError`, which the tag's error type must include.
 *
 * @example
 * class UserReads extends ReadThrough.Tag("app/UserReads")<
 *   UserReads,
 *   User,
 *   Select.SelectError | RateLimited.RateLimitedError,
 *   Executor.Executor
 * >() {}
 * const limited = RateLimited.layer(UserReads, { limit: 100, interval: "1 second" })
 * @since 0.1.0
 * @category layers
 */
export const layer = <I, A, E, R>(
  tag: Context.Tag<I, ReadThrough.ReadThrough<A, E | RateLimitedError, R>>,
  options: Options
): Layer.Layer<I, never, I> =>
  ReadThrough.decorate(tag, (parts) =>
    Effect.map(
      make<A, E | RateLimitedError, R>(parts.name, options, (key) =>
        Effect.fail(new RateLimitedError({ cache: parts.name, key }))
      ),
      (guard) => ({ ...parts, guards: [...parts.guards, guard] })
    )
  )

/**
 * Limits the loads of the read-through cache under `tag`; a refused load answers `fallback(key)`
 * (returned to the caller, never stored).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerFallback = <I, A, E, R>(
  tag: Context.Tag<I, ReadThrough.ReadThrough<A, E, R>>,
  options: Options & { readonly fallback: (key: string) => Option.Option<A> }
): Layer.Layer<I, never, I> =>
  ReadThrough.decorate(tag, (parts) =>
    Effect.map(
      make<A, E, R>(parts.name, options, (key) =>
        Effect.sync(() => ReadThrough.fallback(options.fallback(key)))
      ),
      (guard) => ({ ...parts, guards: [...parts.guards, guard] })
    )
  )
