/**
 * The one error of the change stream. `reason` drives handling: only `connection` is retried (with
 * backoff); the others need an operator.
 *
 * @since 0.1.0
 */
import { Data } from "effect"

/**
 * - `connection`: the source dropped or cannot be reached (retried with backoff).
 * - `setup`: the database is not configured for change capture (binlog off or not ROW/FULL,
 *   `wal_level` not logical, missing privileges, an unsupported server).
 * - `position_lost`: the committed position is no longer on the server (binlog purged, slot
 *   dropped or invalidated): changes after it were missed, so caches following it must be flushed.
 * - `store`: the position store could not be read or written.
 * - `decode`: a message of the source could not be understood.
 *
 * @since 0.1.0
 * @category models
 */
export type ChangeStreamErrorReason = "connection" | "setup" | "position_lost" | "store" | "decode"

/**
 * @since 0.1.0
 * @category errors
 */
export class ChangeStreamError extends Data.TaggedError("ChangeStreamError")<{
  readonly reason: ChangeStreamErrorReason
  /** The source (its name, without credentials). */
  readonly source: string
  readonly detail: string
  readonly cause?: unknown
}> {
  /** @since 0.1.0 */
  override get message(): string {
    return `change stream ${this.source} failed (${this.reason}): ${this.detail}`
  }
}
