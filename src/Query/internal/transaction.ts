/**
 * The transaction engine, below the query layer so that everything needing a transaction uses the
 * same one: `Tx` (propagation, handles, spans), `Batch` (a split write that must be all or nothing),
 * the Timeout middleware (a statement bounded on the server) and the Database's own `SqlClient`
 * (`withTransaction`).
 *
 * A frame is one level of a transaction: the root (BEGIN … COMMIT on a reserved connection) or a
 * savepoint inside it. Each frame hands the query layer its own view of the connection, which
 * refuses statements once the frame has ended and keeps them out of the way of a child savepoint.
 * What a dialect does differently is asked from `Dialect.transactions`, never from its name.
 *
 * @internal
 */
import type * as SqlConnection from "@effect/sql/SqlConnection"
import { SqlError as DriverError } from "@effect/sql/SqlError"
import {
  Cause,
  Clock,
  Effect,
  Either,
  ExecutionStrategy,
  Exit,
  Fiber,
  FiberRef,
  Option,
  Scope,
  Stream,
  type Tracer
} from "effect"
import { globalValue } from "effect/GlobalValue"
import type { IsolationLevel, TransactionStatements } from "../Dialect.js"
import { classify, type DatabaseError, fromDriver } from "../QueryError.js"
import type { Session, TransactionState } from "../Session.js"
import { TxError } from "../TxError.js"

type Status = "active" | "ending" | "committed" | "rolledBack"

/** What every frame of one transaction shares. */
interface Shared {
  readonly session: Session
  /** The reserved connection itself; frames hand out guarded views of it. */
  readonly connection: SqlConnection.Connection
  readonly end: ReadonlyArray<string>
  /** The database already ended the transaction: a MySQL deadlock victim, or a lost connection. */
  abortedBy: DatabaseError | undefined
  /** Work that must not be committed is in the transaction: the owner's commit rolls back instead. */
  doomedBy: unknown
  /** The first statement that failed since the transaction (or a savepoint rollback) last recovered. */
  failedBy: DatabaseError | undefined
  savepoints: number
}

/** Module-level state is global: two copies of this module must not hand out the same id or disagree on frames. */
const registry = globalValue("effect-dal/Query/internal/transaction", () => ({
  transactions: 0,
  ownFrames: new WeakMap<TransactionState, Frame>(),
  foreignFrames: new WeakMap<TransactionState, Frame>()
}))
const { ownFrames, foreignFrames } = registry

/** @internal */
export class Frame {
  status: Status = "active"
  hooks: Array<Effect.Effect<void>> = []
  /** Statements of this frame and the lifetime of a child savepoint exclude each other. */
  readonly lock = Effect.unsafeMakeSemaphore(1)
  readonly state: TransactionState
  private released = false

  readonly id: string
  readonly kind: "root" | "savepoint" | "foreign"
  /** The savepoint name; empty for a root. */
  readonly name: string
  readonly parent: Frame | undefined
  readonly shared: Shared
  readonly span: Tracer.Span | undefined
  private readonly onRelease: Effect.Effect<void>

  constructor(
    id: string,
    kind: "root" | "savepoint" | "foreign",
    name: string,
    parent: Frame | undefined,
    shared: Shared,
    span: Tracer.Span | undefined,
    onRelease: Effect.Effect<void>,
    foreign?: TransactionState
  ) {
    this.id = id
    this.kind = kind
    this.name = name
    this.parent = parent
    this.shared = shared
    this.span = span
    this.onRelease = onRelease
    if (foreign !== undefined) {
      this.state = foreign
      foreignFrames.set(foreign, this)
    } else {
      this.state = {
        id,
        connection: guarded(this, shared.connection),
        afterCommit: (effect) => afterCommit(this, effect)
      }
      ownFrames.set(this.state, this)
    }
  }

