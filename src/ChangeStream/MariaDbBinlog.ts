/**
 * A change stream source reading a MariaDB row-based binlog as a replica does, through
 * `@vlasky/zongji` (checked against MariaDB 10.11), with GTID positions: the committed position is a
 * MariaDB GTID position (`0-1-1234`, as `@@gtid_binlog_pos`), kept in the `PositionStore`, and a
 * restart asks the server to resume after it. On a first run (nothing stored) the stream starts at
 * the server's current position and stores it at once.
 *
 * The server needs `log_bin`, `binlog_format=ROW`, `binlog_row_image=FULL` and a `server_id`; the
 * user needs `REPLICATION SLAVE` (`BINLOG MONITOR` as well on 10.5+ to read binlog metadata) and
 * `SELECT` on `information_schema` (column names and primary keys). Only MariaDB is supported:
 * positions on MySQL are GTID sets of another form.
 *
 * Events are emitted per transaction at its commit (`Xid`, or `COMMIT` for non-transactional
 * tables); a DDL group is a transaction with no changes. XA transactions are reported at
 * `XA PREPARE`. While the consumer lags more than 256 transactions behind, reading from the socket
 * pauses.
 *
 * @since 0.1.0
 */
import ZongJi, { type AnyBinlogEvent, MariadbGtidPosition } from "@vlasky/zongji"
import { Effect, type Layer, Option, Redacted, type Scope, Stream } from "effect"
import * as Mysql from "mysql2/promise"
import type { ChangeType } from "../Query/ChangeFeed.js"
import * as ChangeStream from "./ChangeStream.js"
import { ChangeStreamError } from "./ChangeStreamError.js"
import { describe } from "./internal/describe.js"
import { PositionStore } from "./PositionStore.js"

/** @since 0.1.0 @category models */
export interface Options {
  /** `mysql://user:password@host:port/database`: the database is the one followed by default. */
  readonly url: string | Redacted.Redacted
  /** Names the source and its entry in the `PositionStore` (default `mariadb:<host>:<port>/<database>`). */
  readonly name?: string
  /**
   * The replica id this reader announces: unique among the server's replicas, or the server drops
   * the other connection with the same id (default: a random id per process).
   */
  readonly serverId?: number
  /** Databases to follow (default: the URL's). */
  readonly schemas?: ReadonlyArray<string>
  /** Only these tables of those databases (default: all). */
  readonly tables?: ReadonlyArray<string>
}

/** Errors of the server: the position is gone (1236), privileges (1045, 1227, 1044, 1142). */
const classify = (name: string, cause: unknown): ChangeStreamError => {
  const errno = typeof cause === "object" && cause !== null && "errno" in cause ? cause.errno : undefined
  const reason =
    errno === 1236
      ? "position_lost"
      : errno === 1045 || errno === 1227 || errno === 1044 || errno === 1142
        ? "setup"
        : "connection"
  return new ChangeStreamError({ reason, source: name, detail: describe(cause), cause })
}

interface Raw {
  readonly schema: string
  readonly table: string
  readonly operation: ChangeType
  readonly row: Readonly<Record<string, unknown>>
  readonly before: Readonly<Record<string, unknown>> | undefined
}

interface RawTransaction {
  readonly position: string
  readonly offset: number
  readonly commitTime: Date
  readonly changes: ReadonlyArray<Raw>
  /** A DDL group: primary keys may have changed. */
  readonly ddl: boolean
}

const connectionOptions = (url: URL) => ({
  host: url.hostname,
  port: url.port === "" ? 3306 : Number(url.port),
  user: decodeURIComponent(url.username),
  password: decodeURIComponent(url.password)
})

