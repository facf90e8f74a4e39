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
export const invalidations = Metric.counter("effect_dal_cache_invalidations_total", {
  description: "Keys (or whole caches) invalidated by a change event, locally or from another process",
  incremental: true
})

/** Adds `by` to `counter` under the `cache` tag. @internal */
export const count = (counter: Metric.Metric.Counter<number>, cache: string, by = 1): Effect.Effect<void> =>
  Metric.incrementBy(Metric.tagged(counter, "cache", cache), by)

/** Sets the write-back dirty gauge of `cache`. @internal */
export const setDirty = (cache: string, value: number): Effect.Effect<void> =>
  Metric.set(Metric.tagged(dirty, "cache", cache), value)

/** Counts one eviction of `cache` for `reason`. @internal */
export const countEviction = (cache: string, reason: string): Effect.Effect<void> =>
  Metric.increment(Metric.tagged(Metric.tagged(evictions, "cache", cache), "reason", reason))

/** Counts and logs a failed write of `key` to `cache`. @internal */
export const reportStoreFailure = (cache: string, key: string, cause: unknown): Effect.Effect<void> =>
  Effect.zipRight(
    Effect.logWarning(`cache ${cache}: storing "${key}" failed; the loaded value is still returned`, cause),
    count(storeFailures, cache)
  )
