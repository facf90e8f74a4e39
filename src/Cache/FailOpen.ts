/**
 * Fail-open: a cache that is down must not take the service down with it. Errors of the decorated
 * cache (connection lost, timeout, unexpected reply...) are logged and counted in
 * `effect_dal_cache_errors_total{cache}`, and the operation answers as if the cache were empty: a
 * read is a miss, a write is skipped. `incrBy`/`decrBy` still fail: a counter has no safe answer.
 *
 * @since 0.1.0
 */
import { type Context, Effect, type Layer, Metric, Option } from "effect"
import * as Cache from "./Cache.js"
import type { CacheError } from "./CacheError.js"

/** Cache errors absorbed by fail-open, by cache name. @since 0.1.0 @category metrics */
export const errors = Metric.counter("effect_dal_cache_errors_total", {
  description: "Cache operations that failed and were answered as a miss or a skipped write"
})

const report = (name: string, e: CacheError) =>
  Effect.zipRight(
    Effect.logWarning(`cache ${name} unavailable, failing open: ${e.message}`),
    Metric.increment(Metric.tagged(errors, "cache", name))
  )

/**
 * The fail-open view of a cache.
 *
 * @since 0.1.0 @category constructors
 */
export const make =
  (name: string) =>
  <A>(self: Cache.Cache<A>): Cache.Primitives<A> => {
    const open =
      <B>(fallback: B) =>
      (e: CacheError) =>
        Effect.as(report(name, e), fallback)
    return {
      get: (key) => Effect.catchTag(self.get(key), "CacheError", open(Option.none<A>())),
      set: (key, value, ttl) => Effect.catchTag(self.set(key, value, ttl), "CacheError", open(undefined)),
      delete: (key) => Effect.catchTag(self.delete(key), "CacheError", open(Option.none<A>())),
      has: (key) => Effect.catchTag(self.has(key), "CacheError", open(false)),
      loadOrStore: (key, value, ttl) =>
        Effect.catchTag(self.loadOrStore(key, value, ttl), "CacheError", open({ value, loaded: false })),
      incrBy: self.incrBy
    }
  }

/**
 * Decorates the cache behind `tag` so that its failures fail open.
 *
 * @since 0.1.0 @category layers
 */
export const layer = <I, A>(tag: Context.Tag<I, Cache.Cache<A>>, name: string): Layer.Layer<I, never, I> =>
  Cache.decorate(tag, (self) => Effect.succeed(make(name)(self)))
