/**
 * The one query service. Every builder compiles its statement once into a `QueryContext` and hands
 * it to `Executor.execute`; middleware wraps that handler (first installed = outermost).
 *
 * @since 0.1.0
 */
import * as SqlClient from "@effect/sql/SqlClient"
import type * as SqlConnection from "@effect/sql/SqlConnection"
import { Chunk, Context, Effect, FiberRef, Layer, Stream } from "effect"
import { globalValue } from "effect/GlobalValue"
import type { EntityModel } from "../Schema/EntityModel.js"
import type { Compiled } from "./Compiler.js"
import type { Description } from "./Description.js"
import { fromDriver, type QueryError } from "./QueryError.js"
import * as Session from "./Session.js"

/** @since 0.1.0 @category models */
export type QueryType = "SELECT" | "INSERT" | "UPDATE" | "DELETE" | "RAW"

/** A result row keyed by column (or alias) name, as the driver returns it. @since 0.1.0 @category models */
export type Row = SqlConnection.Row

/** Everything a handler knows about one query. @since 0.1.0 @category models */
export interface QueryContext {
  readonly type: QueryType
  /** The entity the statement is about; absent for raw statements without an entity. */
  readonly model: EntityModel | undefined
  readonly table: string
  /** Compiled once; a middleware may hand `next` a context with a rewritten statement. */
  readonly statement: Compiled
  /** What the statement is, decided once when it was built: the builder's node, or for RAW text its operation and the tables it writes. */
  readonly description: Description
  /** `rows`: the statement yields rows; `exec`: it yields a count (and maybe rows, with RETURNING). */
  readonly expects: "rows" | "exec"
  readonly session: Session.Session
}

/**
 * The SQL text to show in logs, spans and errors: the statement's, or its redacted form when it has
 * one (`Compiled.display`). Builders bind every value, so their text holds none.
 *
 * @since 0.1.0 @category accessors
 */
export const displaySql = (ctx: QueryContext): string => ctx.statement.display ?? ctx.statement.sql

/** @since 0.1.0 @category models */
export type QueryResult =
  | { readonly _tag: "Rows"; readonly rows: ReadonlyArray<Row> }
  | {
      readonly _tag: "Exec"
      readonly rowsAffected: number
      /** The id the database generated, as the driver reported it (see `Insert` for the normalised meaning). */
      readonly lastInsertId: number | bigint | undefined
      /** Rows of a RETURNING clause; empty otherwise. */
      readonly rows: ReadonlyArray<Row>
    }

/** @since 0.1.0 @category models */
export type Handler = (ctx: QueryContext) => Effect.Effect<QueryResult, QueryError>

/** The streaming form of a handler: the rows of a SELECT as they arrive. @since 0.1.0 @category models */
export type StreamHandler = (ctx: QueryContext) => Stream.Stream<Row, QueryError>

/**
 * An aspect around the handler: it may observe, rewrite the statement, fail, or answer by itself.
 * `stream` is its streaming form; a middleware without one still sees every stream: the stream's
 * rows are collected and handed through its effect form (so it holds the whole result in memory).
 *
 * @since 0.1.0 @category models
 */
export interface Middleware {
  (next: Handler): Handler
  readonly stream?: ((next: StreamHandler) => StreamHandler) | undefined
}

/**
 * A middleware with its streaming form.
 *
 * @since 0.1.0 @category constructors
 */
export const middleware = (
  execute: (next: Handler) => Handler,
  stream: (next: StreamHandler) => StreamHandler
): Middleware => Object.assign((next: Handler) => execute(next), { stream })

/** @since 0.1.0 @category models */
export interface ExecutorService {
  readonly session: Session.Session
  readonly execute: Handler
  /** Streams the rows of a SELECT, through the same middleware and transaction as `execute`. */
  readonly stream: StreamHandler
}

/** @since 0.1.0 @category tags */
export class Executor extends Context.Tag("effect-dal/Executor")<Executor, ExecutorService>() {}

/**
 * True inside a span that stands for the query (the `Tracing` middleware's): the statement then runs
 * without @effect/sql's own `sql.execute` span, so a query makes one client span, not two.
 *
 * @since 0.1.0 @category fiber refs
 */
export const querySpanOpen: FiberRef.FiberRef<boolean> = globalValue(
  Symbol.for("effect-dal/Executor/querySpanOpen"),
  () => FiberRef.unsafeMake(false)
)

const untraced = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.flatMap(FiberRef.get(querySpanOpen), (open) =>
    open ? Effect.withTracerEnabled(effect, false) : effect
  )

/**
 * SQLite's driver runs in safe-integer mode (integers arrive as bigint, so nothing was rounded);
 * each becomes a number when it fits exactly, else its digits, which a number schema refuses
 * (`DecodeError`) and `Schema.BigInt` reads, as on MySQL and PostgreSQL.
 */
const exactIntegers = (rows: ReadonlyArray<Row>): ReadonlyArray<Row> => {
  for (const row of rows) {
    for (const key in row) {
      const value = row[key]
      if (typeof value === "bigint") {
        ;(row as Record<string, unknown>)[key] =
          value >= Number.MIN_SAFE_INTEGER && value <= Number.MAX_SAFE_INTEGER ? Number(value) : String(value)
      }
    }
  }
  return rows
}