  /** Gives the connection back (root) or the parent's lock (savepoint), once. */
  get release(): Effect.Effect<void> {
    return Effect.suspend(() => {
      if (this.released) return Effect.void
      this.released = true
      return this.onRelease
    })
  }

  /** Active, and so are all its parents. */
  get isActive(): boolean {
    return this.status === "active" && (this.parent === undefined || this.parent.isActive)
  }
}

const finishedDetail = (frame: Frame): string | undefined => {
  for (let f: Frame | undefined = frame; f !== undefined; f = f.parent) {
    switch (f.status) {
      case "committed":
        return `${f.id} is already committed`
      case "rolledBack":
        return `${f.id} is already rolled back`
      case "ending":
        return `${f.id} is ending`
    }
  }
  return undefined
}

/** @internal */
export const finishedError = (frame: Frame): TxError =>
  new TxError({
    reason: "finished",
    detail: finishedDetail(frame) ?? `${frame.id} is finished`,
    transactionId: frame.id
  })

/** Fails a statement that would run on an ended frame (after COMMIT it would autocommit, or run in someone else's transaction). */
const guard = (frame: Frame): Effect.Effect<void, DriverError> =>
  Effect.suspend(() => {
    const detail = finishedDetail(frame)
    const aborted = frame.shared.abortedBy
    if (detail === undefined && aborted === undefined) return Effect.void
    const error =
      detail !== undefined
        ? new TxError({ reason: "finished", detail, transactionId: frame.id })
        : new TxError({
            reason: "finished",
            detail: `the database already ended ${frame.id}: ${aborted?.detail}`,
            transactionId: frame.id,
            cause: aborted
          })
    return Effect.fail(new DriverError({ message: error.message, cause: error }))
  })

/** Notes errors after which the database has already ended the whole transaction. */
const observe = (shared: Shared, error: unknown): Effect.Effect<void> =>
  Effect.sync(() => {
    if (shared.failedBy === undefined) shared.failedBy = fromDriver(error)
    if (shared.abortedBy !== undefined) return
    const reason = classify(error)
    // MySQL rolls the whole transaction back on a deadlock or a snapshot conflict (1020) and leaves
    // the session in autocommit; PostgreSQL only aborts it, and a savepoint rollback recovers from that.
    if (shared.session.dialect.transactions.abortsTransaction.has(reason)) {
      shared.abortedBy = fromDriver(error)
    }
  })

const guarded = (frame: Frame, raw: SqlConnection.Connection): SqlConnection.Connection => {
  const run = <A>(effect: Effect.Effect<A, DriverError>) =>
    frame.lock.withPermits(1)(
      Effect.zipRight(
        guard(frame),
        Effect.tapError(effect, (e) => observe(frame.shared, e))
      )
    )
  return {
    execute: (sql, params, transformRows) => run(raw.execute(sql, params, transformRows)),
    executeRaw: (sql, params) => run(raw.executeRaw(sql, params)),
    executeValues: (sql, params) => run(raw.executeValues(sql, params)),
    executeUnprepared: (sql, params, transformRows) => run(raw.executeUnprepared(sql, params, transformRows)),
    executeStream: (sql, params, transformRows) =>
      Stream.unwrapScoped(
        Effect.acquireRelease(frame.lock.take(1), () => frame.lock.release(1)).pipe(
          Effect.zipRight(guard(frame)),
          Effect.as(
            Stream.tapError(raw.executeStream(sql, params, transformRows), (e) => observe(frame.shared, e))
          )
        )
      )
  }
}

const runHooks = (session: Session, hooks: ReadonlyArray<Effect.Effect<void>>): Effect.Effect<void> =>
  hooks.length === 0
    ? Effect.void
    : Effect.locally(
        Effect.forEach(
          hooks,
          (hook) =>
            Effect.catchAllCause(hook, (cause) =>
              Effect.logError(
                "effect-dal: an afterCommit hook failed; the transaction stays committed",
                cause
              )
            ),
          { discard: true }
        ),
        session.transaction,
        Option.none()
      )

