/**
 * The demo's logger: one logfmt line per entry, bounded during outages and free of personal data.
 *
 * - Email addresses are redacted from every line, whatever logged it (a driver's "Duplicate entry"
 *   message, a cause, a library's warning): the email is a sensitive field and is never logged.
 * - A warning or error repeated within `intervalMs` (same message, same first line of its cause) is
 *   printed once; the next one printed after the interval says how many were suppressed. So a stack
 *   trace appears once per distinct error per interval, and a Redis or database outage costs a few
 *   lines, not one per operation.
 * - Entries annotated `request` (the one line per failed request, carrying its request id) are never
 *   suppressed, and never carry a cause: their cause is logged on its own, bounded as above.
 *
 * @since 0.1.0
 */
import { Cause, HashMap, Logger, LogLevel } from "effect"

// An address is "something@something.tld"; the text around it may be JSON, logfmt or prose.
const emailLike = /[^\s"'`<>()[\]{},;:@\\=]+@[^\s"'`<>()[\]{},;:@\\=]+\.[A-Za-z0-9-]+/g

/** Replaces every email-like token with `<redacted>`. @since 0.1.0 @category redaction */
export const redact = (line: string): string => line.replace(emailLike, "<redacted>")

/** The annotation that marks a request's own failure line (never suppressed). @since 0.1.0 @category annotations */
export const requestAnnotation = "request"

const firstLine = (cause: Cause.Cause<unknown>) =>
  Cause.isEmpty(cause) ? "" : (Cause.pretty(cause).split("\n", 1)[0] ?? "").replace(/\d+/g, "#")

/**
 * The logger, replacing Effect's default one.
 *
 * @since 0.1.0 @category constructors
 */
export const make = (intervalMs: number): Logger.Logger<unknown, void> => {
  const seen = new Map<string, { until: number; suppressed: number }>()
  return Logger.make((options) => {
    let entry = options
    if (
      LogLevel.greaterThanEqual(options.logLevel, LogLevel.Warning) &&
      !HashMap.has(options.annotations, requestAnnotation)
    ) {
      const key = `${String(options.message)}\u0000${firstLine(options.cause)}`
      const now = options.date.getTime()
      const last = seen.get(key)
      if (last !== undefined && now < last.until) {
        last.suppressed++
        return
      }
      if (seen.size >= 1_000) seen.clear()
      seen.set(key, { until: now + intervalMs, suppressed: 0 })
      if (last !== undefined && last.suppressed > 0) {
        const messages = Array.isArray(options.message) ? options.message : [options.message]
        entry = { ...options, message: [...messages, `(${last.suppressed} like it suppressed)`] }
      }
    }
    const line = redact(Logger.logfmtLogger.log(entry))
    if (LogLevel.greaterThanEqual(options.logLevel, LogLevel.Warning)) globalThis.console.error(line)
    else globalThis.console.log(line)
  })
}

/**
 * Replaces the default logger with `make(intervalMs)`.
 *
 * @since 0.1.0 @category layers
 */
export const layer = (intervalMs: number) => Logger.replace(Logger.defaultLogger, make(intervalMs))
