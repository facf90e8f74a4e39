/**
 * The transaction error: a failed BEGIN, COMMIT or ROLLBACK, a finished transaction used again, a
 * propagation rule broken, or an option the dialect does not have.
 *
 * @since 0.1.0
 */
import { Data } from "effect"

/**
 * Why a transaction operation failed.
 *
 * - `begin`: no connection, or BEGIN / SAVEPOINT failed; nothing ran
 * - `commit`: COMMIT or RELEASE SAVEPOINT failed, or the database had already rolled the work back
 *   (a deadlock victim on MySQL, an aborted PostgreSQL transaction, a rollback-only mark): nothing
 *   was committed, unless the connection died during COMMIT, when the outcome is unknown
 * - `rollback`: ROLLBACK failed after another failure; `cause` is the original failure (a `Cause`)
 *   and `rollbackCause` the rollback's own error
 * - `finished`: the transaction was already committed or rolled back
 * - `mandatory`: propagation `mandatory` found no transaction
 * - `never`: propagation `never` found one
 * - `unsupported`: the dialect lacks the requested isolation level or propagation
 *
 * @since 0.1.0
 * @category models
 */
export type TxErrorReason =
  | "begin"
  | "commit"
  | "rollback"
  | "finished"
  | "mandatory"
  | "never"
  | "unsupported"

/**
 * A transaction operation failed; `reason` says which, `cause` keeps what went wrong.
 *
 * @since 0.1.0
 * @category errors
 */
export class TxError extends Data.TaggedError("TxError")<{
  readonly reason: TxErrorReason
  readonly detail: string
  /** The transaction (or savepoint) id, when there is one. */
  readonly transactionId?: string | undefined
  readonly cause?: unknown
  /** Only for `rollback`: the error of the failed ROLLBACK. */
  readonly rollbackCause?: unknown
}> {
  /** @since 0.1.0 */
  override get message(): string {
    const where = this.transactionId === undefined ? "" : ` ${this.transactionId}`
    return `Transaction${where} (${this.reason}): ${this.detail}`
  }
}
