/**
 * The one query service. Every builder compiles its statement once into a `QueryContext` and hands
 * it to `Executor.execute`; middleware wraps that handler (first installed = outermost).
 *
 * @since 0.1.0
 */
import type * as SqlConnection from "@effect/sql/SqlConnection"
import { Context, Effect, Layer, Stream } from "effect"
import type { EntityModel } from "../Schema/EntityModel.js"
import type { Compiled } from "./Compiler.js"
import type { DialectName } from "./Dialect.js"
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
  /** The builder's node tree (or the raw SQL text for RAW). */
  readonly builder: unknown
  /** `rows`: the statement yields rows; `exec`: it yields a count (and maybe rows, with RETURNING). */
  readonly expects: "rows" | "exec"
  readonly session: Session.Session
}

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

/**
 * An aspect around the handler: it may observe, rewrite the statement, fail, or answer by itself.
 *
 * @since 0.1.0 @category models
 */
export type Middleware = (next: Handler) => Handler

/** @since 0.1.0 @category models */
export interface ExecutorService {
  readonly session: Session.Session
  readonly execute: Handler
  /** Streams the rows of a SELECT; runs on the driver directly, not through middleware. */
  readonly stream: (ctx: QueryContext) => Stream.Stream<Row, QueryError>
}

/** @since 0.1.0 @category tags */
export class Executor extends Context.Tag("effect-dal/Executor")<Executor, ExecutorService>() {}

const num = (u: unknown): number => (typeof u === "number" ? u : typeof u === "bigint" ? Number(u) : 0)

const field = (raw: unknown, key: string): unknown =>
  typeof raw === "object" && raw !== null ? (raw as Record<string, unknown>)[key] : undefined

const execResult = (dialect: DialectName, raw: unknown): QueryResult => {
  if (Array.isArray(raw))
    return { _tag: "Exec", rowsAffected: raw.length, lastInsertId: undefined, rows: raw }
  switch (dialect) {
    case "mysql": {
      const id = field(raw, "insertId")
      return {
        _tag: "Exec",
        rowsAffected: num(field(raw, "affectedRows")),
        lastInsertId:
          typeof id === "number" || typeof id === "bigint" ? (id === 0 ? undefined : id) : undefined,
        rows: []
      }
    }
    case "sqlite": {
      const id = field(raw, "lastInsertRowid")
      return {
        _tag: "Exec",
        rowsAffected: num(field(raw, "changes")),
        lastInsertId: typeof id === "number" || typeof id === "bigint" ? id : undefined,
        rows: []
      }
    }
    case "pg": {
      const rows = field(raw, "rows")
      return {
        _tag: "Exec",
        rowsAffected: num(field(raw, "rowCount")),
        lastInsertId: undefined,
        rows: Array.isArray(rows) ? rows : []
      }
    }
  }
}

/**
 * The handler at the bottom of the chain: runs the statement on the session's connection.
 *
 * @since 0.1.0 @category constructors
 */
export const baseHandler =
  (session: Session.Session): Handler =>
  (ctx) => {
    const statement = session.sql.unsafe<Row>(ctx.statement.sql, ctx.statement.params)
    const onFailure = (e: unknown) => fromDriver(e, ctx.statement.sql)
    return Session.run(
      session,
      ctx.expects === "rows"
        ? Effect.mapBoth(statement.withoutTransform, {
            onFailure,
            onSuccess: (rows): QueryResult => ({ _tag: "Rows", rows })
          })
        : Effect.mapBoth(statement.raw, {
            onFailure,
            onSuccess: (raw) => execResult(session.dialect.name, raw)
          })
    )
  }

/**
 * The Executor of a session, with no middleware.
 *
 * @since 0.1.0 @category constructors
 */
export const make = (session: Session.Session): ExecutorService => ({
  session,
  execute: baseHandler(session),
  stream: (ctx) => {
    const statement = session.sql.unsafe<Row>(ctx.statement.sql, ctx.statement.params)
    // @effect/sql-sqlite-node has no row stream: SQLite reads the whole result, then streams it.
    const rows: Stream.Stream<Row, unknown> =
      session.dialect.name === "sqlite"
        ? Stream.flatMap(Stream.fromEffect(statement.withoutTransform), Stream.fromIterable)
        : statement.stream
    return Stream.mapError(Stream.unwrap(Session.run(session, Effect.succeed(rows))), (e) =>
      fromDriver(e, ctx.statement.sql)
    )
  }
})

/** Wraps a handler in middleware; the first listed is the outermost. @since 0.1.0 @category combinators */
export const applyMiddleware = (handler: Handler, middleware: ReadonlyArray<Middleware>): Handler =>
  middleware.reduceRight((next, mw) => mw(next), handler)

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
    Effect.map(Executor, (ex) => ({ ...ex, execute: applyMiddleware(ex.execute, middleware) }))
  )

/**
 * Runs `effect` with `middleware` added outside the current Executor's chain.
 *
 * @since 0.1.0 @category combinators
 */
export const withMiddleware =
  (...middleware: ReadonlyArray<Middleware>) =>
  <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R | Executor> =>
    Effect.updateService(effect, Executor, (ex) => ({
      ...ex,
      execute: applyMiddleware(ex.execute, middleware)
    }))
