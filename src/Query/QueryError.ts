/**
 * The error family of queries. Each error is a yieldable tagged class that keeps its `cause`.
 *
 * @since 0.1.0
 */
import { SqlError as DriverSqlError } from "@effect/sql/SqlError"
import { Data, GlobalValue } from "effect"
import type { TxError } from "./TxError.js"

export {
  /**
   * An entity whose metadata cannot be read, as a member of the query error family.
   *
   * @since 0.1.0
   */
  InvalidEntityError,
  /**
   * A field name that the entity does not have, as a member of the query error family.
   *
   * @since 0.1.0
   */
  UnknownFieldError
} from "../Schema/EntityError.js"

/** `.get` found no row. @since 0.1.0 @category errors */
export class NoRowsError extends Data.TaggedError("NoRowsError")<{ readonly table: string }> {
  override get message() {
    return `No rows in ${this.table}`
  }
}

/** The query cannot be built: a value that does not encode, a bad limit, a dialect that lacks a feature. @since 0.1.0 @category errors */
export class QueryBuildError extends Data.TaggedError("QueryBuildError")<{
  readonly reason: string
  readonly cause?: unknown
}> {
  override get message() {
    return this.reason
  }
}

/** A row does not decode through the schema; names the table and the column. @since 0.1.0 @category errors */
export class DecodeError extends Data.TaggedError("DecodeError")<{
  readonly table: string
  readonly column: string
  readonly detail: string
  readonly cause: unknown
}> {
  override get message() {
    return `Cannot decode ${this.table}.${this.column}: ${this.detail}`
  }
}

/**
 * Why the database refused a statement, classified from the driver's code. Three reasons mean "nothing
 * of this transaction was committed, running it again may succeed": `deadlock` (MySQL/MariaDB 1213,
 * which Galera also reports for a certification conflict; PostgreSQL 40P01), `lock_timeout` (MySQL/MariaDB
 * 1205, PostgreSQL 55P03, SQLite BUSY/LOCKED) and `serialization` (PostgreSQL 40001: a concurrent update
 * under repeatable read or a serializable conflict; MariaDB 1020 "Record has changed since last read"
 * under `innodb_snapshot_isolation`; SQLite BUSY_SNAPSHOT: a WAL read snapshot too old to write).
 *
 * @since 0.1.0 @category errors
 */
export type DatabaseErrorReason =
  | "unique"
  | "foreign_key"
  | "not_null"
  | "deadlock"
  | "lock_timeout"
  | "serialization"
  | "connection"
  | "syntax"
  | "other"

const unredactedCauses = GlobalValue.globalValue(
  Symbol.for("effect-dal/QueryError/unredactedCauses"),
  () => new WeakMap<object, unknown>()
)

/**
 * The database or the driver failed the statement. Its own tag, distinct from @effect/sql's
 * `SqlError`: `catchTag("DatabaseError")` matches this shape only.
 *
 * Driver messages can quote the values of the statement (MariaDB: `Duplicate entry 'ann@x.org' for
 * key 'email'`), so the error renders redacted: `detail`, `message`, `cause` (an @effect/sql
 * `SqlError` over a copy of the driver error with the quoted values replaced and its value-bearing
 * fields left out), and so every log line, span and JSON made of it. The driver's error as it was is
 * kept for the program in `unredactedCause`, which nothing renders.
 *
 * @since 0.1.0 @category errors
 */
export class DatabaseError extends Data.TaggedError("DatabaseError")<{
  readonly reason: DatabaseErrorReason
  /** The driver's message, quoted values redacted. */
  readonly detail: string
  readonly sql?: string
  readonly cause: unknown
}> {
  override get message() {
    return `Database error (${this.reason}): ${this.detail}`
  }

  /** What the driver failed with, unredacted (for the program's own handling; never logged by the library). */
  get unredactedCause(): unknown {
    return unredactedCauses.has(this) ? unredactedCauses.get(this) : this.cause
  }
}

/** An UPDATE or DELETE without WHERE was refused before reaching the database. @since 0.1.0 @category errors */
export class UnsafeDmlError extends Data.TaggedError("UnsafeDmlError")<{
  readonly table: string
  readonly type: "UPDATE" | "DELETE"
  readonly reason: string
}> {
  override get message() {
    return `Refused ${this.type} on ${this.table}: ${this.reason}`
  }
}

/** A query ran past its timeout and was interrupted. @since 0.1.0 @category errors */
export class QueryTimeoutError extends Data.TaggedError("QueryTimeoutError")<{
  readonly table: string
  readonly sql: string
  readonly timeoutMillis: number
}> {
  override get message() {
    return `Query on ${this.table} timed out after ${this.timeoutMillis} ms`
  }
}

/**
 * What a query handler (the Executor and its middleware) can fail with. `TxError` comes from the
 * transactions the library opens by itself: a split batch's, or the one that bounds a statement on
 * PostgreSQL's server (`Timeout`).
 *
 * @since 0.1.0 @category errors
 */
export type QueryError = DatabaseError | QueryBuildError | UnsafeDmlError | QueryTimeoutError | TxError

const mysqlReasons: Record<number, DatabaseErrorReason> = {
  1062: "unique",
  1451: "foreign_key",
  1452: "foreign_key",
  1216: "foreign_key",
  1217: "foreign_key",
  1048: "not_null",
  1364: "not_null",
  1213: "deadlock",
  1205: "lock_timeout",
  1020: "serialization",
  1064: "syntax",
  1053: "connection",
  1927: "connection",
  2006: "connection",
  2013: "connection",
  1040: "connection",
  1045: "connection"
}