const afterCommit = (frame: Frame, effect: Effect.Effect<void>): Effect.Effect<void> =>
  Effect.suspend(() => {
    switch (frame.status) {
      case "active":
      case "ending":
        frame.hooks.push(effect)
        return Effect.void
      case "committed":
        return frame.parent === undefined
          ? runHooks(frame.shared.session, [effect])
          : frame.parent.state.afterCommit(effect)
      case "rolledBack":
        return Effect.void
    }
  })

const exec = (conn: SqlConnection.Connection, sql: string) =>
  Effect.asVoid(conn.executeUnprepared(sql, [], undefined))

const event = (frame: Frame, name: string): Effect.Effect<void> =>
  frame.span === undefined
    ? Effect.void
    : Effect.flatMap(Clock.currentTimeNanos, (now) => Effect.sync(() => frame.span?.event(name, now)))

const driverFailure = (cause: Cause.Cause<unknown>): DatabaseError => fromDriver(Cause.squash(cause))

const sqlFailure = (cause: Cause.Cause<DatabaseError>): DatabaseError =>
  Option.getOrElse(Cause.failureOption(cause), () => driverFailure(cause))

/**
 * The statements that open a transaction with `options` on `session`'s database, or `TxError`
 * (`unsupported`) when it cannot honour them.
 *
 * @internal
 */
export const statementsFor = (
  session: Session,
  options: { readonly isolation?: IsolationLevel | undefined; readonly readOnly?: boolean | undefined }
): Either.Either<TransactionStatements, TxError> =>
  Either.mapLeft(
    session.dialect.transactions.statements(options),
    (detail) => new TxError({ reason: "unsupported", detail })
  )

/**
 * Reserves a connection into `scope`. The wait may be interrupted: the reservation itself runs in
 * a fiber of its own that is never interrupted (an abandoned pg pool wait would leak its
 * connection), so a connection that arrives after the caller gave up lands in `scope`, which the
 * caller has closed by then, and goes straight back to the pool.
 */
const reserveInto = (session: Session, scope: Scope.Scope) =>
  Effect.flatMap(Effect.forkDaemon(Scope.extend(session.sql.reserve, scope)), (fiber) =>
    Effect.interruptible(Fiber.join(fiber))
  )

/**
 * Reserves a connection in a child scope of `scope` and begins a transaction on it. Uninterruptible
 * once the connection is there: an interrupted BEGIN would hand the pool a connection in an unknown
 * state. The frame is rolled back and released when `scope` closes, if nothing ended it.
 *
 * @internal
 */
export const beginRoot = (
  session: Session,
  statements: TransactionStatements,
  scope: Scope.Scope,
  span: Tracer.Span | undefined
): Effect.Effect<Frame, TxError> =>
  Effect.uninterruptible(
    Effect.gen(function* () {
      const id = `tx-${++registry.transactions}`
      const connScope = yield* Scope.fork(scope, ExecutionStrategy.sequential)
      const connection = yield* reserveInto(session, connScope).pipe(
        Effect.tapError(() => Scope.close(connScope, Exit.void)),
        Effect.mapError((e) => {
          const cause = fromDriver(e)
          return new TxError({
            reason: "begin",
            detail: `no connection: ${cause.detail}`,
            transactionId: id,
            cause
          })
        })
      )
      const began = yield* Effect.exit(
        Effect.forEach(statements.begin, (s) => exec(connection, s), { discard: true })
      )
      if (Exit.isFailure(began)) {
        yield* Effect.forEach(["ROLLBACK", ...statements.end], (s) => Effect.ignore(exec(connection, s)), {
          discard: true
        })
        yield* Scope.close(connScope, began)
        const cause = driverFailure(began.cause)
        return yield* new TxError({ reason: "begin", detail: cause.detail, transactionId: id, cause })
      }
      const shared: Shared = {
        session,
        connection,
        end: statements.end,
        abortedBy: undefined,
        doomedBy: undefined,
        failedBy: undefined,
        savepoints: 0
      }
      const frame = new Frame(id, "root", "", undefined, shared, span, Scope.close(connScope, Exit.void))
      yield* Scope.addFinalizerExit(scope, (exit) => abandon(frame, exit))
      return frame
    })
  )

