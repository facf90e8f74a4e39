/**
 * What INSERT, UPDATE, DELETE and a raw `exec` report, with one meaning on every dialect.
 *
 * @since 0.1.0
 */

/**
 * The outcome of a statement that writes.
 *
 * - `rowsAffected`: INSERT: rows inserted; UPDATE: rows the WHERE matched, changed or not (mysql2
 *   connects with FOUND_ROWS, so MySQL/MariaDB count like PostgreSQL and SQLite); DELETE: rows
 *   deleted. Upserts count as the database does: PostgreSQL and SQLite one per row inserted or
 *   updated (do-nothing: inserted only); MySQL/MariaDB 1 per inserted row, 2 per updated row and
 *   1 per conflicting row left unchanged.
 * - `lastInsertId` (INSERT): the id the database generated for the FIRST row of the insert (what
 *   MySQL's `LAST_INSERT_ID()` means; SQLite's last rowid is converted, PostgreSQL's comes from
 *   `RETURNING`). The ids of one multi-row statement are consecutive on all three databases. For a
 *   batch split into several statements it is the first row of the whole batch. `undefined` when the
 *   entity has no generated primary key, when the rows gave their keys, for upserts (use
 *   `returning`), and when nothing was inserted. UPDATE and DELETE: always `undefined`.
 *
 * @since 0.1.0 @category models
 */
export interface ExecResult {
  readonly rowsAffected: number
  readonly lastInsertId: number | bigint | undefined
}

/**
 * An id as a driver returns it (number, bigint, or digits in a string for BIGINT columns) as a
 * number when it fits exactly, a bigint otherwise.
 *
 * @since 0.1.0 @category conversions
 */
export const toId = (u: unknown): number | bigint | undefined => {
  if (typeof u === "number") return Number.isFinite(u) ? u : undefined
  if (typeof u === "bigint") return Number.isSafeInteger(Number(u)) ? Number(u) : u
  if (typeof u === "string" && /^-?\d+$/.test(u)) {
    const n = Number(u)
    return Number.isSafeInteger(n) ? n : BigInt(u)
  }
  return undefined
}