const pgReason = (code: string): DatabaseErrorReason | undefined => {
  switch (code) {
    case "23505":
      return "unique"
    case "23503":
      return "foreign_key"
    case "23502":
      return "not_null"
    case "40P01":
      return "deadlock"
    case "40001":
      return "serialization"
    case "55P03":
      return "lock_timeout"
    case "42601":
      return "syntax"
    case "57P01":
    case "57P02":
    case "57P03":
      return "connection"
  }
  return code.startsWith("08") ? "connection" : undefined
}

const sqliteReason = (code: string, message: string): DatabaseErrorReason | undefined => {
  if (code === "SQLITE_CONSTRAINT_UNIQUE" || code === "SQLITE_CONSTRAINT_PRIMARYKEY") return "unique"
  if (code === "SQLITE_CONSTRAINT_FOREIGNKEY") return "foreign_key"
  if (code === "SQLITE_CONSTRAINT_NOTNULL") return "not_null"
  if (code === "SQLITE_BUSY_SNAPSHOT") return "serialization"
  if (code.startsWith("SQLITE_BUSY") || code.startsWith("SQLITE_LOCKED")) return "lock_timeout"
  if (code === "SQLITE_ERROR" && (message.includes("syntax error") || message.includes("incomplete input")))
    return "syntax"
  return code.startsWith("SQLITE_CANTOPEN") ? "connection" : undefined
}

const connectionCodes = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ETIMEDOUT",
  "EPIPE",
  "ENOTFOUND",
  "PROTOCOL_CONNECTION_LOST",
  "PROTOCOL_SEQUENCE_TIMEOUT",
  "ER_CON_COUNT_ERROR"
])

const field = (u: unknown, key: string): unknown =>
  typeof u === "object" && u !== null && key in u ? (u as Record<string, unknown>)[key] : undefined

/** The innermost driver error: @effect/sql wraps the driver's error in its own `cause`. */
const driverError = (error: unknown): unknown => {
  let current = error
  for (let i = 0; i < 5; i++) {
    const inner = field(current, "cause")
    if (inner === undefined || inner === null) return current
    current = inner
  }
  return current
}

/**
 * Classifies a driver error (MySQL/MariaDB errno, PostgreSQL SQLSTATE, SQLite result code).
 *
 * @since 0.1.0 @category classification
 */
export const classify = (error: unknown): DatabaseErrorReason => {
  const driver = driverError(error)
  const errno = field(driver, "errno")
  const code = field(driver, "code")
  const message = String(field(driver, "message") ?? "")
  if (typeof errno === "number" && mysqlReasons[errno] !== undefined) return mysqlReasons[errno]
  if (typeof code === "string") {
    if (connectionCodes.has(code)) return "connection"
    if (code.startsWith("SQLITE_")) return sqliteReason(code, message) ?? "other"
    if (code.length === 5) return pgReason(code) ?? "other"
  }
  return /Connection terminated|connection is closed|connection is in closed state|not queryable|Connection lost|not connected/i.test(
    message
  )
    ? "connection"
    : "other"
}

/** Words after which a quoted run names a schema object, not a value. */
const namesObject =
  /(?:key|column|table|relation|constraint|index|database|schema|function|procedure|sequence|trigger|view|field|role|user|type|extension|savepoint|cursor|statement|operator|collation)\s*$/i

/**
 * A driver message with every quoted value replaced by `<redacted>`; quoted names of schema objects
 * (`for key 'email'`, `constraint "users_email_key"`) are kept.
 *
 * @since 0.1.0 @category redaction
 */
export const redactMessage = (message: string): string =>
  message.replace(/'(?:[^'\\]|\\.|'')*'|"(?:[^"\\]|\\.|"")*"/g, (quoted, offset: number) =>
    namesObject.test(message.slice(Math.max(0, offset - 40), offset))
      ? quoted
      : `${quoted[0]}<redacted>${quoted[0]}`
  )

/** Fields of driver errors that carry no values of the statement. */
const safeFields = ["code", "errno", "sqlState", "severity", "routine", "fatal"] as const

const redactedDriver = (driver: unknown): Error => {
  const copy = new Error(redactMessage(String(field(driver, "message") ?? driver)))
  copy.name = typeof field(driver, "name") === "string" ? (field(driver, "name") as string) : "Error"
  for (const key of safeFields) {
    const value = field(driver, key)
    if (value !== undefined) Object.assign(copy, { [key]: value })
  }
  return copy
}

/** One of this library's own errors (a tagged error), which a driver wrapper may carry as its cause. */
const isLibraryError = (u: unknown): boolean =>
  u instanceof Error && "_tag" in u && typeof u._tag === "string" && !(u instanceof DriverSqlError)

/**
 * Wraps anything the driver failed with into a `DatabaseError`, classified and redacted. When the
 * failure is one of this library's errors carried through @effect/sql (a `TxError` refusing a
 * statement after the transaction ended), that error is the direct cause.
 *
 * @since 0.1.0 @category constructors
 */
export const fromDriver = (error: unknown, sql?: string): DatabaseError => {
  const inner = field(error, "cause")
  if (error instanceof DriverSqlError && isLibraryError(inner)) {
    const detail = redactMessage(String(field(inner, "message")))
    return new DatabaseError(
      sql === undefined
        ? { reason: classify(error), detail, cause: inner }
        : { reason: classify(error), detail, sql, cause: inner }
    )
  }
  const driver = driverError(error)
  const detail = redactMessage(String(field(driver, "message") ?? field(error, "message") ?? error))
  const cause =
    error instanceof DriverSqlError
      ? new DriverSqlError({ message: error.message, cause: redactedDriver(driver) })
      : redactedDriver(driver)
  const wrapped = new DatabaseError(
    sql === undefined
      ? { reason: classify(error), detail, cause }
      : { reason: classify(error), detail, sql, cause }
  )
  unredactedCauses.set(wrapped, error)
  return wrapped
}
