/**
 * Logs every query (streams too, once they end): SQL, parameters (redacted where they may be
 * sensitive), duration, rows returned or affected, and the error (its message, in which the
 * database error has already redacted the driver's quoted values). The sink is pluggable; by
 * default it is Effect's logger.
 *
 * @example
 * const AppExecutor = QueryLog.layer({ level: LogLevel.Debug }).pipe(Layer.provideMerge(Database.layer({ url })))
 * @since 0.1.0
 */
import { Cause, Duration, Effect, Exit, FiberRef, type Layer, LogLevel, Option } from "effect"
import * as Executor from "../Query/Executor.js"
import type { QueryError } from "../Query/QueryError.js"
import * as Middleware from "./Middleware.js"

/** What a sink receives for one query. @since 0.1.0 @category models */
export interface Entry {
  readonly type: Executor.QueryType
  readonly table: string
  readonly sql: string
  /** The bound parameters, with sensitive values replaced by `redacted` (unless redaction is off). */
  readonly params: ReadonlyArray<unknown>
  readonly duration: Duration.Duration
  /** Rows returned (a SELECT, or a write with RETURNING). */
  readonly rows: number | undefined
  /** Rows a write affected. */
  readonly rowsAffected: number | undefined
  readonly error: QueryError | undefined
  /** The query was interrupted (e.g. by an outer timeout) before it finished. */
  readonly interrupted: boolean
  /** The id of the transaction the query ran in. */
  readonly transaction: string | undefined
}

/** @since 0.1.0 @category models */
export interface Options {
  /** Where entries go; default `log` (Effect's logger). */
  readonly sink?: (entry: Entry) => Effect.Effect<void>
  /** Replace values bound to `Entity.sensitive` fields (default true). */
  readonly redactSensitive?: boolean
  /** The level of the default sink's successful queries (default Info). */
  readonly level?: LogLevel.LogLevel
  /** The level of the default sink's failed or interrupted queries (default Warning). */
  readonly errorLevel?: LogLevel.LogLevel
}

/** What a redacted parameter reads as. @since 0.1.0 @category redaction */
export const redacted = "<redacted>"

/**
 * The statement's parameters with sensitive values redacted. A parameter is redacted when the
 * compiler recorded it as bound to a sensitive field, or when it is bound to no known field (a raw
 * fragment's, `Raw.query`'s) in a statement that touches an entity with a sensitive field
 * (`Compiled.sensitive`: any table of the statement, or raw text naming one).
 *
 * @since 0.1.0 @category redaction
 */
export const redactParams = (ctx: Executor.QueryContext): ReadonlyArray<unknown> => {
  const { params, paramFields, sensitive } = ctx.statement
  return params.map((p, i) => {
    const field = paramFields?.[i]
    return field?.sensitive === true || (field === undefined && sensitive === true) ? redacted : p
  })
}

const entryOf = (
  outcome: Middleware.Outcome,
  params: ReadonlyArray<unknown>,
  tx: string | undefined
): Entry => {
  const { ctx, exit, duration } = outcome
  const base = {
    type: ctx.type,
    table: ctx.table,
    sql: Executor.displaySql(ctx),
    params,
    duration,
    transaction: tx
  }
  if (Exit.isSuccess(exit)) {
    const result = exit.value
    return {
      ...base,
      rows:
        outcome.streamed ??
        (result._tag === "Rows" || result.rows.length > 0 ? result.rows.length : undefined),
      rowsAffected: result._tag === "Exec" ? result.rowsAffected : undefined,
      error: undefined,
      interrupted: false
    }
  }
  return {
    ...base,
    rows: undefined,
    rowsAffected: undefined,
    error: Option.getOrUndefined(Cause.failureOption(exit.cause)),
    interrupted: Cause.isInterruptedOnly(exit.cause)
  }
}

/**
 * The default sink: one log line whose message is the SQL, annotated with the rest of the entry
 * (`query.type`, `query.table`, `query.params`, `query.durationMillis`, `query.rows`,
 * `query.rowsAffected`, `query.error`, `query.interrupted`, `query.transaction`; absent ones omitted).
 *
 * @since 0.1.0 @category sinks
 */
export const log = (
  entry: Entry,
  levels: { readonly level: LogLevel.LogLevel; readonly errorLevel: LogLevel.LogLevel } = {
    level: LogLevel.Info,
    errorLevel: LogLevel.Warning
  }
): Effect.Effect<void> => {
  const annotations: Record<string, unknown> = {
    "query.type": entry.type,
    "query.table": entry.table,
    "query.params": entry.params,
    "query.durationMillis": Duration.toMillis(entry.duration)
  }
  if (entry.rows !== undefined) annotations["query.rows"] = entry.rows
  if (entry.rowsAffected !== undefined) annotations["query.rowsAffected"] = entry.rowsAffected
  if (entry.error !== undefined) annotations["query.error"] = entry.error.message
  if (entry.interrupted) annotations["query.interrupted"] = true
  if (entry.transaction !== undefined) annotations["query.transaction"] = entry.transaction
  const failed = entry.error !== undefined || entry.interrupted
  return Effect.annotateLogs(
    Effect.logWithLevel(failed ? levels.errorLevel : levels.level, entry.sql),
    annotations
  )
}

/**
 * The logging middleware.
 *
 * @since 0.1.0 @category constructors
 */
export const make = (options: Options = {}): Executor.Middleware => {
  const levels = { level: options.level ?? LogLevel.Info, errorLevel: options.errorLevel ?? LogLevel.Warning }
  const sink = options.sink ?? ((entry: Entry) => log(entry, levels))
  const redact = options.redactSensitive ?? true
  return Middleware.observe((outcome) =>
    Effect.flatMap(FiberRef.get(outcome.ctx.session.transaction), (tx) =>
      sink(
        entryOf(
          outcome,
          redact ? redactParams(outcome.ctx) : outcome.ctx.statement.params,
          Option.getOrUndefined(Option.map(tx, (t) => t.id))
        )
      )
    )
  )
}

/**
 * Wraps the Executor below in the logging middleware.
 *
 * @since 0.1.0 @category layers
 */
export const layer = (options: Options = {}): Layer.Layer<Executor.Executor, never, Executor.Executor> =>
  Executor.layerMiddleware(make(options))
