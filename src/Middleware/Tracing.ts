/**
 * One span per query, named `<TYPE> <table>` (e.g. `SELECT users`), carrying the OpenTelemetry
 * database attributes. It is a child of whatever span is current, so it nests under the caller's
 * span and, inside a transaction, under the transaction's. A failure ends the span with the failing
 * exit (exporters record it as the span's error) and sets `error.type` to the error's tag.
 *
 * @since 0.1.0
 */
import { Effect, FiberRef, type Layer, Option } from "effect"
import * as Executor from "../Query/Executor.js"

/** @since 0.1.0 @category models */
export interface Options {
  /**
   * The `db.system.name` attribute. Default: from the dialect (`mysql`, `postgresql`, `sqlite`),
   * or `mariadb` when the database URL said `mariadb://`.
   */
  readonly systemName?: string
}

/** The attribute naming the transaction a query ran in (not an OpenTelemetry convention). @since 0.1.0 @category attributes */
export const transactionAttribute = "effect_dal.transaction.id"

const systemName = (ctx: Executor.QueryContext): string => {
  switch (ctx.session.dialect.name) {
    case "mysql":
      return ctx.session.label.startsWith("mariadb:") ? "mariadb" : "mysql"
    case "pg":
      return "postgresql"
    case "sqlite":
      return "sqlite"
  }
}

/** RAW statements report their leading keyword (`SELECT`, `CALL`, …) as the operation. */
const operationName = (ctx: Executor.QueryContext): string =>
  ctx.type === "RAW" ? (/^\s*([A-Za-z]+)/.exec(ctx.statement.sql)?.[1]?.toUpperCase() ?? "RAW") : ctx.type

/**
 * The span's name: the query type and the table (`SELECT users`), or the type alone without a table.
 *
 * @since 0.1.0 @category naming
 */
export const spanName = (ctx: Executor.QueryContext): string =>
  ctx.table === "" ? ctx.type : `${ctx.type} ${ctx.table}`

/**
 * The tracing middleware.
 *
 * @since 0.1.0 @category constructors
 */
export const make =
  (options: Options = {}): Executor.Middleware =>
  (next) =>
  (ctx) =>
    Effect.flatMap(FiberRef.get(ctx.session.transaction), (tx) => {
      const attributes: Record<string, unknown> = {
        "db.system.name": options.systemName ?? systemName(ctx),
        "db.operation.name": operationName(ctx),
        "db.query.text": ctx.statement.sql
      }
      if (ctx.table !== "") attributes["db.collection.name"] = ctx.table
      if (Option.isSome(tx)) attributes[transactionAttribute] = tx.value.id
      return next(ctx).pipe(
        Effect.tapError((error) => Effect.annotateCurrentSpan("error.type", error._tag)),
        // The stack would point into this middleware, not the caller: not worth an Error per query.
        Effect.withSpan(spanName(ctx), { kind: "client", attributes, captureStackTrace: false })
      )
    })

/**
 * Wraps the Executor below in the tracing middleware.
 *
 * @since 0.1.0 @category layers
 */
export const layer = (options: Options = {}): Layer.Layer<Executor.Executor, never, Executor.Executor> =>
  Executor.layerMiddleware(make(options))