/**
 * Opens a savepoint in `parent`, holding the parent's lock until the savepoint ends: a rollback to
 * one savepoint also discards everything after it, so concurrent savepoints on one connection must
 * not interleave.
 *
 * @internal
 */
export const beginSavepoint = (
  parent: Frame,
  scope: Scope.Scope,
  span: Tracer.Span | undefined
): Effect.Effect<Frame, TxError> =>
  Effect.uninterruptible(
    Effect.zipRight(
      // Waiting for a sibling savepoint to end may be interrupted; once the lock is taken, it is released below.
      Effect.interruptible(parent.lock.take(1)),
      Effect.suspend(() => {
        const shared = parent.shared
        const unlock = parent.lock.release(1)
        if (!parent.isActive) return Effect.zipRight(unlock, Effect.fail(finishedError(parent)))
        const n = ++shared.savepoints
        const id = `${parent.id}/sp-${n}`
        if (shared.abortedBy !== undefined) {
          return Effect.zipRight(
            unlock,
            Effect.fail(
              new TxError({
                reason: "begin",
                detail: `the database already ended the transaction: ${shared.abortedBy.detail}`,
                transactionId: id,
                cause: shared.abortedBy
              })
            )
          )
        }
        const name = `effect_dal_sp_${n}`
        return exec(shared.connection, shared.session.dialect.transactions.savepoint.open(name)).pipe(
          Effect.tapError((e) => observe(shared, e)),
          Effect.matchEffect({
            onFailure: (e) => {
              const cause = fromDriver(e)
              return Effect.zipRight(
                unlock,
                Effect.fail(new TxError({ reason: "begin", detail: cause.detail, transactionId: id, cause }))
              )
            },
            onSuccess: () => {
              const frame = new Frame(id, "savepoint", name, parent, shared, span, unlock)
              return Effect.as(
                Scope.addFinalizerExit(scope, (exit) => abandon(frame, exit)),
                frame
              )
            }
          })
        )
      })
    )
  )

/**
 * The frame of the transaction state the fiber holds: ours, or one opened elsewhere (adopted once
 * so that savepoints in it still get unique names and a lock).
 *
 * @internal
 */
export const frameOf = (session: Session, state: TransactionState): Frame => {
  const known = ownFrames.get(state) ?? foreignFrames.get(state)
  if (known !== undefined) return known
  const shared: Shared = {
    session,
    connection: state.connection,
    end: [],
    abortedBy: undefined,
    doomedBy: undefined,
    failedBy: undefined,
    savepoints: 0
  }
  return new Frame(state.id, "foreign", "", undefined, shared, undefined, Effect.void, state)
}

/** Ends the root: runs the dialect's closing statements, gives the connection back. */
const endRoot = (frame: Frame, status: "committed" | "rolledBack"): Effect.Effect<void> =>
  Effect.suspend(() => {
    frame.status = status
    return Effect.forEach(
      frame.shared.end,
      (s) =>
        Effect.catchAll(exec(frame.shared.connection, s), (e) =>
          Effect.logWarning(`effect-dal: ${s} failed after ${frame.id}`, e)
        ),
      { discard: true }
    ).pipe(Effect.zipRight(frame.release))
  })

const endSavepoint = (frame: Frame, status: "committed" | "rolledBack"): Effect.Effect<void> =>
  Effect.suspend(() => {
    frame.status = status
    return frame.release
  })

