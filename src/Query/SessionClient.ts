/**
 * The Database's own `SqlClient`, bound to its Session: @effect/sql code (`sql\`…\``, `SqlSchema`,
 * `SqlResolver`, `Model.makeRepository`) composes with this library's transactions.
 *
 * - Inside a transaction the fiber holds on this database (`Tx.run`, `Tx.begin`, `Batch`), every
 *   statement runs on the transaction's connection, with its guarantees (the statement lock,
 *   statements after the end refused).
 * - Outside one, statements run on the pool exactly as the driver's client runs them, whatever
 *   `TransactionConnection` another database's client left in the context: a transaction on one
 *   database never captures another database's statements.
 * - `withTransaction` is this library's transaction (a savepoint when one is running), so a failed
 *   COMMIT or ROLLBACK is a typed failure (@effect/sql's `SqlError` whose `cause` is the `TxError`)
 *   instead of a defect, and savepoints never collide.
 *
 * @since 0.1.0
 */
import * as SqlClient from "@effect/sql/SqlClient"
import type * as SqlConnection from "@effect/sql/SqlConnection"
import { SqlError as DriverError } from "@effect/sql/SqlError"
import * as Statement from "@effect/sql/Statement"
import { Chunk, Context, Effect, Either, Layer, Option, type Scope, Stream } from "effect"
import type { DialectName } from "./Dialect.js"
import { Executor } from "./Executor.js"
import * as Engine from "./internal/transaction.js"
import * as Session from "./Session.js"
import { TxError } from "./TxError.js"

type TransformRows = (<A extends object>(rows: ReadonlyArray<A>) => ReadonlyArray<A>) | undefined

const systemName: Record<DialectName, string> = { mysql: "mysql", pg: "postgresql", sqlite: "sqlite" }

/**
 * Compiles through the driver's client, so dialect details (placeholders, quoting, custom fragments
 * such as PostgreSQL's JSON) stay exactly the driver's.
 */
const compilerOf = (session: Session.Session): Statement.Compiler => {
  const make = (forceWithoutTransform: boolean): Statement.Compiler => {
    const compiler: Statement.Compiler = {
      dialect: session.dialect.name,
      compile: (fragment, withoutTransform) =>
        session.sql`${fragment}`.compile(forceWithoutTransform || withoutTransform),
      get withoutTransform() {
        return forceWithoutTransform ? compiler : make(true)
      }
    }
    return compiler
  }
  return make(false)
}

/**
 * A connection that runs each statement on the driver's pool, outside any transaction of another
 * database (`Session.run` strips @effect/sql's global `TransactionConnection`). Its own span is
 * switched off: the statement of this client already has one.
 */
const poolConnection = (session: Session.Session): SqlConnection.Connection => {
  const outside = <A>(effect: Effect.Effect<A, DriverError>) =>
    Effect.withTracerEnabled(Session.run(session, effect), false)
  const transformed = (rows: ReadonlyArray<object>, transformRows: TransformRows) =>
    transformRows === undefined ? rows : transformRows(rows)
  return {
    execute: (sql, params, transformRows) =>
      outside(
        Effect.map(session.sql.unsafe(sql, params).withoutTransform, (rows) =>
          transformed(rows, transformRows)
        )
      ),
    executeRaw: (sql, params) => outside(session.sql.unsafe(sql, params).raw),
    executeValues: (sql, params) => outside(session.sql.unsafe(sql, params).values),
    executeUnprepared: (sql, params, transformRows) =>
      outside(
        Effect.map(session.sql.unsafe(sql, params).unprepared, (rows) => transformed(rows, transformRows))
      ),
    executeStream: (sql, params, transformRows) =>
      Stream.mapInputContext(
        Stream.mapChunks(session.sql.unsafe(sql, params).stream, (chunk) =>
          transformRows === undefined
            ? chunk
            : Chunk.unsafeFromArray(transformRows(Chunk.toReadonlyArray(chunk)))
        ),
        Context.omit(SqlClient.TransactionConnection)
      )
  }
}

const driverError = (error: TxError) => new DriverError({ message: error.message, cause: error })

/**
 * `withTransaction` on the engine: a transaction of its own, or a savepoint in the running one. Only
 * the engine's own failures become @effect/sql's `SqlError`; the work's failures pass unchanged.
 */
const withTransaction =
  (session: Session.Session) =>
  <R, E, A>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E | DriverError, R> =>
    Effect.suspend(() => {
      let ownFailure: unknown
      const tracked = Effect.tapError(effect, (e) =>
        Effect.sync(() => {
          ownFailure = e
        })
      )
      const run = Effect.flatMap(Engine.active(session), (current) =>
        Option.match(current, {
          onSome: (parent) => Engine.within(session, { _tag: "Savepoint", parent }, tracked),
          onNone: () =>
            Either.match(Engine.statementsFor(session, {}), {
              onLeft: Effect.fail,
              onRight: (statements) => Engine.within(session, { _tag: "Root", statements }, tracked)
            })
        })
      )
      return Effect.mapError(run, (e): E | DriverError =>
        // A TxError that the work itself failed with is the work's; any other one is the engine's.
        e instanceof TxError && e !== ownFailure ? driverError(e) : (e as E)
      )
    })

/**
 * The `SqlClient` of `session`: statements on the fiber's transaction on this database when it
 * holds one, on the pool otherwise; `withTransaction` on this library's engine.
 *
 * @since 0.1.0 @category constructors
 */
export const make = (session: Session.Session): SqlClient.SqlClient => {
  const pool = poolConnection(session)
  const acquirer: SqlConnection.Connection.Acquirer = Effect.withFiberRuntime((fiber) =>
    Effect.succeed(
      Option.match(fiber.getFiberRef(session.transaction), {
        onNone: () => pool,
        // An ended transaction's connection refuses the statement (TxError finished) rather than autocommit it.
        onSome: (state) => state.connection
      })
    )
  )
  // Inside a transaction, reserving is the transaction's connection: another one from the pool would
  // not see its writes, and would wait forever on a pool of one (SQLite's one connection included).
  const reserve: Effect.Effect<SqlConnection.Connection, DriverError, Scope.Scope> = Effect.withFiberRuntime(
    (fiber) =>
      Option.match(fiber.getFiberRef(session.transaction), {
        onNone: () => session.sql.reserve,
        onSome: (state) => Effect.succeed(state.connection)
      })
  )
  const statement = Statement.make(
    acquirer,
    compilerOf(session),
    [
      ["db.system.name", systemName[session.dialect.name]],
      ["effect_dal.database", session.label]
    ],
    undefined
  )
  // `safe` is the client itself, set once it exists (Object.assign would read a getter too early).
  const client = Object.assign(statement, {
    [SqlClient.TypeId]: SqlClient.TypeId,
    withoutTransforms: () => client,
    reserve,
    withTransaction: withTransaction(session),
    reactive: session.sql.reactive,
    reactiveMailbox: session.sql.reactiveMailbox
  }) as SqlClient.SqlClient
  Object.defineProperty(client, "safe", { value: client, enumerable: true })
  return client
}

/**
 * Replaces the `SqlClient` of a database layer by its Session's (`make`), keeping its Executor.
 *
 * @since 0.1.0 @category layers
 */
export const layer = <E, R>(
  database: Layer.Layer<Executor | SqlClient.SqlClient, E, R>
): Layer.Layer<Executor | SqlClient.SqlClient, E, R> =>
  Layer.effectContext(
    Effect.map(Executor, (executor) =>
      Context.make(Executor, executor).pipe(Context.add(SqlClient.SqlClient, make(executor.session)))
    )
  ).pipe(Layer.provide(database))
