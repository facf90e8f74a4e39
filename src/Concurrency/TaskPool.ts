/**
 * A task pool: a fixed number of worker fibers take tasks from a bounded buffer
 * (an Effect `Queue`). `submit` returns once the task is accepted, waiting while the buffer is full;
 * interrupting or timing out the wait (a cancelled context) withdraws the task, which then never runs.
 * The returned handle awaits the task's result. Closing stops accepting and either drains the buffer
 * or discards it; no worker fiber outlives the pool.
 *
 * @since 0.1.0
 */
import { Cause, Data, Deferred, Effect, Exit, Fiber, Queue } from "effect"
import type * as Scope from "effect/Scope"

/**
 * Options for `make`.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** How many tasks run at once (worker fibers). */
  readonly concurrency: number
  /** How many accepted tasks may wait for a worker; 0 hands each task straight to an idle worker. */
  readonly capacity: number
  /**
   * What closing does with accepted work: `drain` (default) runs every queued task and waits for the
   * running ones (a task that never ends keeps the close waiting); `discard` drops the queued ones and
   * interrupts the running ones, whose handles then fail with `TaskPoolClosedError`.
   */
  readonly onClose?: "drain" | "discard"
}

/**
 * A submitted task.
 *
 * @since 0.1.0
 * @category models
 */
export interface TaskHandle<A, E> {
  /** Waits for the task's result; fails with `TaskPoolClosedError` if the pool discarded it. */
  readonly await: Effect.Effect<A, E | TaskPoolClosedError>
}

/**
 * The pool.
 *
 * @since 0.1.0
 * @category models
 */
export interface TaskPool {
  /**
   * Hands `task` to the pool, waiting while the buffer is full; the task runs with the caller's
   * services. Wrap in `Effect.timeout` to bound the wait. A submission still waiting when close
   * begins fails with `TaskPoolClosedError` (unless a worker has already started the task).
   */
  readonly submit: <A, E, R>(
    task: Effect.Effect<A, E, R>
  ) => Effect.Effect<TaskHandle<A, E>, TaskPoolClosedError, R>
  /** Closes the pool (see `Options.onClose`) and waits until its workers are gone; idempotent. */
  readonly close: Effect.Effect<void>
}

/**
 * The pool is closed: a submission was refused, or an accepted task was discarded by `close`.
 *
 * @since 0.1.0
 * @category errors
 */
export class TaskPoolClosedError extends Data.TaggedError("TaskPoolClosedError") {
  /** @since 0.1.0 */
  override get message(): string {
    return "task pool: closed"
  }
}

interface Job {
  /** Set when the submitter gave up (or was refused) before a worker started the task: the job is skipped. */
  withdrawn: boolean
  /** Set by the worker that starts the task: from then on the submitter keeps its handle. */
  started: boolean
  /** Runs the task in its own fiber (so a discarding close can interrupt it) and completes the handle. */
  readonly run: Effect.Effect<void>
  /** Completes the handle with `TaskPoolClosedError` without running the task. */
  readonly discard: Effect.Effect<void>
}

const Stop: unique symbol = Symbol("effect-dal/TaskPool/Stop")

/**
 * Builds a pool that closes with the scope.
 *
 * @example
 * const pool = yield* TaskPool.make({ concurrency: 4, capacity: 100 })
 * const handle = yield* pool.submit(sendEmail(user)).pipe(Effect.timeout("1 second"))
 * const result = yield* handle.await
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  options: Options
): Effect.Effect<TaskPool, Cause.IllegalArgumentException, Scope.Scope> =>
  Effect.gen(function* () {
    const { concurrency, capacity } = options
    if (!Number.isSafeInteger(concurrency) || concurrency < 1) {
      return yield* new Cause.IllegalArgumentException("TaskPool: concurrency must be a positive integer")
    }
    if (!Number.isSafeInteger(capacity) || capacity < 0) {
      return yield* new Cause.IllegalArgumentException("TaskPool: capacity must be a non-negative integer")
    }
    const queue = yield* Queue.bounded<Job | typeof Stop>(capacity)
    /** Completed when close starts: frees submitters waiting for room. */
    const closing = yield* Deferred.make<void>()
    /** Completed when close has finished: a second close waits on it. */
    const closed = yield* Deferred.make<void>()
    const running = new Set<Fiber.RuntimeFiber<unknown, unknown>>()
    let accepting = true
    let discarding = false

    const worker: Effect.Effect<void> = Effect.flatMap(Queue.take(queue), (job) => {
      if (job === Stop) return Effect.void
      if (job.withdrawn) return worker
      if (discarding) return Effect.zipRight(job.discard, worker)
      job.started = true
      return Effect.zipRight(job.run, worker)
    })
    const workers = yield* Effect.forEach(Array.from({ length: concurrency }), () =>
      Effect.forkDaemon(worker)
    )

    const submit = <A, E, R>(task: Effect.Effect<A, E, R>) =>
      Effect.gen(function* () {
        const context = yield* Effect.context<R>()
        const result = yield* Deferred.make<A, E | TaskPoolClosedError>()
        const job: Job = {
          withdrawn: false,
          started: false,
          run: Effect.gen(function* () {
            const fiber = yield* Effect.fork(Effect.provide(task, context))
            running.add(fiber)
            // Started after a discarding close took its snapshot of the running tasks: stop it here.
            if (discarding) yield* Fiber.interrupt(fiber)
            const exit = yield* Fiber.await(fiber)
            running.delete(fiber)
            yield* Deferred.done(
              result,
              discarding && Exit.isInterrupted(exit) ? Exit.fail(new TaskPoolClosedError()) : exit
            )
          }),
          discard: Effect.asVoid(Deferred.fail(result, new TaskPoolClosedError()))
        }
        const handle: TaskHandle<A, E> = { await: Deferred.await(result) }
        const withdraw = Effect.sync(() => {
          if (!job.started) job.withdrawn = true
        })
        // The closed check and the fast-path offer run in one synchronous step.
        const accepted = yield* Effect.sync(() => {
          if (!accepting) return "closed" as const
          return queue.unsafeOffer(job) ? ("accepted" as const) : ("wait" as const)
        })
        if (accepted === "closed") return yield* new TaskPoolClosedError()
        if (accepted === "accepted") return handle
        yield* Effect.raceFirst(Queue.offer(queue, job), Deferred.await(closing)).pipe(
          Effect.onInterrupt(() => withdraw)
        )
        // A submission still waiting when close began is refused, unless a worker already started it.
        const kept = yield* Effect.sync(() => {
          if (accepting || job.started) return true
          job.withdrawn = true
          return false
        })
        if (kept) return handle
        return yield* new TaskPoolClosedError()
      })

    const close = Effect.suspend(() => {
      if (!accepting) return Deferred.await(closed)
      accepting = false
      discarding = options.onClose === "discard"
      return Effect.gen(function* () {
        yield* Deferred.succeed(closing, undefined)
        if (discarding) yield* Fiber.interruptAll([...running])
        // Stop markers queue up behind every accepted task, so each worker finishes the buffer first.
        yield* Effect.forEach(workers, () => Queue.offer(queue, Stop), { discard: true })
        yield* Fiber.awaitAll(workers)
        // A job that slipped in behind the stop markers is discarded (its submitter was refused).
        for (const job of yield* Queue.takeAll(queue)) {
          if (job !== Stop && !job.withdrawn) yield* job.discard
        }
        yield* Queue.shutdown(queue)
        yield* Deferred.succeed(closed, undefined)
      }).pipe(Effect.uninterruptible)
    })
    yield* Effect.addFinalizer(() => close)
    return { submit, close }
  })
