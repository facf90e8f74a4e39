import { describe, expect, it } from "@effect/vitest"
import { Effect, Ref, TestClock } from "effect"
import * as ShutdownHooks from "../../src/Demo/ShutdownHooks.js"

describe("ShutdownHooks", () => {
  it.effect(
    "runs hooks once, by order then registration, each under its own timeout; a failure does not stop the rest",
    () =>
      Effect.gen(function* () {
        const hooks = yield* ShutdownHooks.make
        const ran = yield* Ref.make<ReadonlyArray<string>>([])
        const mark = (name: string) => Ref.update(ran, (all) => [...all, name])
        yield* hooks.register("report", mark("report"))
        yield* hooks.register("broken", Effect.zipRight(mark("broken"), Effect.fail("boom")))
        yield* hooks.register("stuck", Effect.zipRight(mark("stuck"), Effect.never), { timeout: "1 second" })
        yield* hooks.register("flush", mark("flush"), { order: 0 })
        expect(yield* hooks.isShuttingDown).toBe(false)
        const fiber = yield* Effect.fork(hooks.run)
        yield* TestClock.adjust("1 second")
        const outcomes = yield* fiber.await.pipe(Effect.flatten)
        expect(outcomes.map((o) => [o.name, o.outcome])).toEqual([
          ["flush", "done"],
          ["report", "done"],
          ["broken", "failed"],
          ["stuck", "timed out"]
        ])
        expect(yield* Ref.get(ran)).toEqual(["flush", "report", "broken", "stuck"])
        expect(yield* hooks.isShuttingDown).toBe(true)
        yield* hooks.run
        expect(yield* Ref.get(ran)).toHaveLength(4)
      })
  )
})