/**
 * The handler at the bottom of the chain: runs the statement on the session's connection.
 *
 * @since 0.1.0 @category constructors
 */
export const baseHandler = (session: Session.Session): Handler => {
  const safeIntegers = session.dialect.safeIntegers
  const exact = (effect: Effect.Effect<ReadonlyArray<Row>, unknown>) =>
    safeIntegers
      ? Effect.map(Effect.provideService(effect, SqlClient.SafeIntegers, true), exactIntegers)
      : effect
  return (ctx) => {
    const statement = session.sql.unsafe<Row>(ctx.statement.sql, ctx.statement.params)
    const onFailure = (e: unknown) => fromDriver(e, displaySql(ctx))
    return Session.run(
      session,
      untraced(
        ctx.expects === "rows"
          ? Effect.mapBoth(exact(statement.withoutTransform), {
              onFailure,
              onSuccess: (rows): QueryResult => ({ _tag: "Rows", rows })
            })
          : Effect.mapBoth(
              safeIntegers
                ? Effect.provideService(statement.raw, SqlClient.SafeIntegers, true)
                : statement.raw,
              {
                onFailure,
                onSuccess: (raw): QueryResult => {
                  if (Array.isArray(raw)) {
                    const rows = safeIntegers ? exactIntegers(raw) : raw
                    return { _tag: "Exec", rowsAffected: rows.length, lastInsertId: undefined, rows }
                  }
                  return { _tag: "Exec", ...session.dialect.execResult(raw) }
                }
              }
            )
      )
    )
  }
}

/**
 * The stream handler at the bottom of the chain: on the fiber's transaction connection when it holds
 * one. Dialects with a server-side row stream read rows as they come (MySQL/MariaDB: a prepared
 * statement's row stream; PostgreSQL: a cursor); SQLite reads the whole result, then streams it.
 *
 * @since 0.1.0 @category constructors
 */
export const baseStreamHandler = (session: Session.Session): StreamHandler => {
  const execute = baseHandler(session)
  return (ctx) => {
    if (!session.dialect.serverStream) {
      // Like the server-side streams, which read the connection directly: no @effect/sql span of its own.
      const rows = Effect.locally(execute(ctx), querySpanOpen, true)
      return Stream.flatMap(Stream.fromEffect(rows), (result) => Stream.fromIterable(result.rows))
    }
    return Stream.mapError(
      Session.runStream(session, (connection) =>
        connection.executeStream(ctx.statement.sql, ctx.statement.params, undefined)
      ),
      (e) => fromDriver(e, displaySql(ctx))
    )
  }
}

/**
 * The Executor of a session, with no middleware.
 *
 * @since 0.1.0 @category constructors
 */
export const make = (session: Session.Session): ExecutorService => ({
  session,
  execute: baseHandler(session),
  stream: baseStreamHandler(session)
})

/** Wraps a handler in middleware; the first listed is the outermost. @since 0.1.0 @category combinators */
export const applyMiddleware = (handler: Handler, middleware: ReadonlyArray<Middleware>): Handler =>
  middleware.reduceRight((next, mw) => mw(next), handler)

/** A middleware's streaming form, or its effect form over the collected rows when it has none. */
const streamForm =
  (mw: Middleware) =>
  (next: StreamHandler): StreamHandler => {
    if (mw.stream !== undefined) return mw.stream(next)
    const collected = mw((ctx) =>
      Effect.map(
        Stream.runCollect(next(ctx)),
        (rows): QueryResult => ({ _tag: "Rows", rows: Chunk.toReadonlyArray(rows) })
      )
    )
    return (ctx) =>
      Stream.flatMap(Stream.fromEffect(collected(ctx)), (result) => Stream.fromIterable(result.rows))
  }

/**
 * Wraps a stream handler in middleware (their streaming forms); the first listed is the outermost.
 *
 * @since 0.1.0 @category combinators
 */
export const applyStreamMiddleware = (
  handler: StreamHandler,
  middleware: ReadonlyArray<Middleware>
): StreamHandler => middleware.reduceRight((next, mw) => streamForm(mw)(next), handler)

/**
 * An Executor wrapped in middleware, both its handler and its stream handler.
 *
 * @since 0.1.0 @category combinators
 */
export const wrap = (executor: ExecutorService, middleware: ReadonlyArray<Middleware>): ExecutorService => ({
  ...executor,
  execute: applyMiddleware(executor.execute, middleware),
  stream: applyStreamMiddleware(executor.stream, middleware)
})

/**
 * A Layer that wraps the Executor below it in middleware (first listed = outermost).
 *
 * @since 0.1.0 @category layers
 */
export const layerMiddleware = (
  ...middleware: ReadonlyArray<Middleware>
): Layer.Layer<Executor, never, Executor> =>
  Layer.effect(
    Executor,
    Effect.map(Executor, (ex) => wrap(ex, middleware))
  )

/**
 * Runs `effect` with `middleware` added outside the current Executor's chain.
 *
 * @since 0.1.0 @category combinators
 */
export const withMiddleware =
  (...middleware: ReadonlyArray<Middleware>) =>
  <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R | Executor> =>
    Effect.updateService(effect, Executor, (ex) => wrap(ex, middleware))
