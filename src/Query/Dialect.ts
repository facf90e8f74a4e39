/**
 * What differs between the SQL dialects: identifier quoting (the escape functions of @effect/sql),
 * placeholders, LIMIT/OFFSET, the bound-parameter limit and how a few JavaScript values bind.
 *
 * @since 0.1.0
 */
import * as Statement from "@effect/sql/Statement"
import { Either } from "effect"
import { globalValue } from "effect/GlobalValue"
import type { LexicalRules } from "./internal/lexer.js"
import type { DatabaseErrorReason } from "./QueryError.js"

/**
 * How a dialect writes comments, strings and identifiers, as its `lexical` field says.
 *
 * @since 0.1.0 @category models
 */
export type { LexicalRules }

/** @since 0.1.0 @category models */
export type DialectName = "mysql" | "pg" | "sqlite"

/** @since 0.1.0 @category models */
export interface Dialect {
  readonly name: DialectName
  /** Quotes an identifier (a table, column or alias name). */
  readonly quote: (identifier: string) => string
  /** The placeholder of the `index`-th bound parameter (1-based). */
  readonly placeholder: (index: number) => string
  /** The most parameters one statement may bind. */
  readonly maxParams: number
  /** How LIMIT/OFFSET are written; `param` binds a value and returns its placeholder. */
  readonly limitOffset: (
    limit: number | undefined,
    offset: number | undefined,
    param: (value: number | bigint) => string
  ) => string
  /** Converts a value the driver cannot bind (SQLite takes no booleans or dates). */
  readonly bind: (value: unknown) => unknown

  // Capabilities: code outside Dialect and Compiler asks these, never `name`.

  /** How raw SQL text is read: comments, string literals, identifiers. */
  readonly lexical: LexicalRules
  /** The `db.system.name` of OpenTelemetry's database conventions. */
  readonly systemName: string
  /** RETURNING on INSERT/DELETE: always there, or only on some servers (asked once per session). */
  readonly returning: "always" | "serverDependent"
  /** The generated id of an insert: the driver's first id, its last id, or RETURNING (none from the driver). */
  readonly insertId: "driverFirst" | "driverLast" | "returning"
  /** An insert of database defaults only can write many rows in one statement (`() VALUES (), ()`). */
  readonly multiRowDefaults: boolean
  /** Rows stream from the server (a cursor); otherwise the driver reads the whole result first. */
  readonly serverStream: boolean
  /** The driver rounds integers past 2^53 unless asked for bigints (SQLite): the Executor asks. */
  readonly safeIntegers: boolean
  /** The statement that reads the server's version (one column `v`). */
  readonly versionQuery: string
  /** Reads a driver's answer to a statement run for its counts. */
  readonly execResult: (raw: unknown) => ExecOutcome

  /** How transactions behave on this database. */
  readonly transactions: TransactionCapabilities
}

/** What a statement run for its counts reported. @since 0.1.0 @category models */
export interface ExecOutcome {
  readonly rowsAffected: number
  readonly lastInsertId: number | bigint | undefined
  readonly rows: ReadonlyArray<Record<string, unknown>>
}

const num = (u: unknown): number => (typeof u === "number" ? u : typeof u === "bigint" ? Number(u) : 0)

const field = (raw: unknown, key: string): unknown =>
  typeof raw === "object" && raw !== null ? (raw as Record<string, unknown>)[key] : undefined

const id = (u: unknown): number | bigint | undefined =>
  typeof u === "number" || typeof u === "bigint" ? u : undefined

// ---------------------------------------------------------------------------------------------
// Transaction capabilities: what the transaction engine and the Timeout middleware ask instead of
// the dialect's name.
// ---------------------------------------------------------------------------------------------

/** The SQL isolation levels. @since 0.1.0 @category models */
export type IsolationLevel = "read uncommitted" | "read committed" | "repeatable read" | "serializable"

/** The statements that open a transaction, and those that undo its session settings after it. @since 0.1.0 @category models */
export interface TransactionStatements {
  /** Run in order on the reserved connection. */
  readonly begin: ReadonlyArray<string>
  /** Run after COMMIT or ROLLBACK, before the connection goes back to the pool. */
  readonly end: ReadonlyArray<string>
}

