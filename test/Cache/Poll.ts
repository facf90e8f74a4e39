/**
 * Waiting for something another process, a Redis server or a background fiber does in real time:
 * polling with a deadline, never a fixed sleep.
 */
import { Effect } from "effect"

/** Runs `check` every 50 ms (real time) until it holds or `ms` pass; dies naming `what` otherwise. */
export const pollUntil = <E, R>(what: string, ms: number, check: Effect.Effect<boolean, E, R>) =>
  Effect.gen(function* () {
    const deadline = Date.now() + ms
    while (Date.now() < deadline) {
      if (yield* check) return
      yield* Effect.sleep("50 millis")
    }
    return yield* Effect.die(new Error(`timed out waiting for ${what}`))
  })