/** PostgreSQL answers COMMIT of an aborted transaction with ROLLBACK, not an error. */
const commitStatement = (frame: Frame): Effect.Effect<void, TxError> => {
  const { connection, session } = frame.shared
  const failed = (e: unknown) => {
    const cause = fromDriver(e)
    return new TxError({ reason: "commit", detail: cause.detail, transactionId: frame.id, cause })
  }
  if (!session.dialect.transactions.commitMayRollBack) {
    return Effect.mapError(exec(connection, "COMMIT"), failed)
  }
  return connection.executeRaw("COMMIT", []).pipe(
    Effect.mapError(failed),
    Effect.flatMap((result) =>
      typeof result === "object" && result !== null && "command" in result && result.command === "ROLLBACK"
        ? Effect.fail(
            new TxError({
              reason: "commit",
              detail: "PostgreSQL rolled the transaction back: a statement in it had failed",
              transactionId: frame.id,
              // The statement that aborted it: a serialization failure caught by the work stays retryable.
              cause: frame.shared.failedBy
            })
          )
        : Effect.void
    )
  )
}

const commitRoot = (frame: Frame): Effect.Effect<void, TxError> => {
  const { shared } = frame
  const doomed = shared.abortedBy ?? shared.doomedBy
  if (doomed !== undefined) {
    return Effect.ignore(exec(shared.connection, "ROLLBACK")).pipe(
      Effect.zipRight(endRoot(frame, "rolledBack")),
      Effect.zipRight(event(frame, "db.transaction.rollback")),
      Effect.zipRight(
        Effect.fail(
          new TxError({
            reason: "commit",
            detail:
              shared.abortedBy !== undefined
                ? `the database already rolled it back: ${shared.abortedBy.detail}`
                : "it was marked rollback-only, so it was rolled back",
            transactionId: frame.id,
            cause: doomed
          })
        )
      )
    )
  }
  return commitStatement(frame).pipe(
    Effect.matchEffect({
      // After a failed COMMIT the transaction may still be open on MySQL: never pool it that way.
      onFailure: (error) =>
        Effect.ignore(exec(shared.connection, "ROLLBACK")).pipe(
          Effect.zipRight(endRoot(frame, "rolledBack")),
          Effect.zipRight(event(frame, "db.transaction.rollback")),
          Effect.zipRight(Effect.fail(error))
        ),
      onSuccess: () =>
        endRoot(frame, "committed").pipe(
          Effect.zipRight(event(frame, "db.transaction.commit")),
          Effect.zipRight(
            Effect.suspend(() => {
              const hooks = frame.hooks
              frame.hooks = []
              return runHooks(shared.session, hooks)
            })
          )
        )
    })
  )
}

const commitSavepoint = (frame: Frame): Effect.Effect<void, TxError> => {
  const { shared } = frame
  const parent = frame.parent
  if (shared.abortedBy !== undefined) {
    return endSavepoint(frame, "rolledBack").pipe(
      Effect.zipRight(event(frame, "db.savepoint.rollback")),
      Effect.zipRight(
        Effect.fail(
          new TxError({
            reason: "commit",
            detail: `the database already rolled the transaction back: ${shared.abortedBy.detail}`,
            transactionId: frame.id,
            cause: shared.abortedBy
          })
        )
      )
    )
  }
  return exec(shared.connection, shared.session.dialect.transactions.savepoint.release(frame.name)).pipe(
    Effect.tapError((e) => observe(shared, e)),
    Effect.matchEffect({
      onFailure: (e) => {
        const cause = fromDriver(e)
        // PostgreSQL refuses RELEASE after a failed statement; undo the savepoint's work instead.
        return undoSavepoint(frame).pipe(
          Effect.catchAll((rollbackError) => Effect.sync(() => doom(shared, rollbackError))),
          Effect.zipRight(endSavepoint(frame, "rolledBack")),
          Effect.zipRight(event(frame, "db.savepoint.rollback")),
          Effect.zipRight(
            Effect.fail(
              new TxError({ reason: "commit", detail: cause.detail, transactionId: frame.id, cause })
            )
          )
        )
      },
      onSuccess: () =>
        Effect.suspend(() => {
          const hooks = frame.hooks
          frame.hooks = []
          return endSavepoint(frame, "committed").pipe(
            Effect.zipRight(event(frame, "db.savepoint.release")),
            Effect.zipRight(
              parent === undefined
                ? Effect.void
                : Effect.forEach(hooks, (hook) => parent.state.afterCommit(hook), { discard: true })
            )
          )
        })
    })
  )
}

