/**
 * A per-query timeout. The query fails with `QueryTimeoutError` at its deadline; inside a transaction
 * that failure rolls the transaction back (the transaction ends on a failed exit), unless the caller
 * catches it inside. Caught, MariaDB's transaction goes on; PostgreSQL's is aborted like after any
 * failed statement (its COMMIT fails), so there wrap the statement in `Tx.run(…, { propagation:
 * "nested" })` and catch outside that savepoint to go on.
 *
 * Failing the query is not enough: the database must stop working on it and give the connection
 * back, without needing a second connection to ask it to (with the pool saturated, or a pool of one,
 * there is none). So where the database allows it the statement is bounded on the server itself
 * (`Dialect.transactions.statementTimeout`), and the server's own error becomes `QueryTimeoutError`:
 * - `setStatement` (MariaDB): `SET STATEMENT max_statement_time=<seconds> FOR <statement>`, detected
 *   once per client with `SELECT VERSION()` (MySQL lacks it). The rewritten SQL is what inner
 *   middleware and the database see.
 * - `setLocal` (PostgreSQL): `statement_timeout` set for this statement only (`set_config(…, true)`).
 *   Inside a transaction it is set before the statement and put back after it. Outside one the
 *   statement runs in a transaction of its own on one reserved connection (BEGIN, the bound,
 *   the statement, COMMIT): the same one connection an autocommit statement would use. The bound
 *   is the time left when the connection is there, so a wait for the pool counts too.
 * - `none` (SQLite): statements run synchronously in-process; a timeout cannot cut one short.
 *
 * Applies to SELECT, INSERT, UPDATE and DELETE (RAW: by its described operation; other statements, such as
 * DDL, are only timed on the client). Once a statement is bounded on the server, the client waits a
 * grace second past the deadline for the server's answer before it gives up by itself: interrupting
 * a running statement earlier would make the driver ask a second connection to cancel it.
 *
 * @since 0.1.0
 */
