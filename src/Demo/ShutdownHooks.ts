/**
 * Exit hooks: any part of the program registers an effect to run at shutdown
 * (the write-back flush, a final report...). Hooks run once, in order (lower `order` first, then
 * registration order), each under its own timeout; a failing or late hook is logged and the next
 * one still runs.
 *
 * @since 0.1.0
 */
import { Context, Duration, Effect, Layer, Ref } from "effect"

/** @since 0.1.0 @category models */
export interface HookOptions {
  /** Lower runs first (default 100). The write-back flush registers with 0. */
  readonly order?: number
  /** Default 5 seconds. */
  readonly timeout?: Duration.DurationInput
}

/** What happened to one hook. @since 0.1.0 @category models */
export interface HookOutcome {
  readonly name: string
  readonly outcome: "done" | "failed" | "timed out"
  readonly millis: number
}

/** @since 0.1.0 @category models */
export interface ShutdownHooksService {
  readonly register: (
    name: string,
    hook: Effect.Effect<void, unknown>,
    options?: HookOptions
  ) => Effect.Effect<void>
  /** Marks the program as shutting down (the health endpoint reports it). */
  readonly begin: Effect.Effect<void>
  readonly isShuttingDown: Effect.Effect<boolean>
  /** Runs every hook once; later calls return the first run's outcomes. */
  readonly run: Effect.Effect<ReadonlyArray<HookOutcome>>
}

/** @since 0.1.0 @category tags */
export class ShutdownHooks extends Context.Tag("effect-dal/ShutdownHooks")<
  ShutdownHooks,
  ShutdownHooksService
>() {}

interface Hook {
  readonly name: string
  readonly effect: Effect.Effect<void, unknown>
  readonly order: number
  readonly timeout: Duration.Duration
  readonly seq: number
}

/** @since 0.1.0 @category constructors */
export const make: Effect.Effect<ShutdownHooksService> = Effect.gen(function* () {
  const hooks = yield* Ref.make<ReadonlyArray<Hook>>([])
  const shuttingDown = yield* Ref.make(false)
  const runOne = (hook: Hook): Effect.Effect<HookOutcome> =>
    Effect.gen(function* () {
      const start = Date.now()
      const result = yield* hook.effect.pipe(
        Effect.timeoutFail({ duration: hook.timeout, onTimeout: () => "timed out" as const }),
        Effect.map(() => "done" as const),
        Effect.catchAllCause((cause) =>
          Effect.as(
            Effect.logError(`shutdown hook ${hook.name} failed`, cause),
            cause._tag === "Fail" && cause.error === "timed out"
              ? ("timed out" as const)
              : ("failed" as const)
          )
        )
      )
      const millis = Date.now() - start
      yield* Effect.logInfo(`shutdown: hook ${hook.name} ${result} in ${millis} ms`)
      return { name: hook.name, outcome: result, millis }
    })
  const runAll = Effect.flatMap(Ref.get(hooks), (all) =>
    Effect.forEach(
      [...all].sort((a, b) => a.order - b.order || a.seq - b.seq),
      runOne
    )
  )
  const run = yield* Effect.cached(Effect.zipRight(Ref.set(shuttingDown, true), runAll))
  return {
    register: (name, effect, options = {}) =>
      Ref.update(hooks, (all) => [
        ...all,
        {
          name,
          effect,
          order: options.order ?? 100,
          timeout: Duration.decode(options.timeout ?? "5 seconds"),
          seq: all.length
        }
      ]),
    begin: Ref.set(shuttingDown, true),
    isShuttingDown: Ref.get(shuttingDown),
    run
  }
})

/** @since 0.1.0 @category layers */
export const layer: Layer.Layer<ShutdownHooks> = Layer.effect(ShutdownHooks, make)