const doom = (shared: Shared, cause: unknown) => {
  if (shared.doomedBy === undefined) shared.doomedBy = cause
}

const undoSavepoint = (frame: Frame): Effect.Effect<void, DatabaseError> =>
  Effect.mapError(
    Effect.zipRight(
      exec(
        frame.shared.connection,
        frame.shared.session.dialect.transactions.savepoint.rollbackTo(frame.name)
      ),
      Effect.zipRight(
        // A failure inside the savepoint no longer dooms the transaction (PostgreSQL recovers from it).
        Effect.sync(() => {
          frame.shared.failedBy = undefined
        }),
        exec(frame.shared.connection, frame.shared.session.dialect.transactions.savepoint.release(frame.name))
      )
    ),
    (e) => fromDriver(e)
  )

const rollbackFailed = (
  frame: Frame,
  original: Cause.Cause<unknown> | undefined,
  rollbackCause: DatabaseError
) =>
  new TxError({
    reason: "rollback",
    detail:
      original === undefined
        ? rollbackCause.detail
        : `${rollbackCause.detail} (after: ${Cause.pretty(original).split("\n")[0]})`,
    transactionId: frame.id,
    cause: original,
    rollbackCause
  })

const rollbackRoot = (
  frame: Frame,
  original: Cause.Cause<unknown> | undefined
): Effect.Effect<void, TxError> =>
  Effect.exit(exec(frame.shared.connection, "ROLLBACK")).pipe(
    Effect.tap(() => endRoot(frame, "rolledBack")),
    Effect.tap(() => event(frame, "db.transaction.rollback")),
    Effect.flatMap((exit) =>
      Exit.isSuccess(exit)
        ? Effect.void
        : Effect.fail(rollbackFailed(frame, original, driverFailure(exit.cause)))
    )
  )

const rollbackSavepoint = (
  frame: Frame,
  original: Cause.Cause<unknown> | undefined
): Effect.Effect<void, TxError> =>
  // After a MySQL deadlock or a lost connection there is nothing left to roll back to.
  (frame.shared.abortedBy !== undefined ? Effect.exit(Effect.void) : Effect.exit(undoSavepoint(frame))).pipe(
    Effect.tap(() => endSavepoint(frame, "rolledBack")),
    Effect.tap(() => event(frame, "db.savepoint.rollback")),
    Effect.flatMap((exit) => {
      if (Exit.isSuccess(exit)) return Effect.void
      const error = rollbackFailed(frame, original, sqlFailure(exit.cause))
      // The savepoint's work may still be in the transaction: it must not be committed.
      doom(frame.shared, error)
      return Effect.fail(error)
    })
  )

/**
 * Commits the frame (COMMIT, or RELEASE SAVEPOINT) and gives back what it held. After a root commits,
 * its afterCommit hooks run outside the transaction; a savepoint's hooks join its parent's.
 *
 * @internal
 */
export const commit = (frame: Frame): Effect.Effect<void, TxError> =>
  Effect.uninterruptible(
    Effect.suspend(() => {
      if (!frame.isActive || frame.kind === "foreign") return Effect.fail(finishedError(frame))
      frame.status = "ending"
      return frame.kind === "root" ? commitRoot(frame) : commitSavepoint(frame)
    })
  )

/**
 * Rolls the frame back (ROLLBACK, or ROLLBACK TO SAVEPOINT); its hooks are dropped. When the rollback
 * itself fails the error carries `original` (the failure that caused it) and the rollback's error.
 *
 * @internal
 */
