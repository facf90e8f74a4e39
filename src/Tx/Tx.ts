/**
 * Transactions as context. A transaction belongs to the database of the `Executor` in context; every
 * builder and raw query run inside it uses its connection without being handed anything.
 *
 * - `Tx.run(effect, options)`: the closure form: commits when `effect` succeeds, rolls back on a
 *   failure, a defect or an interruption, and reports a failed COMMIT or ROLLBACK as a `TxError`.
 * - `Tx.begin(options)`: the same as a scoped resource, with a handle for explicit control;
 *   `Tx.layer(options)` is that resource as a Layer.
 * - `options.propagation` decides what happens when a transaction is already running.
 *
 * @example
 * const transfer = Effect.gen(function* () {
 *   yield* debit
 *   yield* credit
 * }).pipe(Tx.run({ isolation: "repeatable read" }), Tx.retry(Schedule.recurs(3)))
 * @since 0.1.0
 */
import { SqlError as DriverError } from "@effect/sql/SqlError"
import {
  Cause,
  Context,
  Effect,
  Either,
  FiberRef,
  Layer,
  Option,
  type Schedule,
  type Scope,
  Tracer
} from "effect"
import { dual } from "effect/Function"
import type * as Dialect from "../Query/Dialect.js"
import { Executor } from "../Query/Executor.js"
import * as Frame from "../Query/internal/transaction.js"
import { classify, DatabaseError } from "../Query/QueryError.js"
import * as Session from "../Query/Session.js"
import { TxError } from "../Query/TxError.js"

/**
 * What to do when the fiber already holds a transaction on the database.
 *
 * - `required` (default): join it, or begin one
 * - `requiresNew`: begin an independent one on another connection; the current one is suspended
 *   (inside a transaction on a database with one connection — SQLite, a pool of one — `TxError`
 *   `unsupported` at once, since the second connection would never come)
 * - `nested`: a savepoint in the current one (rolled back alone), or begin one
 * - `supports`: join it, or run without a transaction
 * - `notSupported`: run outside it (on one connection inside a transaction: `unsupported`, as above)
 * - `mandatory`: join it, or fail with `TxError` (`mandatory`)
 * - `never`: run without a transaction, or fail with `TxError` (`never`) when there is one
 *
 * @since 0.1.0
 * @category models
 */
export type Propagation =
  | "required"
  | "requiresNew"
  | "nested"
  | "supports"
  | "notSupported"
  | "mandatory"
  | "never"

/**
 * The SQL isolation levels. SQLite only has `serializable`; PostgreSQL runs `read uncommitted` as
 * `read committed`.
 *
 * @since 0.1.0
 * @category models
 */
export type IsolationLevel = Dialect.IsolationLevel

/**
 * Options of a new transaction. A joined transaction or a savepoint keeps the level and access mode
 * of the transaction it is part of.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  readonly propagation?: Propagation | undefined
  /** The database's default when absent. */
  readonly isolation?: IsolationLevel | undefined
  /** Refuse writes (`START TRANSACTION READ ONLY`, `BEGIN READ ONLY`, SQLite `PRAGMA query_only`). */
  readonly readOnly?: boolean | undefined
}

/**
 * A handle on the unit of work `Tx.begin` opened.
 *
 * @since 0.1.0
 * @category models
 */
export interface Transaction {
  /** The transaction or savepoint id (spans, logs); undefined when running without one. */
  readonly id: string | undefined
  /**
   * `transaction`: this handle began it; `savepoint`: a nested unit; `joined`: part of a transaction
   * owned by someone else; `none`: no transaction (`supports`, `notSupported`, `never`).
   */
  readonly mode: "transaction" | "savepoint" | "joined" | "none"
  /**
   * Commits now (a savepoint is released). A second call, or any use after the end, fails with
   * `TxError` (`finished`). A joined unit leaves committing to the owner.
   */
  readonly commit: Effect.Effect<void, TxError>
  /** Rolls back now. A joined unit marks the owner rollback-only: its commit then rolls back and fails. */
  readonly rollback: Effect.Effect<void, TxError>
  /** Rolls back unless already committed or rolled back; then a no-op. */
  readonly rollbackIfNotCommitted: Effect.Effect<void, TxError>
  /** Runs `effect` after the outermost transaction commits; dropped when it rolls back. */
  readonly afterCommit: (effect: Effect.Effect<void>) => Effect.Effect<void>
}

