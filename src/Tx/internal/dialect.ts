/**
 * The statements that open and close a transaction on each dialect.
 *
 * @internal
 */
import { Either } from "effect"
import type { DialectName } from "../../Query/Dialect.js"
import type { IsolationLevel } from "../Tx.js"
import { TxError } from "../TxError.js"

/** @internal */
export type { IsolationLevel }

/** @internal */
export interface Statements {
  /** Run in order after the connection is reserved. */
  readonly begin: ReadonlyArray<string>
  /** Run after COMMIT or ROLLBACK, before the connection goes back to the pool. */
  readonly end: ReadonlyArray<string>
}

const sqlLevel = (level: IsolationLevel) => level.toUpperCase()

/**
 * MySQL/MariaDB: `SET TRANSACTION` applies to the next transaction only. PostgreSQL takes the
 * level and access mode on BEGIN (and runs READ UNCOMMITTED as READ COMMITTED, which the standard
 * allows). SQLite transactions are always serializable: any other level is refused, and read-only
 * is `PRAGMA query_only` for as long as the transaction holds the one connection.
 *
 * @internal
 */
export const statements = (
  dialect: DialectName,
  options: { readonly isolation?: IsolationLevel | undefined; readonly readOnly?: boolean | undefined }
): Either.Either<Statements, TxError> => {
  const { isolation, readOnly = false } = options
  switch (dialect) {
    case "mysql":
      return Either.right({
        begin: [
          ...(isolation === undefined ? [] : [`SET TRANSACTION ISOLATION LEVEL ${sqlLevel(isolation)}`]),
          readOnly ? "START TRANSACTION READ ONLY" : "START TRANSACTION"
        ],
        end: []
      })
    case "pg": {
      const modes = [
        ...(isolation === undefined ? [] : [`ISOLATION LEVEL ${sqlLevel(isolation)}`]),
        ...(readOnly ? ["READ ONLY"] : [])
      ]
      return Either.right({ begin: [modes.length === 0 ? "BEGIN" : `BEGIN ${modes.join(", ")}`], end: [] })
    }
    case "sqlite":
      if (isolation !== undefined && isolation !== "serializable") {
        return Either.left(
          new TxError({
            reason: "unsupported",
            detail: `SQLite has no ${isolation} isolation level: its transactions are serializable`
          })
        )
      }
      return Either.right(
        readOnly
          ? { begin: ["BEGIN", "PRAGMA query_only = ON"], end: ["PRAGMA query_only = OFF"] }
          : { begin: ["BEGIN"], end: [] }
      )
  }
}

/** @internal */
export const savepoint = (name: string) => `SAVEPOINT ${name}`

/** @internal */
export const releaseSavepoint = (name: string) => `RELEASE SAVEPOINT ${name}`

/** @internal */
export const rollbackToSavepoint = (name: string) => `ROLLBACK TO SAVEPOINT ${name}`
