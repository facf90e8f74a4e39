/**
 * A warning, with the SQL and the duration, for every query that takes longer than a threshold —
 * whether it then succeeded, failed or was interrupted. Parameters are left out: they may be
 * sensitive, and the SQL is what a slow query is fixed by.
 *
 * @since 0.1.0
 */
import { Duration, Effect, type Layer } from "effect"
import * as Executor from "../Query/Executor.js"
import * as Middleware from "./Middleware.js"

/** What the reporter receives for a slow query. @since 0.1.0 @category models */
export interface Slow {
  readonly type: Executor.QueryType
  readonly table: string
  readonly sql: string
  readonly duration: Duration.Duration
  readonly threshold: Duration.Duration
}

/** @since 0.1.0 @category models */
export interface Options {
  /** Queries taking strictly longer than this are reported. */
  readonly threshold: Duration.DurationInput
  /** Where reports go; default `warn` (a Warning through Effect's logger). */
  readonly report?: (slow: Slow) => Effect.Effect<void>
}

/**
 * The default reporter: a Warning whose message names the duration and the SQL, annotated with
 * `query.type`, `query.table`, `query.durationMillis` and `query.thresholdMillis`.
 *
 * @since 0.1.0 @category reporters
 */
export const warn = (slow: Slow): Effect.Effect<void> =>
  Effect.annotateLogs(Effect.logWarning(`Slow query (${Duration.format(slow.duration)}): ${slow.sql}`), {
    "query.type": slow.type,
    "query.table": slow.table,
    "query.durationMillis": Duration.toMillis(slow.duration),
    "query.thresholdMillis": Duration.toMillis(slow.threshold)
  })

/**
 * The slow-query middleware.
 *
 * @since 0.1.0 @category constructors
 */
export const make = (options: Options): Executor.Middleware => {
  const threshold = Duration.decode(options.threshold)
  const report = options.report ?? warn
  return Middleware.observe(({ ctx, duration }) =>
    Duration.greaterThan(duration, threshold)
      ? report({ type: ctx.type, table: ctx.table, sql: Executor.displaySql(ctx), duration, threshold })
      : Effect.void
  )
}

/**
 * Wraps the Executor below in the slow-query middleware.
 *
 * @since 0.1.0 @category layers
 */
export const layer = (options: Options): Layer.Layer<Executor.Executor, never, Executor.Executor> =>
  Executor.layerMiddleware(make(options))