/** The binlog reader from `from`, emitting one `RawTransaction` per commit. */
const binlog = (
  name: string,
  url: URL,
  serverId: number,
  include: Record<string, Array<string> | true>,
  from: string
): Stream.Stream<RawTransaction, ChangeStreamError> =>
  Stream.asyncScoped<RawTransaction, ChangeStreamError>((emit) => {
    const position = MariadbGtidPosition.parse(from)
    const zongji = new ZongJi(connectionOptions(url))
    let current:
      | {
          gtid: { domainId: number; serverId: number; seqNo: number | string }
          /** A group with no commit event of its own (DDL): it ends with its statement. */
          standalone: boolean
          time: number
          changes: Array<Raw>
        }
      | undefined
    let waiting = 0
    let paused = false
    const offer = (tx: RawTransaction) => {
      waiting++
      if (waiting > 256 && !paused && zongji.connection !== null) {
        paused = true
        zongji.connection.pause()
      }
      const taken = () => {
        waiting--
        if (waiting === 0 && paused) {
          paused = false
          zongji.connection?.resume()
        }
      }
      // Rejected once the stream has closed: nothing is waiting for the transaction any more.
      emit.single(tx).then(taken, taken)
    }
    const finish = (offset: number, ddl: boolean) => {
      if (current === undefined) return
      position.add(current.gtid)
      offer({
        position: position.toString(),
        offset,
        commitTime: new Date(current.time),
        changes: current.changes,
        ddl
      })
      current = undefined
    }
    const onEvent = (event: AnyBinlogEvent) => {
      switch (event.getEventName()) {
        case "mariadbgtid": {
          const e = event as Extract<AnyBinlogEvent, { getEventName(): "mariadbgtid" }>
          current = { gtid: e, standalone: e.standalone, time: e.timestamp, changes: [] }
          return
        }
        case "writerows":
        case "deleterows":
        case "updaterows": {
          const e = event as Extract<
            AnyBinlogEvent,
            { getEventName(): "writerows" | "deleterows" | "updaterows" }
          >
          const meta = e.tableMap[e.tableId]
          if (current === undefined || meta === undefined) return
          const changes = current.changes
          if (e.getEventName() === "updaterows") {
            for (const r of (e as Extract<AnyBinlogEvent, { getEventName(): "updaterows" }>).rows) {
              changes.push({
                schema: meta.parentSchema,
                table: meta.tableName,
                operation: "UPDATE",
                row: r.after,
                before: r.before
              })
            }
          } else {
            const operation = e.getEventName() === "writerows" ? "INSERT" : "DELETE"
            for (const r of (e as Extract<AnyBinlogEvent, { getEventName(): "writerows" }>).rows) {
              changes.push({
                schema: meta.parentSchema,
                table: meta.tableName,
                operation,
                row: r,
                before: undefined
              })
            }
          }
          return
        }
        case "xid":
        case "xaprepare":
          return finish(event.nextPosition, false)
        case "query": {
          const e = event as Extract<AnyBinlogEvent, { getEventName(): "query" }>
          const text = e.query.trim().toUpperCase()
          if (text === "COMMIT") return finish(event.nextPosition, false)
          // Other statements inside a transaction (SAVEPOINT, ...) do not end it.
          return current?.standalone === true ? finish(event.nextPosition, true) : undefined
        }
        default:
          return
      }
    }
    return Effect.acquireRelease(
      Effect.sync(() => {
        zongji.on("binlog", onEvent)
        zongji.on("error", (cause) => {
          emit.fail(classify(name, cause)).catch(() => undefined)
        })
        zongji.start({
          serverId,
          gtidSet: from,
          includeEvents: [
            "mariadbgtid",
            "tablemap",
            "writerows",
            "updaterows",
            "deleterows",
            "xid",
            "xaprepare",
            "query"
          ],
          includeSchema: include
        })
      }),
      () => Effect.sync(() => zongji.stop())
    )
  }, 1024)

/** Primary key columns per `schema.table`, read from `information_schema` and kept until DDL. */
const keyColumns = (conn: Mysql.Connection, name: string) => {
  const known = new Map<string, ReadonlyArray<string>>()
  return {
    clear: () => known.clear(),
    get: (schema: string, table: string): Effect.Effect<ReadonlyArray<string>, ChangeStreamError> => {
      const cached = known.get(`${schema}.${table}`)
      if (cached !== undefined) return Effect.succeed(cached)
      return Effect.tryPromise({
        try: async () => {
          const [rows] = await conn.execute<Array<Mysql.RowDataPacket>>(
            "SELECT COLUMN_NAME AS c FROM information_schema.KEY_COLUMN_USAGE WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND CONSTRAINT_NAME = 'PRIMARY' ORDER BY ORDINAL_POSITION",
            [schema, table]
          )
          const columns = rows.map((r) => String(r.c))
          known.set(`${schema}.${table}`, columns)
          return columns
        },
        catch: (cause) => classify(name, cause)
      })
    }
  }
}

const keyOf = (columns: ReadonlyArray<string>, row: Readonly<Record<string, unknown>>) =>
  columns.length === 0 || columns.some((c) => !(c in row))
    ? undefined
    : Object.fromEntries(columns.map((c) => [c, row[c]]))