/** @since 0.1.0 @category models */
export interface TransactionCapabilities {
  /** The statements for these options, or why the database cannot honour them. */
  readonly statements: (options: {
    readonly isolation?: IsolationLevel | undefined
    readonly readOnly?: boolean | undefined
  }) => Either.Either<TransactionStatements, string>
  /**
   * One connection serves the whole database: a second transaction, or work outside the running
   * one, would wait for it forever.
   */
  readonly singleConnection: boolean
  /** Failures after which the server has already rolled back the whole transaction, not just the statement. */
  readonly abortsTransaction: ReadonlySet<DatabaseErrorReason>
  /** COMMIT of a transaction in which a statement failed is answered with ROLLBACK instead of an error. */
  readonly commitMayRollBack: boolean
  /** `SAVEPOINT`, `RELEASE SAVEPOINT`, `ROLLBACK TO SAVEPOINT` for a savepoint name. */
  readonly savepoint: {
    readonly open: (name: string) => string
    readonly release: (name: string) => string
    readonly rollbackTo: (name: string) => string
  }
  /**
   * How one statement is bounded on the server, so that it stops (and frees its connection) at its
   * deadline without a second connection to cancel it:
   * - `setStatement`: `SET STATEMENT max_statement_time=<s> FOR <statement>` (MariaDB; MySQL lacks it,
   *   so the server is asked once whether it is MariaDB)
   * - `setLocal`: `SET LOCAL statement_timeout` inside the statement's transaction (PostgreSQL)
   * - `none`: statements run in-process and cannot be cut short (SQLite)
   */
  readonly statementTimeout: "setStatement" | "setLocal" | "none"
}

const sqlLevel = (level: IsolationLevel) => level.toUpperCase()

const savepoints: TransactionCapabilities["savepoint"] = {
  open: (name) => `SAVEPOINT ${name}`,
  release: (name) => `RELEASE SAVEPOINT ${name}`,
  rollbackTo: (name) => `ROLLBACK TO SAVEPOINT ${name}`
}

/** `SET TRANSACTION` applies to the next transaction only; a deadlock or a 1020 rolls back all of it. */
const mysqlTransactions: TransactionCapabilities = {
  statements: ({ isolation, readOnly = false }) =>
    Either.right({
      begin: [
        ...(isolation === undefined ? [] : [`SET TRANSACTION ISOLATION LEVEL ${sqlLevel(isolation)}`]),
        readOnly ? "START TRANSACTION READ ONLY" : "START TRANSACTION"
      ],
      end: []
    }),
  singleConnection: false,
  abortsTransaction: new Set(["deadlock", "serialization", "connection"]),
  commitMayRollBack: false,
  savepoint: savepoints,
  statementTimeout: "setStatement"
}

/** Level and access mode on BEGIN; READ UNCOMMITTED runs as READ COMMITTED (the standard allows it). */
const pgTransactions: TransactionCapabilities = {
  statements: ({ isolation, readOnly = false }) => {
    const modes = [
      ...(isolation === undefined ? [] : [`ISOLATION LEVEL ${sqlLevel(isolation)}`]),
      ...(readOnly ? ["READ ONLY"] : [])
    ]
    return Either.right({ begin: [modes.length === 0 ? "BEGIN" : `BEGIN ${modes.join(", ")}`], end: [] })
  },
  singleConnection: false,
  abortsTransaction: new Set(["connection"]),
  commitMayRollBack: true,
  savepoint: savepoints,
  statementTimeout: "setLocal"
}

/** Always serializable; read-only is `PRAGMA query_only` while the transaction holds the one connection. */
const sqliteTransactions: TransactionCapabilities = {
  statements: ({ isolation, readOnly = false }) => {
    if (isolation !== undefined && isolation !== "serializable") {
      return Either.left(`SQLite has no ${isolation} isolation level: its transactions are serializable`)
    }
    return Either.right(
      readOnly
        ? { begin: ["BEGIN", "PRAGMA query_only = ON"], end: ["PRAGMA query_only = OFF"] }
        : { begin: ["BEGIN"], end: [] }
    )
  },
  singleConnection: true,
  abortsTransaction: new Set(["connection"]),
  commitMayRollBack: false,
  savepoint: savepoints,
  statementTimeout: "none"
}

// ---------------------------------------------------------------------------------------------

const identity = <A>(a: A) => a

/**
 * `@effect/sql`'s escape for quote character `q`, remembered per identifier: a query quotes the same
 * few names on every compile, and the escape runs two regular expressions each time.
 */