/**
 * The handle `Tx.layer` provides.
 *
 * @since 0.1.0
 * @category tags
 */
export const Transaction = Context.GenericTag<Transaction>("effect-dal/Tx/Transaction")

type Plan =
  | { readonly _tag: "Begin" }
  | { readonly _tag: "Savepoint"; readonly parent: Frame.Frame }
  | { readonly _tag: "Join"; readonly frame: Frame.Frame }
  | { readonly _tag: "Without" }

const begin_: Plan = { _tag: "Begin" }
const without: Plan = { _tag: "Without" }

const unsupported = (detail: string) => Effect.fail(new TxError({ reason: "unsupported", detail }))

/** Decides from the propagation and the transaction (if any) the fiber holds on `session`. */
const plan = (session: Session.Session, options: Options): Effect.Effect<Plan, TxError> =>
  // A transaction that has ended counts as none.
  Effect.flatMap(Frame.active(session), (current) => {
    const oneConnection = Session.singleConnection(session)
    switch (options.propagation ?? "required") {
      case "required":
        return Effect.succeed(
          Option.match(current, { onNone: () => begin_, onSome: (frame) => ({ _tag: "Join", frame }) })
        )
      case "requiresNew":
        return Option.isSome(current) && oneConnection
          ? unsupported(
              `requiresNew on ${session.label}: its one connection is held by the current transaction, so a second would wait forever`
            )
          : Effect.succeed(begin_)
      case "nested":
        return Effect.succeed(
          Option.match(current, { onNone: () => begin_, onSome: (parent) => ({ _tag: "Savepoint", parent }) })
        )
      case "supports":
        return Effect.succeed(
          Option.match(current, { onNone: () => without, onSome: (frame) => ({ _tag: "Join", frame }) })
        )
      case "notSupported":
        return Option.isSome(current) && oneConnection
          ? unsupported(
              `notSupported on ${session.label}: its one connection is held by the current transaction, so work outside it would wait forever`
            )
          : Effect.succeed(without)
      case "mandatory":
        return Option.match(current, {
          onNone: () =>
            Effect.fail(new TxError({ reason: "mandatory", detail: `no transaction on ${session.label}` })),
          onSome: (frame) => Effect.succeed<Plan>({ _tag: "Join", frame })
        })
      case "never":
        return Option.match(current, {
          onNone: () => Effect.succeed(without),
          onSome: (frame) =>
            Effect.fail(
              new TxError({
                reason: "never",
                detail: `a transaction is running on ${session.label}`,
                transactionId: frame.id
              })
            )
        })
    }
  })

const spanOptions = (session: Session.Session, options: Options) => ({
  kind: "client" as const,
  captureStackTrace: false,
  attributes: {
    "db.system.name": session.dialect.name,
    "effect_dal.database": session.label,
    "effect_dal.transaction.propagation": options.propagation ?? "required",
    ...(options.isolation === undefined ? {} : { "effect_dal.transaction.isolation": options.isolation }),
    ...(options.readOnly === undefined ? {} : { "effect_dal.transaction.read_only": options.readOnly })
  }
})

const spanName = (p: Plan) => (p._tag === "Savepoint" ? "db.savepoint" : "db.transaction")

/** The frame a plan that opens one asks for: a root with the options' statements, or a savepoint. */
const openingOf = (
  session: Session.Session,
  p: Plan & { readonly _tag: "Begin" | "Savepoint" },
  options: Options
): Either.Either<Frame.Opening, TxError> =>
  p._tag === "Savepoint"
    ? Either.right({ _tag: "Savepoint", parent: p.parent })
    : Either.map(Frame.statementsFor(session, options), (statements) => ({ _tag: "Root", statements }))

const tagSpan = (span: Tracer.Span) => (frame: Frame.Frame) =>
  Effect.sync(() => span.attribute("effect_dal.transaction.id", frame.id))

