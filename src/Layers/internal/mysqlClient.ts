/**
 * The MySQL/MariaDB SqlClient, built on mysql2 from @effect/sql's public parts. `@effect/sql-mysql2`
 * opens its pool with `multipleStatements: true` (whatever `poolConfig` says) and streams rows with
 * mysql2's `query`, which writes the values into the SQL text on the client, unaware of
 * `NO_BACKSLASH_ESCAPES`: a crafted value could run a second statement. This client opens its pool
 * with multiple statements off, and every statement with values runs as a prepared statement
 * (`execute`, streams included), so the server binds them. Only statements without values
 * (`BEGIN`, `COMMIT`...) may use the text protocol, and they are sent without interpolation.
 * @effect/sql's own `unprepared` text with values and several statements (its `Model.makeRepository`
 * inserts with `INSERT ...; SELECT ... LAST_INSERT_ID()`) runs statement by statement on one
 * connection, each prepared with its own share of the values: the same results, nothing interpolated.
 *
 * @internal
 */
import * as Reactivity from "@effect/experimental/Reactivity"
import * as Client from "@effect/sql/SqlClient"
import type { Connection } from "@effect/sql/SqlConnection"
import { SqlError } from "@effect/sql/SqlError"
import { asyncPauseResume } from "@effect/sql/SqlStream"
import { MysqlClient } from "@effect/sql-mysql2"
import { Duration, Effect, Layer, Redacted, type Scope, type Stream } from "effect"
import * as Mysql from "mysql2"
import { placeholders, splitStatements } from "../../Query/Description.js"
import * as Dialect from "../../Query/Dialect.js"

/** @internal */
export interface Options {
  readonly host: string
  readonly port: number
  readonly database: string
  readonly username?: string | undefined
  readonly password?: Redacted.Redacted | undefined
  readonly maxConnections: number
}

const fail = (message: string) => (cause: unknown) => new SqlError({ cause, message })

class PoolConnection implements Connection {
  private readonly conn: Mysql.Pool | Mysql.PoolConnection
  /** The pool itself: statements that must share a connection reserve one first. */
  private readonly pool: Mysql.Pool | undefined

  constructor(conn: Mysql.Pool | Mysql.PoolConnection, pool: Mysql.Pool | undefined) {
    this.conn = conn
    this.pool = pool
  }

  /** Runs `f` on one connection: this one, or one reserved from the pool for the duration. */
  private onOneConnection<A>(f: (connection: PoolConnection) => Effect.Effect<A, SqlError>) {
    const pool = this.pool
    if (pool === undefined) return f(this)
    return Effect.acquireUseRelease(
      Effect.async<Mysql.PoolConnection, SqlError>((resume) => {
        pool.getConnection((cause, conn) =>
          resume(cause ? Effect.fail(fail("Failed to acquire connection")(cause)) : Effect.succeed(conn))
        )
      }),
      (conn) => f(new PoolConnection(conn, undefined)),
      (conn) => Effect.sync(() => conn.release())
    )
  }

  /** Text with values: one prepared statement, or several in order on one connection, each bound by the server. */
  private statements(
    sql: string,
    params: ReadonlyArray<unknown>
  ): Effect.Effect<ReadonlyArray<object>, SqlError> {
    let parts: ReadonlyArray<string>
    try {
      parts = splitStatements(sql, Dialect.mysql)
    } catch (cause) {
      return Effect.fail(fail("Failed to read statement")(cause))
    }
    if (parts.length <= 1) return this.rows(sql, params, false, true)
    return this.onOneConnection((connection) => {
      let offset = 0
      // Like mysql2's answer to a multi-statement query: one result (a header or rows) per statement.
      return Effect.forEach(parts, (part) => {
        const count = placeholders(part, Dialect.mysql).length
        const values = params.slice(offset, offset + count)
        offset += count
        return Effect.map(connection.run(part, values, false, true), (result) => result as object)
      })
    })
  }

  private run(sql: string, params: ReadonlyArray<unknown>, rowsAsArray: boolean, prepared: boolean) {
    return Effect.async<unknown, SqlError>((resume) => {
      const callback = (cause: unknown, results: unknown) =>
        resume(cause ? Effect.fail(fail("Failed to execute statement")(cause)) : Effect.succeed(results))
      // With values: a prepared statement, bound by the server. Without: the text protocol, no interpolation.
      if (prepared || params.length > 0) {
        this.conn.execute({ sql, values: params as Array<unknown>, rowsAsArray }, callback)
      } else {
        this.conn.query({ sql, rowsAsArray }, callback)
      }
    })
  }

  private rows(sql: string, params: ReadonlyArray<unknown>, rowsAsArray: boolean, prepared: boolean) {
    return Effect.map(this.run(sql, params, rowsAsArray, prepared), (r) => (Array.isArray(r) ? r : []))
  }

