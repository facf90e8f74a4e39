/**
 * Two small in-process key tables the read path keeps beside the cache: the negative cache (keys
 * known to be absent, or whose load failed, for a short TTL) and the tracker of keys this process
 * stored (so a change whose rows are unknown can invalidate them). Both are plain `Map`s touched in
 * one synchronous step per call, with times from the `Clock` service.
 *
 * @internal
 */
import { Option } from "effect"

/** What the negative cache remembers: the key was absent, or its load failed with `error`. @internal */
export type NegativeEntry<E> =
  | { readonly _tag: "Absent"; readonly expiresAt: number }
  | { readonly _tag: "Failed"; readonly error: E; readonly expiresAt: number }

/**
 * A bounded map of negative entries; when full, the oldest entry goes (insertion order, which a
 * re-insert refreshes), so a flood of distinct absent keys cannot grow it without bound.
 *
 * @internal
 */
export class NegativeTable<E> {
  private readonly entries = new Map<string, NegativeEntry<E>>()
  readonly ttlMillis: number
  readonly maxEntries: number
  constructor(ttlMillis: number, maxEntries: number) {
    this.ttlMillis = ttlMillis
    this.maxEntries = maxEntries
  }

  get(key: string, now: number): Option.Option<NegativeEntry<E>> {
    const entry = this.entries.get(key)
    if (entry === undefined) return Option.none()
    if (entry.expiresAt <= now) {
      this.entries.delete(key)
      return Option.none()
    }
    return Option.some(entry)
  }

  absent(key: string, now: number): void {
    this.put(key, { _tag: "Absent", expiresAt: now + this.ttlMillis })
  }

  failed(key: string, error: E, now: number): void {
    this.put(key, { _tag: "Failed", error, expiresAt: now + this.ttlMillis })
  }

  delete(key: string): void {
    this.entries.delete(key)
  }

  clear(): void {
    this.entries.clear()
  }

  get size(): number {
    return this.entries.size
  }

  private put(key: string, entry: NegativeEntry<E>): void {
    this.entries.delete(key)
    this.entries.set(key, entry)
    if (this.entries.size > this.maxEntries) {
      const oldest = this.entries.keys().next()
      if (oldest.done !== true) this.entries.delete(oldest.value)
    }
  }
}

/**
 * The keys stored through one read path, with their expiry (`Infinity` for no TTL). Expired keys are
 * pruned when the table has doubled since the last prune, so the work stays amortised O(1) a call.
 *
 * @internal
 */
export class KeyTracker {
  private readonly keys = new Map<string, number>()
  private pruneAt = 1024

  add(key: string, expiresAt: number, now: number): void {
    this.keys.set(key, expiresAt)
    if (this.keys.size >= this.pruneAt) {
      for (const [k, at] of this.keys) if (at <= now) this.keys.delete(k)
      this.pruneAt = Math.max(1024, 2 * this.keys.size)
    }
  }

  delete(key: string): void {
    this.keys.delete(key)
  }

  /** Every tracked key still live at `now`; the table is emptied. */
  drain(now: number): ReadonlyArray<string> {
    const live: Array<string> = []
    for (const [k, at] of this.keys) if (at > now) live.push(k)
    this.keys.clear()
    return live
  }

  get size(): number {
    return this.keys.size
  }
}
