/**
 * One span per query, named `<TYPE> <table>` (e.g. `SELECT users`), carrying the OpenTelemetry
 * database attributes (`db.system.name`, `db.namespace`, `server.address`, `server.port`,
 * `db.operation.name`, `db.collection.name`, `db.query.text`; the text has placeholders, never
 * values). It is the query's only client span: the Executor runs @effect/sql's statements without
 * their own `sql.execute` span inside it (without this middleware, @effect/sql's span remains the
 * query's one span). A stream's span lasts until the stream ends. It is a child of whatever span is current, so it nests under the caller's
 * span and, inside a transaction, under the transaction's. A failure ends the span with the failing
 * exit (exporters record it as the span's error) and sets `error.type` to the error's tag.
 *
 * @since 0.1.0
 */
import { Effect, FiberRef, type Layer, Option, Stream } from "effect"
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

/** The dialect's system name, or `mariadb` when the database URL said `mariadb://`. */
const systemName = (ctx: Executor.QueryContext): string =>
  ctx.session.label.startsWith("mariadb:") ? "mariadb" : ctx.session.dialect.systemName

/** RAW statements report their operation as the lexer read it (`SELECT`, `CALL`, …), after comments and `WITH`. */
const operationName = (ctx: Executor.QueryContext): string =>
  ctx.description._tag === "Raw" ? ctx.description.operation || "RAW" : ctx.type

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
export const make = (options: Options = {}): Executor.Middleware => {
  const spanOptions = (ctx: Executor.QueryContext, tx: Option.Option<{ readonly id: string }>) => {
    const attributes: Record<string, unknown> = {
      ...ctx.session.attributes,
      "db.system.name": options.systemName ?? systemName(ctx),
      "db.operation.name": operationName(ctx),
      "db.query.text": Executor.displaySql(ctx)
    }
    if (ctx.table !== "") attributes["db.collection.name"] = ctx.table
    if (Option.isSome(tx)) attributes[transactionAttribute] = tx.value.id
    // The stack would point into this middleware, not the caller: not worth an Error per query.
    return { kind: "client", attributes, captureStackTrace: false } as const
  }
  const errorType = (error: { readonly _tag: string }) => Effect.annotateCurrentSpan("error.type", error._tag)
  return Executor.middleware(
    (next) => (ctx) =>
      Effect.flatMap(FiberRef.get(ctx.session.transaction), (tx) =>
        next(ctx).pipe(
          Effect.tapError(errorType),
          Effect.locally(Executor.querySpanOpen, true),
          Effect.withSpan(spanName(ctx), spanOptions(ctx, tx))
        )
      ),
    (next) => (ctx) =>
      Stream.unwrap(
        Effect.map(FiberRef.get(ctx.session.transaction), (tx) =>
          next(ctx).pipe(Stream.tapError(errorType), Stream.withSpan(spanName(ctx), spanOptions(ctx, tx)))
        )
      )
  )
}

/**
 * Wraps the Executor below in the tracing middleware.
 *
 * @since 0.1.0 @category layers
 */
export const layer = (options: Options = {}): Layer.Layer<Executor.Executor, never, Executor.Executor> =>
  Executor.layerMiddleware(make(options))
