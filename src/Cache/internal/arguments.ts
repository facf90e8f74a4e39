/**
 * Argument checks shared by every backend, so a bad TTL or increment gets the same typed error
 * whichever cache runs it.
 *
 * @internal
 */
import { Duration, Either, Option } from "effect"
import { CacheError } from "../CacheError.js"

/**
 * The TTL in whole milliseconds (rounded up, so a positive TTL never becomes "no TTL"), or `undefined`
 * for "never expires" (no TTL, or `Duration.infinity`). Zero, negative or unparseable: an error.
 *
 * @internal
 */
export const ttlMillis = (
  operation: string,
  key: string,
  ttl: Duration.DurationInput | undefined
): Either.Either<number | undefined, CacheError> => {
  if (ttl === undefined) return Either.right(undefined)
  const decoded = Duration.decodeUnknown(ttl)
  if (Option.isNone(decoded)) {
    return Either.left(
      new CacheError({ reason: "invalid_argument", operation, key, detail: `bad TTL ${String(ttl)}` })
    )
  }
  if (!Duration.isFinite(decoded.value)) return Either.right(undefined)
  const millis = Duration.toMillis(decoded.value)
  if (!(millis > 0)) {
    return Either.left(
      new CacheError({
        reason: "invalid_argument",
        operation,
        key,
        detail: `TTL must be positive, got ${millis}ms`
      })
    )
  }
  return Either.right(Math.ceil(millis))
}

/** An increment must be a safe integer (Redis INCRBY takes integers only). @internal */
export const checkIncrement = (operation: string, key: string, by: number): CacheError | undefined =>
  Number.isSafeInteger(by)
    ? undefined
    : new CacheError({
        reason: "invalid_argument",
        operation,
        key,
        detail: `increment must be an integer, got ${by}`
      })

/** The error for incrBy on a value that is not a safe integer. @internal */
export const notAnInteger = (operation: string, key: string, cause?: unknown): CacheError =>
  new CacheError({
    reason: "type",
    operation,
    key,
    detail: "value is not an integer or out of range",
    cause
  })
