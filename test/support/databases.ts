/**
 * The dialects every shared integration suite runs against. SQLite is embedded and always there;
 * MariaDB and PostgreSQL come from `services.ts` and are skipped loudly when unreachable.
 */
import type * as SqlClient from "@effect/sql/SqlClient"
import type { Layer } from "effect"
import * as Database from "../../src/Layers/Database.js"
import type { DialectName } from "../../src/Query/Dialect.js"
import type { Executor } from "../../src/Query/Executor.js"
import { serviceAvailable, serviceUrls } from "./services.js"

export interface TestDatabase {
  readonly dialect: DialectName
  /** A suite name prefix that says the dialect. */
  readonly label: string
  readonly available: boolean
  readonly url: string
  readonly layer: Layer.Layer<Executor | SqlClient.SqlClient, unknown>
}

const make = (
  dialect: DialectName,
  label: string,
  url: string,
  available: boolean,
  maxConnections = 4
): TestDatabase => ({
  dialect,
  label,
  available,
  url,
  layer: Database.layer({ url, maxConnections })
})

/** SQLite (in memory), MariaDB and PostgreSQL; pass `maxConnections` for pool-sensitive suites. */
export const testDatabases = (
  options: { readonly maxConnections?: number } = {}
): ReadonlyArray<TestDatabase> => [
  make("sqlite", "SQLite", "sqlite::memory:", true),
  make("mysql", "MariaDB", serviceUrls.mysql, serviceAvailable("mysql"), options.maxConnections),
  make("pg", "PostgreSQL", serviceUrls.pg, serviceAvailable("pg"), options.maxConnections)
]

/** A table name unique to this run, so parallel test files never share a table. */
export const uniqueName = (prefix: string): string =>
  `${prefix}_${process.pid}_${Math.random().toString(36).slice(2, 8)}`

/** The column definition of an auto-increment integer primary key. */
export const autoIdColumn = (dialect: DialectName): string =>
  dialect === "mysql"
    ? "INT AUTO_INCREMENT PRIMARY KEY"
    : dialect === "pg"
      ? "SERIAL PRIMARY KEY"
      : "INTEGER PRIMARY KEY AUTOINCREMENT"
