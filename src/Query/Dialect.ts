/**
 * What differs between the SQL dialects: identifier quoting (the escape functions of @effect/sql),
 * placeholders, LIMIT/OFFSET, the bound-parameter limit and how a few JavaScript values bind.
 *
 * @since 0.1.0
 */
import * as Statement from "@effect/sql/Statement"

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
}

const identity = <A>(a: A) => a

/**
 * `@effect/sql`'s escape for quote character `q`, remembered per identifier: a query quotes the same
 * few names on every compile, and the escape runs two regular expressions each time.
 */
const memoizedEscape = (q: string): ((identifier: string) => string) => {
  const quote = Statement.defaultEscape(q)
  const seen = new Map<string, string>()
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
  bind: identity
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
  bind: identity
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
    typeof value === "boolean" ? (value ? 1 : 0) : value instanceof Date ? value.toISOString() : value
}

/** @since 0.1.0 @category dialects */
export const byName: Record<DialectName, Dialect> = { mysql, pg, sqlite }