/** Opens the control connection; checks that the server is a MariaDB writing a full row binlog. */
const control = (name: string, url: URL): Effect.Effect<Mysql.Connection, ChangeStreamError, Scope.Scope> =>
  Effect.gen(function* () {
    const conn = yield* Effect.acquireRelease(
      Effect.tryPromise({
        try: () => Mysql.createConnection({ ...connectionOptions(url), connectTimeout: 5000 }),
        catch: (cause) => classify(name, cause)
      }),
      (c) => Effect.sync(() => c.destroy())
    )
    conn.on("error", () => {})
    const [rows] = yield* Effect.tryPromise({
      try: () =>
        conn.query<Array<Mysql.RowDataPacket>>(
          "SELECT @@log_bin AS logBin, @@binlog_format AS format, @@binlog_row_image AS image, VERSION() AS version"
        ),
      catch: (cause) => classify(name, cause)
    })
    const row: Readonly<Record<string, unknown>> = rows[0] ?? {}
    const problem = !String(row.version).includes("MariaDB")
      ? `the server is not MariaDB (${String(row.version)})`
      : Number(row.logBin) !== 1
        ? "log_bin is off"
        : row.format !== "ROW"
          ? `binlog_format is ${String(row.format)}, not ROW`
          : row.image !== "FULL"
            ? `binlog_row_image is ${String(row.image)}, not FULL`
            : undefined
    if (problem !== undefined) {
      return yield* new ChangeStreamError({ reason: "setup", source: name, detail: problem })
    }
    return conn
  })

/**
 * The binlog source of `options` (see the module doc).
 *
 * @since 0.1.0 @category constructors
 */
export const make = (
  options: Options
): Effect.Effect<ChangeStream.Source, ChangeStreamError, PositionStore> =>
  Effect.gen(function* () {
    const store = yield* PositionStore
    const text = typeof options.url === "string" ? options.url : Redacted.value(options.url)
    const url = yield* Effect.try({
      try: () => new URL(text),
      catch: () =>
        new ChangeStreamError({
          reason: "setup",
          source: "mariadb",
          detail: "the URL is not a valid mysql:// URL"
        })
    })
    const database = decodeURIComponent(url.pathname.replace(/^\//, ""))
    const name = options.name ?? `mariadb:${url.host}/${database}`
    const schemas = options.schemas ?? (database === "" ? [] : [database])
    if (schemas.length === 0) {
      return yield* new ChangeStreamError({
        reason: "setup",
        source: name,
        detail: "no database to follow: give one in the URL or `schemas`"
      })
    }
    const include = Object.fromEntries(
      schemas.map((s) => [s, options.tables === undefined ? true : [...options.tables]])
    ) as Record<string, Array<string> | true>
    const serverId = options.serverId ?? 0x10000000 + Math.floor(Math.random() * 0x6fffffff)

    const start = Effect.scoped(
      Effect.gen(function* () {
        const conn = yield* control(name, url)
        const stored = yield* store.load(name)
        if (Option.isSome(stored)) return stored.value
        const [rows] = yield* Effect.tryPromise({
          try: () => conn.query<Array<Mysql.RowDataPacket>>("SELECT @@gtid_binlog_pos AS pos"),
          catch: (cause) => classify(name, cause)
        })
        const current = String(rows[0]?.pos ?? "")
        yield* store.save(name, current)
        return current
      })
    )

    const read = (from: string) =>
      Stream.unwrapScoped(
        Effect.map(control(name, url), (conn) => {
          const keys = keyColumns(conn, name)
          return binlog(name, url, serverId, include, from).pipe(
            Stream.mapEffect((tx) =>
              Effect.gen(function* () {
                if (tx.ddl) keys.clear()
                const changes: Array<ChangeStream.RowChange> = []
                for (const c of tx.changes) {
                  const columns = yield* keys.get(c.schema, c.table)
                  changes.push({ ...c, key: keyOf(columns, c.row) })
                }
                return { position: tx.position, offset: tx.offset, commitTime: tx.commitTime, changes }
              })
            )
          )
        })
      )

    return { name, start, read, persist: (position: string) => store.save(name, position) }
  })

/**
 * The `ChangeStream` of a MariaDB binlog.
 *
 * @since 0.1.0 @category layers
 */
export const layer = (
  options: Options,
  streamOptions: ChangeStream.Options = {}
): Layer.Layer<ChangeStream.ChangeStream, ChangeStreamError, PositionStore> =>
  ChangeStream.layer(make(options), streamOptions)
