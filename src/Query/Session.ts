/**
 * A Session is one database as the query layer sees it: its SqlClient, dialect and entity registry,
 * and the transaction (if any) that the current fiber holds on *this* database. Keeping the
 * transaction per session, instead of @effect/sql's one global `TransactionConnection` tag, is what
 * stops a transaction on one database from capturing another database's queries.
 *
 * @since 0.1.0
 */
import * as SqlClient from "@effect/sql/SqlClient"
import type * as SqlConnection from "@effect/sql/SqlConnection"
import { Context, Effect, FiberRef, Option, type Scope, Stream } from "effect"
import type { EntityRegistryService } from "../Schema/EntityRegistry.js"
import type { Dialect } from "./Dialect.js"
import { type DatabaseError, fromDriver } from "./QueryError.js"

/** What a transaction exposes to the query layer. @since 0.1.0 @category models */
export interface TransactionState {
  /** Identifies the transaction in spans and logs. */
  readonly id: string
  readonly connection: SqlConnection.Connection
  /** Runs `effect` after this transaction commits (never when it rolls back). */
  readonly afterCommit: (effect: Effect.Effect<void>) => Effect.Effect<void>
}

/** @since 0.1.0 @category models */
export interface Session {
  /** A label for the database (logs, spans); never contains credentials. */
  readonly label: string
  readonly dialect: Dialect
  readonly sql: SqlClient.SqlClient
  readonly registry: EntityRegistryService
  /** The transaction the current fiber holds on this database. */
  readonly transaction: FiberRef.FiberRef<Option.Option<TransactionState>>
  /** OpenTelemetry attributes of the database (`db.namespace`, `server.address`, `server.port`), for spans. */
  readonly attributes: Readonly<Record<string, string | number>>
  /** What the server is, asked once per session (see `server`). */
  readonly serverInfo: { current: ServerInfo | undefined }
}

/** Facts about the server behind a session, probed once. @since 0.1.0 @category models */
export interface ServerInfo {
  /** The server's version string (`SELECT VERSION()`, `sqlite_version()`). */
  readonly version: string
  /** The server is MariaDB (not MySQL). */
  readonly mariadb: boolean
  /** INSERT/DELETE ... RETURNING work on this server (PostgreSQL, SQLite, MariaDB 10.5+). */
  readonly returning: boolean
}

/** @since 0.1.0 @category constructors */
export const make = (options: {
  readonly label: string
  readonly dialect: Dialect
  readonly sql: SqlClient.SqlClient
  readonly registry: EntityRegistryService
  readonly attributes?: Readonly<Record<string, string | number>>
}): Session => ({
  ...options,
  attributes: options.attributes ?? {},
  transaction: FiberRef.unsafeMake(Option.none<TransactionState>()),
  serverInfo: { current: undefined }
})

const mariadbVersion = /^(\d+)\.(\d+)\..*mariadb/i

/**
 * What a version string says about the server: MariaDB or not, and whether it has INSERT/DELETE
 * ... RETURNING (MariaDB 10.5+; always on dialects whose `returning` is `always`).
 *
 * @since 0.1.0 @category server
 */
export const serverInfoOf = (dialect: Dialect, version: string): ServerInfo => {
  const match = mariadbVersion.exec(version)
  const mariadb = /mariadb/i.test(version)
  return {
    version,
    mariadb,
    returning:
      dialect.returning === "always" || (match !== null && Number(match[1]) * 100 + Number(match[2]) >= 1005)
  }
}

/**
 * The server's facts, probed on first use and then remembered for the life of the session: the one
 * place the library asks a server what it is.
 *
 * @since 0.1.0 @category server
 */
export const server = (session: Session): Effect.Effect<ServerInfo, DatabaseError> => {
  const known = session.serverInfo.current
  if (known !== undefined) return Effect.succeed(known)
  const probe = session.dialect.versionQuery
  return Effect.map(
    Effect.mapError(run(session, session.sql.unsafe<{ readonly v: unknown }>(probe).withoutTransform), (e) =>
      fromDriver(e, probe)
    ),
    (rows) => {
      const info = serverInfoOf(session.dialect, String(rows[0]?.v ?? ""))
      session.serverInfo.current = info
      return info
    }
  )
}

/**
 * Runs an @effect/sql statement on this session's transaction connection when the fiber holds one,
 * and on the pool otherwise, whatever `TransactionConnection` another database left in the context.
 *
 * @since 0.1.0 @category combinators
 */
export const run = <A, E, R>(session: Session, effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  // One runtime step reads both the transaction and the context: this runs for every query.
  Effect.withFiberRuntime((fiber) => {
    const tx = fiber.getFiberRef(session.transaction)
    if (Option.isSome(tx)) {
      return Effect.provideService(effect, SqlClient.TransactionConnection, [tx.value.connection, 0])
    }
    const context = fiber.getFiberRef(FiberRef.currentContext)
    return context.unsafeMap.has(SqlClient.TransactionConnection.key)
      ? // @effect/sql reads TransactionConnection optionally; no statement requires it in its type.
        Effect.mapInputContext(
          effect,
          (c: Context.Context<R>) => Context.omit(SqlClient.TransactionConnection)(c) as Context.Context<R>
        )
      : effect
  })

/**
 * A stream read from a connection of this session: the fiber's transaction connection when the fiber
 * that runs the stream holds one (read when the stream starts), or else a connection reserved from
 * the pool for as long as the stream runs.
 *
 * @since 0.1.0 @category combinators
 */
export const runStream = <A, E>(
  session: Session,
  f: (connection: SqlConnection.Connection) => Stream.Stream<A, E>
): Stream.Stream<A, E | unknown> =>
  Stream.unwrapScoped(
    Effect.withFiberRuntime<Stream.Stream<A, E>, unknown, Scope.Scope>((fiber) => {
      const tx = fiber.getFiberRef(session.transaction)
      return Option.isSome(tx) ? Effect.succeed(f(tx.value.connection)) : Effect.map(session.sql.reserve, f)
    })
  )
