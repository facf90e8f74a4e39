/**
 * A transaction for work that must be all or nothing when the caller holds none, such as a batch
 * insert split into several statements. It is the same transaction engine as `Tx` (a reserved
 * connection, the statement lock, a failed COMMIT or ROLLBACK as `TxError`, PostgreSQL's COMMIT
 * answered with ROLLBACK detected, after-commit hooks isolated), without propagation options: every
 * builder inside runs on its connection (see `Session.run`).
 *
 * @since 0.1.0
 */
import { Effect, Either, FiberRef, Option } from "effect"
import * as Engine from "./internal/transaction.js"
import type * as Session from "./Session.js"
import type { TxError } from "./TxError.js"

/**
 * Runs `effect` in a transaction of its own on `session`: BEGIN on a reserved connection, COMMIT
 * when it succeeds, ROLLBACK when it fails, dies or is interrupted. `afterCommit` effects run once
 * the connection is back in the pool; one that fails is logged. A failed COMMIT fails with `TxError`
 * (`commit`); a failed ROLLBACK with `TxError` (`rollback`) carrying the original failure as `cause`.
 *
 * @since 0.1.0 @category combinators
 */
export const transaction = <A, E, R>(
  session: Session.Session,
  effect: Effect.Effect<A, E, R>
): Effect.Effect<A, E | TxError, R> =>
  Either.match(Engine.statementsFor(session, {}), {
    onLeft: Effect.fail,
    onRight: (statements) => Engine.within(session, { _tag: "Root", statements }, effect)
  })

/**
 * Runs `effect` in the fiber's transaction on `session` when it holds one, and in a transaction of
 * its own (`transaction`) otherwise. A transaction the fiber holds that has already ended is not
 * replaced: the statements fail as every statement on it does (`TxError` `finished`).
 *
 * @since 0.1.0 @category combinators
 */
export const atomically = <A, E, R>(
  session: Session.Session,
  effect: Effect.Effect<A, E, R>
): Effect.Effect<A, E | TxError, R> =>
  FiberRef.getWith(session.transaction, (current) =>
    Option.isSome(current) ? effect : transaction(session, effect)
  )
