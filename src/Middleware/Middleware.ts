/**
 * Building blocks for query middleware. The `Middleware` type itself lives in `Query/Executor`
 * (`(next: Handler) => Handler`); these helpers build the common shapes: an observer that sees every
 * outcome with its duration, a middleware limited to some queries, and a Layer for a middleware that
 * is built from services (its requirements and construction errors show in the Layer's type).
 *
 * @since 0.1.0
 */
import { type Cause, Clock, Duration, Effect, Exit, Layer, type Scope, Stream } from "effect"
import * as Executor from "../Query/Executor.js"
import type { QueryError } from "../Query/QueryError.js"

/** @since 0.1.0 @category models */
export type Middleware = Executor.Middleware

/** What an observer sees once a query has finished. @since 0.1.0 @category models */
export interface Outcome {
  readonly ctx: Executor.QueryContext
  /** Success, failure, or interruption (e.g. by an outer timeout). */
  readonly exit: Exit.Exit<Executor.QueryResult, QueryError>
  /** Measured with Effect's Clock, so `TestClock` drives it in tests (for a stream: until it ends). */
  readonly duration: Duration.Duration
  /** For a stream, the rows it delivered (its result's `rows` is then empty); `undefined` otherwise. */
  readonly streamed: number | undefined
}

const streamedResult: Executor.QueryResult = { _tag: "Rows", rows: [] }

/**
 * A middleware that runs `f` after every query, whatever its exit, and leaves the result untouched.
 * A stream is observed once, when it ends (completed, failed, or stopped by its consumer).
 *
 * @since 0.1.0 @category constructors
 */
export const observe = (f: (outcome: Outcome) => Effect.Effect<void>): Middleware =>
  Executor.middleware(
    (next) => (ctx) =>
      Effect.flatMap(Clock.currentTimeNanos, (start) =>
        Effect.onExit(next(ctx), (exit) =>
          Effect.flatMap(Clock.currentTimeNanos, (end) =>
            f({ ctx, exit, duration: Duration.nanos(end - start), streamed: undefined })
          )
        )
      ),
    (next) => (ctx) =>
      Stream.unwrap(
        Effect.map(Clock.currentTimeNanos, (start) => {
          let rows = 0
          return next(ctx).pipe(
            Stream.mapChunks((chunk) => {
              rows += chunk.length
              return chunk
            }),
            Stream.ensuringWith((exit) =>
              Effect.flatMap(Clock.currentTimeNanos, (end) =>
                f({
                  ctx,
                  exit: Exit.isSuccess(exit)
                    ? Exit.succeed(streamedResult)
                    : Exit.failCause(exit.cause as Cause.Cause<QueryError>),
                  duration: Duration.nanos(end - start),
                  streamed: rows
                })
              )
            )
          )
        })
      )
  )

/**
 * Applies `middleware` only to the queries `predicate` accepts; the others go straight to `next`.
 *
 * @example
 * const selectTimeout = Middleware.when((ctx) => ctx.type === "SELECT", Timeout.make("2 seconds"))
 * @since 0.1.0 @category combinators
 */
export const when = (
  predicate: (ctx: Executor.QueryContext) => boolean,
  middleware: Middleware
): Middleware =>
  Executor.middleware(
    (next) => {
      const wrapped = middleware(next)
      return (ctx) => (predicate(ctx) ? wrapped(ctx) : next(ctx))
    },
    (next) => {
      const wrapped = Executor.applyStreamMiddleware(next, [middleware])
      return (ctx) => (predicate(ctx) ? wrapped(ctx) : next(ctx))
    }
  )

/**
 * A Layer wrapping the Executor below it in a middleware built by an effect (e.g. one that reads a
 * service). The effect runs once, when the Layer is built; a scoped effect lives as long as the Layer.
 *
 * @example
 * const layer = Middleware.layerEffect(Effect.map(ChangeFeed.ChangeFeed, ChangeCapture.make))
 * @since 0.1.0 @category layers
 */
export const layerEffect = <E, R>(
  middleware: Effect.Effect<Middleware, E, R>
): Layer.Layer<Executor.Executor, E, Executor.Executor | Exclude<R, Scope.Scope>> =>
  Layer.scoped(
    Executor.Executor,
    Effect.flatMap(middleware, (mw) => Effect.map(Executor.Executor, (ex) => Executor.wrap(ex, [mw])))
  )