const inFrame = <A, E, R>(
  session: Session.Session,
  p: Plan & { readonly _tag: "Begin" | "Savepoint" },
  options: Options,
  effect: Effect.Effect<A, E, R>
): Effect.Effect<A, E | TxError, R> =>
  Effect.useSpan(spanName(p), spanOptions(session, options), (span) =>
    Either.match(openingOf(session, p, options), {
      onLeft: Effect.fail,
      onRight: (opening) =>
        Frame.within(session, opening, Effect.withParentSpan(effect, span), span, tagSpan(span))
    })
  )

const runIn = <A, E, R>(
  session: Session.Session,
  effect: Effect.Effect<A, E, R>,
  options: Options
): Effect.Effect<A, E | TxError, R> =>
  Effect.flatMap(plan(session, options), (p) => {
    switch (p._tag) {
      case "Join":
        return effect
      case "Without":
        return Effect.locally(effect, session.transaction, Option.none())
      case "Begin":
      case "Savepoint":
        return inFrame(session, p, options, effect)
    }
  })

/**
 * Runs `effect` in a transaction on the Executor's database (DoTx): commits when it
 * succeeds; rolls back on a failure, a defect or an interruption. A failed COMMIT is a `TxError`
 * (`commit`); a failed ROLLBACK is a `TxError` (`rollback`) carrying both failures.
 *
 * @example
 * const order = Effect.gen(function* () {
 *   yield* Insert.into(Order).values(o).exec()
 *   yield* Tx.run(audit, { propagation: "nested" }) // a failing audit undoes only itself
 * }).pipe(Tx.run())
 * @since 0.1.0
 * @category combinators
 */
export const run: {
  (options?: Options): <A, E, R>(self: Effect.Effect<A, E, R>) => Effect.Effect<A, E | TxError, R | Executor>
  <A, E, R>(self: Effect.Effect<A, E, R>, options?: Options): Effect.Effect<A, E | TxError, R | Executor>
} = dual(
  (args) => Effect.isEffect(args[0]),
  <A, E, R>(self: Effect.Effect<A, E, R>, options: Options = {}) =>
    Effect.flatMap(Executor, (executor) => runIn(executor.session, self, options))
)

const handleOf = (frame: Frame.Frame): Transaction => ({
  id: frame.id,
  mode: frame.kind === "savepoint" ? "savepoint" : "transaction",
  commit: Frame.commit(frame),
  rollback: Frame.rollback(frame, undefined),
  rollbackIfNotCommitted: Effect.suspend(() =>
    frame.isActive ? Frame.rollback(frame, undefined) : Effect.void
  ),
  afterCommit: frame.state.afterCommit
})

/** A handle that owns nothing: ending it only ends this handle (and, joined, may doom the owner). */
const participantHandle = (frame: Frame.Frame | undefined): Transaction => {
  let ended = false
  const end = (effect: Effect.Effect<void>) =>
    Effect.suspend(() => {
      if (ended) {
        return Effect.fail(
          new TxError({ reason: "finished", detail: "this unit already ended", transactionId: frame?.id })
        )
      }
      ended = true
      return effect
    })
  const rollback = end(
    frame === undefined
      ? Effect.void
      : Frame.markRollbackOnly(
          frame,
          new TxError({ reason: "rollback", detail: "a joined unit rolled back", transactionId: frame.id })
        )
  )
  return {
    id: frame?.id,
    mode: frame === undefined ? "none" : "joined",
    commit: end(Effect.void),
    rollback,
    rollbackIfNotCommitted: Effect.suspend(() => (ended ? Effect.void : rollback)),
    afterCommit: frame === undefined ? (effect) => effect : frame.state.afterCommit
  }
}

