/**
 * The metrics every cache pattern reports, each tagged `cache` with the name of the cache (and
 * `reason` for evictions). Defined once here so the read-through, the query cache and the write-back
 * cache count into the same series, which the demo's `/metrics` renders.
 *
 * @internal
 */
import { Effect, Metric } from "effect"

/** @internal */
export const hits = Metric.counter("effect_dal_cache_hits_total", {
  description: "Reads answered from the cache",
  incremental: true
})

/** @internal */
export const misses = Metric.counter("effect_dal_cache_misses_total", {
  description: "Reads the cache could not answer",
  incremental: true
})

/** @internal */
export const loads = Metric.counter("effect_dal_cache_loads_total", {
  description: "Loader calls made on a miss (or a refresh)",
  incremental: true
})

/** @internal */
export const loadFailures = Metric.counter("effect_dal_cache_load_failures_total", {
  description: "Loader calls that failed",
  incremental: true
})

/** @internal */
export const storeFailures = Metric.counter("effect_dal_cache_store_failures_total", {
  description: "Writes of a loaded value (or a write-through/write-back entry) that failed",
  incremental: true
})

/** @internal */
export const negativeHits = Metric.counter("effect_dal_cache_negative_hits_total", {
  description: "Misses answered from the negative cache without calling the loader",
  incremental: true
})

/** @internal */
export const rejections = Metric.counter("effect_dal_cache_bloom_rejections_total", {
  description: "Misses the bloom filter answered as absent without calling the loader",
  incremental: true
})

/** @internal */
export const rateLimited = Metric.counter("effect_dal_cache_rate_limited_total", {
  description: "Loader calls refused by the rate limiter",
  incremental: true
})

/** @internal */
export const backgroundDropped = Metric.counter("effect_dal_cache_background_dropped_total", {
  description: "Background loads or stores skipped because the cache's task pool was full",
  incremental: true
})

/** @internal */
export const evictions = Metric.counter("effect_dal_cache_evictions_total", {
  description: "Values that left a cache, tagged with the reason",
  incremental: true
})

/** @internal */
export const dirty = Metric.gauge("effect_dal_cache_writeback_dirty", {
  description: "Entries written to a write-back cache and not yet in the store"
})

/** @internal */
export const flushed = Metric.counter("effect_dal_cache_writeback_flushed_total", {
  description: "Write-back entries written to (or deleted from) the store",
  incremental: true
})

/** @internal */
export const deadLettered = Metric.counter("effect_dal_cache_writeback_dead_lettered_total", {
  description:
    "Write-back entries moved to the dead-letter store (refused for good, or not written by close)",
  incremental: true
})

/** @internal */
export const deadLetters = Metric.gauge("effect_dal_cache_writeback_dead_letters", {
  description: "Dead letters of a write-back cache waiting in the dead-letter store"
})

/** @internal */
export const invalidations = Metric.counter("effect_dal_cache_invalidations_total", {
  description: "Keys (or whole caches) invalidated by a change event, locally or from another process",
  incremental: true
})

const tagged = new WeakMap<object, Map<string, unknown>>()

/** `metric` tagged with `cache` (and `reason`), made once and reused: tagging allocates a new key. */
const taggedFor = <T, Out>(
  metric: Metric.Metric<T, number, Out>,
  cache: string,
  reason?: string
): Metric.Metric<T, number, Out> => {
  const id = reason === undefined ? cache : `${cache}\u0000${reason}`
  let byTags = tagged.get(metric)
  if (byTags === undefined) {
    byTags = new Map()
    tagged.set(metric, byTags)
  }
  const found = byTags.get(id) as Metric.Metric<T, number, Out> | undefined
  if (found !== undefined) return found
  const withCache = Metric.tagged(metric, "cache", cache)
  const made = reason === undefined ? withCache : Metric.tagged(withCache, "reason", reason)
  byTags.set(id, made)
  return made
}

/** Adds `by` to `counter` under the `cache` tag, synchronously (for hot paths inside another step). @internal */
export const add = (counter: Metric.Metric.Counter<number>, cache: string, by = 1): void =>
  taggedFor(counter, cache).unsafeUpdate(by, [])

/** Adds `by` to `counter` under the `cache` tag. @internal */
export const count = (counter: Metric.Metric.Counter<number>, cache: string, by = 1): Effect.Effect<void> =>
  Effect.sync(() => add(counter, cache, by))

/** Sets the write-back dirty gauge of `cache`, synchronously. @internal */
export const setDirty = (cache: string, value: number): void =>
  taggedFor(dirty, cache).unsafeUpdate(value, [])

/** Sets the write-back dead-letter gauge of `cache`, synchronously. @internal */
export const setDeadLetters = (cache: string, value: number): void =>
  taggedFor(deadLetters, cache).unsafeUpdate(value, [])

/** Counts one eviction of `cache` for `reason`. @internal */
export const countEviction = (cache: string, reason: string): Effect.Effect<void> =>
  Effect.sync(() => taggedFor(evictions, cache, reason).unsafeUpdate(1, []))

/** Counts and logs a failed write of `key` to `cache`. @internal */
export const reportStoreFailure = (cache: string, key: string, cause: unknown): Effect.Effect<void> =>
  Effect.zipRight(
    Effect.logWarning(`cache ${cache}: storing "${key}" failed; the loaded value is still returned`, cause),
    count(storeFailures, cache)
  )