const memoizedEscape = (q: string): ((identifier: string) => string) => {
  const quote = Statement.defaultEscape(q)
  const seen = globalValue(Symbol.for(`effect-dal/Dialect/quoted${q}`), () => new Map<string, string>())
  return (identifier) => {
    let quoted = seen.get(identifier)
    if (quoted === undefined) {
      quoted = quote(identifier)
      // Identifiers come from metadata and aliases, a bounded set; the cap guards against generated names.
      if (seen.size >= 10_000) seen.clear()
      seen.set(identifier, quoted)
    }
    return quoted
  }
}

/** MariaDB / MySQL: backticks, `?`, and OFFSET only after a LIMIT. @since 0.1.0 @category dialects */
export const mysql: Dialect = {
  name: "mysql",
  quote: memoizedEscape("`"),
  placeholder: () => "?",
  maxParams: 65_535,
  limitOffset: (limit, offset, param) =>
    offset === undefined
      ? limit === undefined
        ? ""
        : ` LIMIT ${param(limit)}`
      : // MySQL has no OFFSET without LIMIT; its documentation gives the largest BIGINT UNSIGNED.
        ` LIMIT ${param(limit ?? 18_446_744_073_709_551_615n)} OFFSET ${param(offset)}`,
  bind: identity,
  lexical: {
    mysqlComments: true,
    backslashEscapes: true,
    dollarQuotes: false,
    nestedComments: false,
    foldsIdentifiers: false
  },
  systemName: "mysql",
  returning: "serverDependent",
  insertId: "driverFirst",
  multiRowDefaults: true,
  serverStream: true,
  safeIntegers: false,
  versionQuery: "SELECT VERSION() AS v",
  execResult: (raw) => {
    const insertId = id(field(raw, "insertId"))
    return {
      rowsAffected: num(field(raw, "affectedRows")),
      // MySQL reports 0 when nothing was generated.
      lastInsertId: insertId === 0 || insertId === 0n ? undefined : insertId,
      rows: []
    }
  },
  transactions: mysqlTransactions
}

/** PostgreSQL: double quotes and `$n`. @since 0.1.0 @category dialects */
export const pg: Dialect = {
  name: "pg",
  quote: memoizedEscape('"'),
  placeholder: (index) => `$${index}`,
  maxParams: 65_535,
  limitOffset: (limit, offset, param) =>
    (limit === undefined ? "" : ` LIMIT ${param(limit)}`) +
    (offset === undefined ? "" : ` OFFSET ${param(offset)}`),
  bind: identity,
  lexical: {
    mysqlComments: false,
    backslashEscapes: false,
    dollarQuotes: true,
    nestedComments: true,
    foldsIdentifiers: true
  },
  systemName: "postgresql",
  returning: "always",
  insertId: "returning",
  multiRowDefaults: false,
  serverStream: true,
  safeIntegers: false,
  versionQuery: "SELECT VERSION() AS v",
  execResult: (raw) => {
    const rows = field(raw, "rows")
    return {
      rowsAffected: num(field(raw, "rowCount")),
      lastInsertId: undefined,
      rows: Array.isArray(rows) ? rows : []
    }
  },
  transactions: pgTransactions
}

/** SQLite: double quotes, `?`, `LIMIT -1` when only an offset is given, booleans as 0/1, dates as ISO text. @since 0.1.0 @category dialects */
export const sqlite: Dialect = {
  name: "sqlite",
  quote: memoizedEscape('"'),
  placeholder: () => "?",
  maxParams: 32_766,
  limitOffset: (limit, offset, param) =>
    offset === undefined
      ? limit === undefined
        ? ""
        : ` LIMIT ${param(limit)}`
      : ` LIMIT ${param(limit ?? -1)} OFFSET ${param(offset)}`,
  bind: (value) =>
    typeof value === "boolean" ? (value ? 1 : 0) : value instanceof Date ? value.toISOString() : value,
  lexical: {
    mysqlComments: false,
    backslashEscapes: false,
    dollarQuotes: false,
    nestedComments: false,
    foldsIdentifiers: true
  },
  systemName: "sqlite",
  returning: "always",
  insertId: "driverLast",
  multiRowDefaults: false,
  serverStream: false,
  safeIntegers: true,
  versionQuery: "SELECT sqlite_version() AS v",
  execResult: (raw) => ({
    rowsAffected: num(field(raw, "changes")),
    lastInsertId: id(field(raw, "lastInsertRowid")),
    rows: []
  }),
  transactions: sqliteTransactions
}

/** @since 0.1.0 @category dialects */
export const byName: Record<DialectName, Dialect> = { mysql, pg, sqlite }
