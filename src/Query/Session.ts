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
import { Context, Effect, FiberRef, Option } from "effect"
import type { EntityRegistryService } from "../Schema/EntityRegistry.js"
import type { Dialect } from "./Dialect.js"

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
}

/** @since 0.1.0 @category constructors */
export const make = (options: {
  readonly label: string
  readonly dialect: Dialect
  readonly sql: SqlClient.SqlClient
  readonly registry: EntityRegistryService
}): Session => ({ ...options, transaction: FiberRef.unsafeMake(Option.none<TransactionState>()) })

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
