/**
 * A per-query timeout. When it expires the query's fiber is interrupted and the query fails with
 * `QueryTimeoutError`; inside a transaction that failure rolls the transaction back (the transaction
 * ends on a failed exit), unless the caller catches it inside.
 *
 * Interrupting the fiber is not enough to stop the database working:
 * - PostgreSQL: `@effect/sql-pg` cancels the statement (`pg_cancel_backend`) when its fiber is interrupted.
 * - MariaDB: the driver has no cancellation, so the statement is also bounded on the server with
 *   `SET STATEMENT max_statement_time=<seconds> FOR <statement>` (detected once per client with
 *   `SELECT VERSION()`); the server stops it, frees the connection, and a transaction's ROLLBACK is
 *   not left queued behind it. The rewritten SQL is what inner middleware and the database see.
 *   Applies to SELECT, INSERT, UPDATE and DELETE (RAW: by its described operation, read past
 *   comments and `WITH`).
 * - MySQL (not MariaDB): no server-side bound; after the timeout the statement runs on until it
 *   ends, holding its connection.
 * - SQLite: statements run synchronously on the Node thread; a timeout cannot cut one short.
 *
 * @since 0.1.0
 */
import { Duration, Effect, FiberRef, type Layer, Option } from "effect"
import * as Executor from "../Query/Executor.js"
import { QueryTimeoutError } from "../Query/QueryError.js"
import * as Session from "../Query/Session.js"

/** @since 0.1.0 @category models */
export interface Options {
  readonly duration: Duration.DurationInput
  /** Also bound the statement on the server where the database supports it (default true). */
  readonly serverSide?: boolean
}

/**
 * A timeout for the queries of the current fiber that replaces the middleware's own duration.
 *
 * @since 0.1.0 @category fiber refs
 */
export const current: FiberRef.FiberRef<Option.Option<Duration.Duration>> = FiberRef.unsafeMake(
  Option.none<Duration.Duration>()
)

/**
 * Runs `effect` with its queries timed out after `duration` instead of the middleware's default
 * (longer for a report, shorter for a health check).
 *
 * @since 0.1.0 @category combinators
 */
export const withTimeout =
  (duration: Duration.DurationInput) =>
  <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
    Effect.locally(effect, current, Option.some(Duration.decode(duration)))

/** MariaDB's ER_STATEMENT_TIMEOUT: the server stopped a statement at max_statement_time. */
const mariadbStatementTimeout = 1969

const errnoIn = (error: unknown): number | undefined => {
  let current: unknown = error
  for (let depth = 0; depth < 6 && typeof current === "object" && current !== null; depth++) {
    if ("errno" in current && typeof current.errno === "number") return current.errno
    current = "cause" in current ? current.cause : undefined
  }
  return undefined
}

/** Whether each SqlClient's server is MariaDB, asked once per client. */
const mariadb = new WeakMap<object, boolean>()

const isMariaDb = (ctx: Executor.QueryContext): Effect.Effect<boolean> => {
  const known = mariadb.get(ctx.session.sql)
  if (known !== undefined) return Effect.succeed(known)
  return Session.run(
    ctx.session,
    ctx.session.sql.unsafe<{ readonly v: unknown }>("SELECT VERSION() AS v")
  ).pipe(
    Effect.map((rows) => String(rows[0]?.v ?? "").includes("MariaDB")),
    Effect.tap((is) => Effect.sync(() => mariadb.set(ctx.session.sql, is))),
    // Unknown is treated as "not MariaDB": the client-side timeout still applies.
    Effect.orElseSucceed(() => false)
  )
}

/** `SET STATEMENT` takes seconds; the server-side bound equals the client's. */
const bounded = (ctx: Executor.QueryContext, duration: Duration.Duration): Executor.QueryContext => {
  const seconds = (Math.max(1, Math.ceil(Duration.toMillis(duration))) / 1000).toFixed(3)
  return {
    ...ctx,
    statement: {
      ...ctx.statement,
      sql: `SET STATEMENT max_statement_time=${seconds} FOR ${ctx.statement.sql}`
    }
  }
}

/** DML and SELECT only (RAW: by first keyword), and never twice (an outer Timeout already bounded it). */
const boundable = (ctx: Executor.QueryContext) =>
  ctx.description._tag === "Raw"
    ? ["SELECT", "INSERT", "UPDATE", "DELETE", "REPLACE"].includes(ctx.description.operation)
    : !/^\s*SET\s+STATEMENT\b/i.test(ctx.statement.sql)

const serverBounded = (ctx: Executor.QueryContext, duration: Duration.Duration) =>
  ctx.session.dialect.name === "mysql" && boundable(ctx)
    ? Effect.map(isMariaDb(ctx), (is) => (is ? bounded(ctx, duration) : ctx))
    : Effect.succeed(ctx)

/**
 * The timeout middleware.
 *
 * @since 0.1.0 @category constructors
 */
export const make = (options: Options | Duration.DurationInput): Executor.Middleware => {
  const opts: Options = typeof options === "object" && "duration" in options ? options : { duration: options }
  const fallback = Duration.decode(opts.duration)
  const serverSide = opts.serverSide ?? true
  return (next) => (ctx) =>
    Effect.flatMap(FiberRef.get(current), (override) => {
      const duration = Option.getOrElse(override, () => fallback)
      const error = () =>
        new QueryTimeoutError({
          table: ctx.table,
          sql: ctx.statement.sql,
          timeoutMillis: Duration.toMillis(duration)
        })
      return Effect.flatMap(serverSide ? serverBounded(ctx, duration) : Effect.succeed(ctx), (run) =>
        next(run).pipe(
          Effect.catchIf(
            (e) => e._tag === "DatabaseError" && errnoIn(e.cause) === mariadbStatementTimeout,
            () => Effect.fail(error())
          ),
          Effect.timeoutFail({ duration, onTimeout: error })
        )
      )
    })
}

/**
 * Wraps the Executor below in the timeout middleware.
 *
 * @since 0.1.0 @category layers
 */
export const layer = (
  options: Options | Duration.DurationInput
): Layer.Layer<Executor.Executor, never, Executor.Executor> => Executor.layerMiddleware(make(options))