  execute(
    sql: string,
    params: ReadonlyArray<unknown>,
    transformRows: (<A extends object>(rows: ReadonlyArray<A>) => ReadonlyArray<A>) | undefined
  ) {
    const rows = this.rows(sql, params, false, true)
    return transformRows ? Effect.map(rows, transformRows) : rows
  }
  executeRaw(sql: string, params: ReadonlyArray<unknown>) {
    return this.run(sql, params, false, true)
  }
  executeValues(sql: string, params: ReadonlyArray<unknown>) {
    return this.rows(sql, params, true, true) as Effect.Effect<
      ReadonlyArray<ReadonlyArray<unknown>>,
      SqlError
    >
  }
  executeUnprepared(
    sql: string,
    params: ReadonlyArray<unknown>,
    transformRows: (<A extends object>(rows: ReadonlyArray<A>) => ReadonlyArray<A>) | undefined
  ) {
    const rows: Effect.Effect<ReadonlyArray<object>, SqlError> = params.length === 0
      ? this.rows(sql, params, false, false)
      : this.statements(sql, params)
    return transformRows ? Effect.map(rows, (r) => transformRows(r)) : rows
  }
  executeStream(
    sql: string,
    params: ReadonlyArray<unknown>,
    transformRows: (<A extends object>(rows: ReadonlyArray<A>) => ReadonlyArray<A>) | undefined
  ): Stream.Stream<object, SqlError> {
    return asyncPauseResume<object, SqlError>((emit) => {
      // mysql2's execute has the same row stream as query, over a prepared statement.
      const command = this.conn.execute({ sql, values: params as Array<unknown> }) as unknown as {
        stream: () => NodeJS.ReadableStream & { destroy: () => void }
      }
      const rows = command.stream()
      let buffer: Array<object> = []
      let pending = false
      rows.on("error", (cause: unknown) => emit.fail(fail("Failed to stream statement")(cause)))
      rows.on("data", (row: object) => {
        buffer.push(row)
        if (!pending) {
          pending = true
          queueMicrotask(() => {
            const items = buffer
            buffer = []
            pending = false
            emit.array(transformRows ? transformRows(items) : items)
          })
        }
      })
      rows.on("end", () =>
        queueMicrotask(() => {
          if (buffer.length > 0) emit.array(buffer)
          emit.end()
        })
      )
      return {
        onInterrupt: Effect.sync(() => rows.destroy()),
        onPause: Effect.sync(() => rows.pause()),
        onResume: Effect.sync(() => rows.resume())
      }
    })
  }
}

const make = (
  options: Options
): Effect.Effect<Client.SqlClient, SqlError, Scope.Scope | Reactivity.Reactivity> =>
  Effect.gen(function* () {
    const pool = Mysql.createPool({
      host: options.host,
      port: options.port,
      database: options.database,
      ...(options.username === undefined ? {} : { user: options.username }),
      ...(options.password === undefined ? {} : { password: Redacted.value(options.password) }),
      multipleStatements: false,
      supportBigNumbers: true,
      connectionLimit: options.maxConnections,
      maxIdle: 0
    })
    yield* Effect.acquireRelease(
      Effect.async<void, SqlError>((resume) => {
        pool.query("SELECT 1", (cause) =>
          resume(cause ? Effect.fail(fail("MysqlClient: Failed to connect")(cause)) : Effect.void)
        )
      }),
      () => Effect.async<void>((resume) => pool.end(() => resume(Effect.void)))
    ).pipe(
      Effect.timeoutFail({
        duration: Duration.seconds(5),
        onTimeout: () => fail("MysqlClient: Connection timeout")(new Error("connection timeout"))
      })
    )
    const acquire = Effect.acquireRelease(
      Effect.async<Mysql.PoolConnection, SqlError>((resume) => {
        pool.getConnection((cause, conn) =>
          resume(cause ? Effect.fail(fail("Failed to acquire connection")(cause)) : Effect.succeed(conn))
        )
      }),
      (conn) => Effect.sync(() => conn.release())
    )
    return yield* Client.make({
      acquirer: Effect.succeed(new PoolConnection(pool, pool)),
      transactionAcquirer: Effect.map(acquire, (conn) => new PoolConnection(conn, undefined)),
      compiler: MysqlClient.makeCompiler(),
      spanAttributes: [
        ["db.system.name", "mysql"],
        ["server.address", options.host],
        ["server.port", options.port],
        ["db.namespace", options.database]
      ],
      transformRows: undefined
    })
  })

/** @internal */
export const layer = (options: Options): Layer.Layer<Client.SqlClient, SqlError> =>
  Layer.scoped(Client.SqlClient, make(options)).pipe(Layer.provide(Reactivity.layer))