export const rollback = (
  frame: Frame,
  original: Cause.Cause<unknown> | undefined
): Effect.Effect<void, TxError> =>
  Effect.uninterruptible(
    Effect.suspend(() => {
      if (!frame.isActive || frame.kind === "foreign") return Effect.fail(finishedError(frame))
      frame.status = "ending"
      frame.hooks = []
      return frame.kind === "root" ? rollbackRoot(frame, original) : rollbackSavepoint(frame, original)
    })
  )

/**
 * Marks the transaction so that its owner's commit rolls back instead (a joined participant's rollback).
 *
 * @internal
 */
export const markRollbackOnly = (frame: Frame, cause: unknown): Effect.Effect<void> =>
  Effect.sync(() => doom(frame.shared, cause))

/**
 * Rolls back a frame still active when its scope closes (a defect in the code that should have
 * ended it), and always gives back what it held.
 *
 * @internal
 */
export const abandon = (frame: Frame, exit: Exit.Exit<unknown, unknown>): Effect.Effect<void> =>
  Effect.suspend(() =>
    frame.isActive
      ? Effect.ignore(rollback(frame, Exit.isFailure(exit) ? exit.cause : undefined))
      : Effect.void
  ).pipe(Effect.ensuring(frame.release))

/**
 * The frame of the transaction the fiber holds on `session`, if it is still active (a transaction
 * that has ended counts as none).
 *
 * @internal
 */
export const active = (session: Session): Effect.Effect<Option.Option<Frame>> =>
  FiberRef.getWith(session.transaction, (state) =>
    Effect.succeed(
      Option.filter(
        Option.map(state, (s) => frameOf(session, s)),
        (f) => f.isActive
      )
    )
  )

/**
 * What `within` opens: a new root transaction with these statements, or a savepoint in `parent`.
 *
 * @internal
 */
export type Opening =
  | { readonly _tag: "Root"; readonly statements: TransactionStatements }
  | { readonly _tag: "Savepoint"; readonly parent: Frame }

/**
 * Opens the frame `opening` asks for; it is rolled back and released when `scope` closes, if nothing
 * ended it before.
 *
 * @internal
 */
export const open = (
  session: Session,
  opening: Opening,
  scope: Scope.Scope,
  span: Tracer.Span | undefined
): Effect.Effect<Frame, TxError> =>
  opening._tag === "Root"
    ? beginRoot(session, opening.statements, scope, span)
    : beginSavepoint(opening.parent, scope, span)

/**
 * Runs `effect` in a new frame: commits when it succeeds, rolls back on a failure, a defect or an
 * interruption. The effect's own failure is returned unchanged after the rollback; a failed COMMIT
 * replaces success with `TxError` (`commit`); a failed ROLLBACK is `TxError` (`rollback`) carrying
 * both failures. After-commit hooks run once the connection is back, each failure logged.
 *
 * @internal
 */
export const within = <A, E, R>(
  session: Session,
  opening: Opening,
  effect: Effect.Effect<A, E, R>,
  span?: Tracer.Span | undefined,
  onOpen: (frame: Frame) => Effect.Effect<void> = () => Effect.void
): Effect.Effect<A, E | TxError, R> =>
  Effect.uninterruptibleMask((restore) =>
    Effect.scopedWith((scope) =>
      Effect.flatMap(open(session, opening, scope, span), (frame) =>
        onOpen(frame).pipe(
          Effect.zipRight(restore(Effect.locally(effect, session.transaction, Option.some(frame.state)))),
          Effect.exit,
          Effect.flatMap((exit) =>
            Effect.flatMap(
              Effect.exit(exit._tag === "Success" ? commit(frame) : rollback(frame, exit.cause)),
              (done): Effect.Effect<A, E | TxError> =>
                // A failed rollback's TxError carries the original failure; a failed commit replaces success.
                done._tag === "Success" ? exit : Effect.failCause(done.cause)
            )
          )
        )
      )
    )
  )