import { Deferred, Duration, Effect, Either, FiberRef, type Layer, Option } from "effect"
import { globalValue } from "effect/GlobalValue"
import * as Executor from "../Query/Executor.js"
import * as Engine from "../Query/internal/transaction.js"
import { DatabaseError, type QueryError, QueryTimeoutError } from "../Query/QueryError.js"
import * as Session from "../Query/Session.js"
import { TxError } from "../Query/TxError.js"

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
export const current: FiberRef.FiberRef<Option.Option<Duration.Duration>> = globalValue(
  "effect-dal/Middleware/Timeout/current",
  () => FiberRef.unsafeMake(Option.none<Duration.Duration>())
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

/** How long the client waits past the deadline for the server to stop a statement it bounded. */
const grace = Duration.seconds(1)

const fieldIn = (error: unknown, key: string): unknown => {
  let current: unknown = error
  for (let depth = 0; depth < 6 && typeof current === "object" && current !== null; depth++) {
    if (key in current) return (current as Record<string, unknown>)[key]
    current = "cause" in current ? current.cause : undefined
  }
  return undefined
}

/**
 * The server stopped the statement at the bound this middleware set: MariaDB's ER_STATEMENT_TIMEOUT
 * (1969), or PostgreSQL's query_canceled (57014) "due to statement timeout" (a cancel by an operator
 * is 57014 too, and stays a `DatabaseError`).
 */
const stoppedByServer = (e: unknown): boolean =>
  e instanceof DatabaseError &&
  (fieldIn(e.cause, "errno") === 1969 ||
    (fieldIn(e.cause, "code") === "57014" && /statement timeout/i.test(e.detail)))

/** Whether the session's server is MariaDB: the session's one probe of server facts (`Session.server`). */
const isMariaDb = (ctx: Executor.QueryContext): Effect.Effect<boolean> =>
  // Unknown is treated as "not MariaDB": the client-side timeout still applies.
  Effect.orElseSucceed(
    Effect.map(Session.server(ctx.session), (server) => server.mariadb),
    () => false
  )

/** DML and SELECT only (RAW: by its described operation), and never twice (an outer Timeout already bounded it). */
const boundable = (ctx: Executor.QueryContext) =>
  ctx.description._tag === "Raw"
    ? ["SELECT", "INSERT", "UPDATE", "DELETE", "REPLACE"].includes(ctx.description.operation)
    : !/^\s*SET\s+STATEMENT\b/i.test(ctx.statement.sql)

/** `SET STATEMENT` takes seconds; the server-side bound equals the client's. */
const setStatement = (ctx: Executor.QueryContext, duration: Duration.Duration): Executor.QueryContext => {
  const seconds = (Math.max(1, Math.ceil(Duration.toMillis(duration))) / 1000).toFixed(3)
  return {
    ...ctx,
    statement: {
      ...ctx.statement,
      sql: `SET STATEMENT max_statement_time=${seconds} FOR ${ctx.statement.sql}`
    }
  }
}

/** Runs `sql` on the fiber's transaction connection (the caller checked there is one). */
const onTransaction = (session: Session.Session, sql: string, params: ReadonlyArray<unknown>) =>
  Effect.mapError(
    Session.run(session, session.sql.unsafe<{ readonly prev?: unknown }>(sql, params).withoutTransform),
    (e) => new DatabaseError({ reason: "other", detail: e.message, sql, cause: e })
  )

/** Sets PostgreSQL's statement_timeout for the rest of the transaction; returns the value it replaced. */
const setLocal = (session: Session.Session, millis: number) =>
  Effect.map(
    onTransaction(
      session,
      // The CTE is read first: `prev` is the value before set_config changes it.
      "WITH p AS MATERIALIZED (SELECT current_setting('statement_timeout') AS prev) SELECT p.prev, set_config('statement_timeout', $1, true) FROM p",
      [`${Math.max(1, Math.ceil(millis))}ms`]
    ),
    (rows) => String(rows[0]?.prev ?? "0")
  )

const restoreLocal = (session: Session.Session, previous: string) =>
  onTransaction(session, "SELECT set_config('statement_timeout', $1, true)", [previous])

/**
 * The statement with `statement_timeout` set to the time left before `deadline`, on the transaction
 * the fiber holds, put back afterwards (PostgreSQL refuses anything after a failed statement until
 * the transaction or savepoint rolls back, which undoes the setting anyway).
 */
const boundedInTransaction = <A, E, R>(
  session: Session.Session,
  deadline: number,
  bounded: Deferred.Deferred<void>,
  statement: Effect.Effect<A, E, R>,
  timedOut: () => QueryTimeoutError
): Effect.Effect<A, E | DatabaseError | QueryTimeoutError, R> =>
  Effect.flatMap(
    Effect.clockWith((clock) => clock.currentTimeMillis),
    (now): Effect.Effect<A, E | DatabaseError | QueryTimeoutError, R> =>
      deadline - now <= 0
        ? Effect.fail(timedOut())
        : Effect.flatMap(
            // Not interrupted half-way: interrupting a running statement needs a second connection.
            Effect.uninterruptible(
              Effect.tap(setLocal(session, deadline - now), () => Deferred.succeed(bounded, undefined))
            ),
            (previous) => Effect.tap(statement, () => restoreLocal(session, previous))
          )
  )

/**
 * The transaction of its own that a statement outside any runs in on PostgreSQL. Its BEGIN and COMMIT
 * failures are reported as the driver's error an autocommit statement would have had.
 */
const boundedAlone = <A, E, R>(
  session: Session.Session,
  work: Effect.Effect<A, E, R>
): Effect.Effect<A, E | DatabaseError | TxError, R> =>
  Either.match(Engine.statementsFor(session, {}), {
    onLeft: Effect.fail,
    onRight: (statements) =>
      Effect.catchIf(
        Engine.within(session, { _tag: "Root", statements }, work),
        (e): e is TxError & { readonly cause: DatabaseError } =>
          e instanceof TxError &&
          (e.reason === "begin" || e.reason === "commit") &&
          e.cause instanceof DatabaseError,
        (e) => Effect.fail(e.cause)
      )
  })

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
    Effect.gen(function* (): Effect.fn.Return<Executor.QueryResult, QueryError> {
      const duration = Option.getOrElse(yield* FiberRef.get(current), () => fallback)
      const timedOut = () =>
        new QueryTimeoutError({
          table: ctx.table,
          sql: ctx.statement.sql,
          timeoutMillis: Duration.toMillis(duration)
        })
      const clientOnly = Effect.timeoutFail(next(ctx), { duration, onTimeout: timedOut })
      const style = ctx.session.dialect.transactions.statementTimeout
      if (!serverSide || style === "none" || !boundable(ctx)) return yield* clientOnly
      // Set once the server bounds the statement: from then on the client waits for the server's answer.
      const bounded = yield* Deferred.make<void>()
      let work: Effect.Effect<Executor.QueryResult, QueryError>
      if (style === "setStatement") {
        if (!(yield* isMariaDb(ctx))) return yield* clientOnly
        yield* Deferred.succeed(bounded, undefined)
        work = next(setStatement(ctx, duration))
      } else {
        const deadline =
          (yield* Effect.clockWith((clock) => clock.currentTimeMillis)) + Duration.toMillis(duration)
        const frame = yield* Engine.active(ctx.session)
        const tx = yield* FiberRef.get(ctx.session.transaction)
        // A transaction that has ended refuses the statement anyway.
        if (Option.isNone(frame) && Option.isSome(tx)) return yield* clientOnly
        const statement = boundedInTransaction(ctx.session, deadline, bounded, next(ctx), timedOut)
        work = Option.isSome(frame) ? statement : boundedAlone(ctx.session, statement)
      }
      const clock = Effect.sleep(duration).pipe(
        Effect.zipRight(Deferred.isDone(bounded)),
        Effect.flatMap((isBounded) => (isBounded ? Effect.sleep(grace) : Effect.void)),
        Effect.zipRight(Effect.fail(timedOut()))
      )
      return yield* Effect.raceFirst(
        Effect.catchIf(work, stoppedByServer, () => Effect.fail(timedOut())),
        clock
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