/**
 * Begins a transaction for the rest of the enclosing scope: queries after it run in it, and when the
 * scope closes it commits on success and rolls back on a failure, a defect or an interruption,
 * unless the handle already ended it. A commit failing as the scope closes can only be a defect
 * (finalizers cannot fail): end the scope with `yield* tx.commit` to get it as a `TxError`.
 *
 * @example
 * Effect.scoped(Effect.gen(function* () {
 *   const tx = yield* Tx.begin({ isolation: "serializable" })
 *   yield* Update.table(Account).set({ balance: 0 }).where((a) => a.id.eq(1)).exec()
 *   yield* tx.commit
 * }))
 * @since 0.1.0
 * @category constructors
 */
export const begin = (options: Options = {}): Effect.Effect<Transaction, TxError, Scope.Scope | Executor> =>
  Effect.gen(function* () {
    const { session } = yield* Executor
    const p = yield* plan(session, options)
    switch (p._tag) {
      case "Join":
        return participantHandle(p.frame)
      case "Without":
        yield* Effect.locallyScoped(session.transaction, Option.none())
        return participantHandle(undefined)
      case "Begin":
      case "Savepoint": {
        const span = yield* Effect.makeSpanScoped(spanName(p), spanOptions(session, options))
        const scope = yield* Effect.scope
        const opening = yield* openingOf(session, p, options)
        const frame = yield* Frame.open(session, opening, scope, span).pipe(Effect.tap(tagSpan(span)))
        yield* Effect.addFinalizer((exit) =>
          Effect.suspend(() =>
            frame.isActive
              ? Effect.orDie(
                  exit._tag === "Success" ? Frame.commit(frame) : Frame.rollback(frame, exit.cause)
                )
              : Effect.void
          )
        )
        yield* Effect.locallyScoped(session.transaction, Option.some(frame.state))
        yield* Effect.locallyScopedWith(FiberRef.currentContext, Context.add(Tracer.ParentSpan, span))
        return handleOf(frame)
      }
    }
  })

/**
 * `Tx.begin` as a Layer: the program it is provided to runs in one transaction that commits when
 * the program succeeds.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options = {}): Layer.Layer<Transaction, TxError, Executor> =>
  Layer.scopedContext(Effect.map(begin(options), (tx) => Context.make(Transaction, tx)))

const retryableReasons: ReadonlySet<string> = new Set(["deadlock", "lock_timeout", "serialization"])

/**
 * True for a deadlock, a lock timeout or a serialization failure, also when a `TxError` reports it from a COMMIT or carries it
 * as the failure that a failed ROLLBACK followed: in each case nothing was committed.
 *
 * @since 0.1.0
 * @category predicates
 */
export const isRetryable = (error: unknown): boolean => {
  if (error instanceof DatabaseError) return retryableReasons.has(error.reason)
  if (error instanceof DriverError) return retryableReasons.has(classify(error))
  if (error instanceof TxError) {
    return (error.reason === "commit" || error.reason === "rollback") && isRetryable(error.cause)
  }
  if (Cause.isCause(error))
    return Option.match(Cause.failureOption(error), { onNone: () => false, onSome: isRetryable })
  return false
}

/**
 * Re-runs a whole transaction (a `Tx.run` or a scoped `Tx.begin`) while it fails with a deadlock, a
 * lock timeout or a serialization failure (`isRetryable`), as `schedule` allows. Inside another transaction it does not retry:
 * the database has dropped the outer transaction's work too, so only the outermost one can retry.
 *
 * @since 0.1.0
 * @category combinators
 */
export const retry =
  <X, RS>(schedule: Schedule.Schedule<X, unknown, RS>) =>
  <A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E, R | RS | Executor> =>
    Effect.flatMap(Executor, ({ session }) =>
      Effect.flatMap(Frame.active(session), (current) =>
        Option.isSome(current) ? self : Effect.retry(self, { schedule, while: isRetryable })
      )
    )

/**
 * Runs `effect` after the current transaction on the Executor's database commits (dropped if it
 * rolls back), or now when there is none.
 *
 * @since 0.1.0
 * @category combinators
 */
export const afterCommit = (effect: Effect.Effect<void>): Effect.Effect<void, never, Executor> =>
  Effect.flatMap(Executor, ({ session }) =>
    FiberRef.getWith(session.transaction, (state) =>
      Option.match(state, { onNone: () => effect, onSome: (s) => s.afterCommit(effect) })
    )
  )
