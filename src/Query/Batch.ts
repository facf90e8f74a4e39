/**
 * A transaction for work that must be all or nothing when the caller holds none, such as a batch
 * insert split into several statements. It is built from public @effect/sql parts — a reserved
 * connection, `BEGIN`, `COMMIT`/`ROLLBACK` — and the session's own transaction FiberRef, so every
 * builder inside runs on that connection (see `Session.run`). `Tx` may reuse it.
 *
 * @since 0.1.0
 */
import { Cause, Effect, Exit, FiberRef, Option } from "effect"
import { type DatabaseError, fromDriver } from "./QueryError.js"
import type * as Session from "./Session.js"

let counter = 0

const unprepared = (state: Session.TransactionState, sql: "BEGIN" | "COMMIT" | "ROLLBACK") =>
  Effect.mapError(state.connection.executeUnprepared(sql, [], undefined), (e) => fromDriver(e, sql))

/**
 * Runs `effect` in a transaction of its own on `session`: BEGIN on a reserved connection, COMMIT
 * when it succeeds, ROLLBACK when it fails, dies or is interrupted. `afterCommit` effects run once
 * the connection is back in the pool. A failed COMMIT fails with `DatabaseError`; a failed ROLLBACK is
 * added to the original cause as a defect.
 *
 * @since 0.1.0 @category combinators
 */
export const transaction = <A, E, R>(
  session: Session.Session,
  effect: Effect.Effect<A, E, R>
): Effect.Effect<A, E | DatabaseError, R> =>
  // Suspended: each run collects its own after-commit hooks.
  Effect.suspend(() => {
    const hooks: Array<Effect.Effect<void>> = []
    const inTransaction = Effect.scoped(
      Effect.flatMap(Effect.mapError(session.sql.reserve, fromDriver), (connection) =>
        Effect.uninterruptibleMask((restore) =>
          Effect.gen(function* () {
            const state: Session.TransactionState = {
              id: `batch-${++counter}`,
              connection,
              afterCommit: (hook) => Effect.sync(() => void hooks.push(hook))
            }
            yield* unprepared(state, "BEGIN")
            const exit = yield* Effect.exit(
              restore(Effect.locally(effect, session.transaction, Option.some(state)))
            )
            if (Exit.isFailure(exit)) {
              const rollback = yield* Effect.exit(unprepared(state, "ROLLBACK"))
              return yield* Effect.failCause(
                Exit.isSuccess(rollback)
                  ? exit.cause
                  : Cause.sequential(exit.cause, Cause.die(Cause.squash(rollback.cause)))
              )
            }
            yield* Effect.tapError(unprepared(state, "COMMIT"), () =>
              Effect.ignore(unprepared(state, "ROLLBACK"))
            )
            return exit.value
          })
        )
      )
    )
    // The hooks run after the reserved connection is released: on SQLite it holds the only connection.
    return Effect.tap(inTransaction, () => Effect.forEach(hooks, (hook) => hook, { discard: true }))
  })

/**
 * Runs `effect` in the fiber's transaction on `session` when it holds one, and in a transaction of
 * its own (`transaction`) otherwise.
 *
 * @since 0.1.0 @category combinators
 */
export const atomically = <A, E, R>(
  session: Session.Session,
  effect: Effect.Effect<A, E, R>
): Effect.Effect<A, E | DatabaseError, R> =>
  Effect.flatMap(FiberRef.get(session.transaction), (current) =>
    Option.isSome(current) ? effect : transaction(session, effect)
  )
