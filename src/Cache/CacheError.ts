/**
 * The cache error family: `CacheError` for a failed operation (classified by `reason`), `CacheMissError`
 * for a key that is not there when it must be, `CacheFullError` for a bounded cache that refuses a write.
 *
 * @since 0.1.0
 */
import { Data } from "effect"

/**
 * Why a cache operation failed.
 *
 * - `connection`: the backend cannot be reached or dropped the connection
 * - `timeout`: the backend did not answer in time
 * - `unexpected_reply`: the backend answered something the protocol does not allow
 * - `decode`: a stored value could not be read back (bad JSON, or it does not match the Schema)
 * - `encode`: a value could not be written (not JSON-representable, or rejected by the Schema)
 * - `type`: the stored value has the wrong type for the operation (incrBy on a non-integer)
 * - `invalid_argument`: the caller passed a bad TTL or increment
 * - `storage`: the local dead-letter file of a write-back cache could not be opened, read or written
 *
 * @since 0.1.0
 * @category models
 */
export type CacheErrorReason =
  | "connection"
  | "timeout"
  | "unexpected_reply"
  | "decode"
  | "encode"
  | "type"
  | "invalid_argument"
  | "storage"

/**
 * A cache operation failed; `reason` says why and `cause` keeps the underlying error.
 *
 * @since 0.1.0
 * @category errors
 */
export class CacheError extends Data.TaggedError("CacheError")<{
  readonly reason: CacheErrorReason
  readonly operation: string
  readonly key?: string | undefined
  readonly detail?: string | undefined
  readonly cause?: unknown
}> {
  /** @since 0.1.0 */
  override get message(): string {
    const where = this.key === undefined ? this.operation : `${this.operation} "${this.key}"`
    return `cache ${where} failed (${this.reason})${this.detail === undefined ? "" : `: ${this.detail}`}`
  }
}

/**
 * The key is absent (or expired) where a value was required.
 *
 * @since 0.1.0
 * @category errors
 */
export class CacheMissError extends Data.TaggedError("CacheMissError")<{
  readonly key: string
}> {
  /** @since 0.1.0 */
  override get message(): string {
    return `cache miss for "${this.key}"`
  }
}

/**
 * A bounded cache refused a write: it is full and its policy is `reject`, or the entry alone exceeds
 * the byte bound.
 *
 * @since 0.1.0
 * @category errors
 */
export class CacheFullError extends Data.TaggedError("CacheFullError")<{
  readonly key: string
  readonly limit: "entries" | "bytes"
  readonly max: number
}> {
  /** @since 0.1.0 */
  override get message(): string {
    return `cache full: cannot store "${this.key}" within ${this.max} ${this.limit}`
  }
}
