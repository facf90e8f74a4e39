/**
 * Random expiration (an answer to the cache avalanche): every TTL written through the cache
 * gets a random offset within a configured range, so keys written together (a warm-up at start, a
 * burst of loads) do not all expire at the same moment. Writes without a TTL stay without one. The
 * offset comes from Effect's `Random` service, so a test can seed it.
 *
 * @since 0.1.0
 */
import { Duration, Effect, type Layer, Option, Random } from "effect"
import type * as Context from "effect/Context"
import * as Cache from "./Cache.js"
import { CacheError } from "./CacheError.js"

/**
 * The range of the offset added to each TTL: uniform over `[min, max]` (`min` defaults to zero).
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  readonly max: Duration.DurationInput
  readonly min?: Duration.DurationInput
}

const millis = (name: string, input: Duration.DurationInput) =>
  Option.match(Duration.decodeUnknown(input), {
    onNone: () => Effect.fail(invalid(`${name}: bad duration ${String(input)}`)),
    onSome: (d) => {
      const ms = Duration.toMillis(d)
      return Number.isFinite(ms) && ms >= 0
        ? Effect.succeed(Math.round(ms))
        : Effect.fail(invalid(`${name} must be finite and non-negative`))
    }
  })

const invalid = (detail: string) =>
  new CacheError({ reason: "invalid_argument", operation: "RandomExpiration.make", detail })

/**
 * The jittered view of `self`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: Options) =>
  Effect.fn("RandomExpiration.make")(function* <A>(self: Cache.Cache<A>) {
    const max = yield* millis("max", options.max)
    const min = options.min === undefined ? 0 : yield* millis("min", options.min)
    if (min > max) return yield* invalid(`min (${min}ms) exceeds max (${max}ms)`)
    /** The TTL plus the offset; a missing or infinite TTL means no expiry and stays so. */
    const jitter = (ttl: Duration.DurationInput | undefined) =>
      Effect.map(Random.nextIntBetween(min, max + 1), (offset) => {
        if (ttl === undefined) return undefined
        const decoded = Duration.decodeUnknown(ttl)
        // Left alone too when not a positive finite duration: the cache underneath reports the bad TTL.
        if (
          Option.isNone(decoded) ||
          !Duration.isFinite(decoded.value) ||
          Duration.toMillis(decoded.value) <= 0
        ) {
          return ttl
        }
        return Duration.sum(decoded.value, Duration.millis(offset))
      })
    const primitives: Cache.Primitives<A> = {
      ...self,
      set: (key, value, ttl) => Effect.flatMap(jitter(ttl), (jittered) => self.set(key, value, jittered)),
      loadOrStore: (key, value, ttl) =>
        Effect.flatMap(jitter(ttl), (jittered) => self.loadOrStore(key, value, jittered))
    }
    return primitives
  })

/**
 * Jitters the TTLs written to the cache under `tag`.
 *
 * @example
 * const UserCacheLive = RandomExpiration.layer(UserCache, { max: "30 seconds" }).pipe(Layer.provide(base))
 * @since 0.1.0
 * @category layers
 */
export const layer = <I, A>(
  tag: Context.Tag<I, Cache.Cache<A>>,
  options: Options
): Layer.Layer<I, CacheError, I> => Cache.decorate(tag, make(options))
