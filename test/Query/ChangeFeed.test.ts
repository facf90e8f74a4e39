import { assert, describe, it } from "@effect/vitest"
import { Chunk, Effect, Exit, Fiber, Queue, Scope, Stream } from "effect"
import * as ChangeFeed from "../../src/Query/ChangeFeed.js"

const event = (table: string, rowsAffected = 1): ChangeFeed.ChangeEvent => ({
  database: "test",
  table,
  type: "UPDATE",
  primaryKeys: [{ id: rowsAffected }],
  rowsAffected
})

describe("ChangeFeed", () => {
  it.scoped("every subscriber receives every event published after it subscribed, in order", () =>
    Effect.gen(function* () {
      const feed = yield* ChangeFeed.make
      const early = yield* feed.subscribe
      yield* feed.publish(event("a"))
      const late = yield* feed.subscribe
      yield* feed.publish(event("b"))
      yield* feed.publish(event("c"))
      assert.deepStrictEqual(
        Chunk.toReadonlyArray(yield* Queue.takeAll(early)).map((e) => e.table),
        ["a", "b", "c"]
      )
      assert.deepStrictEqual(
        Chunk.toReadonlyArray(yield* Queue.takeAll(late)).map((e) => e.table),
        ["b", "c"]
      )
    })
  )

  it.scoped("a subscriber that does not read never blocks the publisher (unbounded)", () =>
    Effect.gen(function* () {
      const feed = yield* ChangeFeed.make
      const idle = yield* feed.subscribe
      for (let i = 0; i < 10_000; i++) yield* feed.publish(event("t", i))
      assert.strictEqual(yield* Queue.size(idle), 10_000)
    })
  )

  it.effect("the layer's accessors subscribe and stream from the feed in context", () =>
    Effect.gen(function* () {
      const feed = yield* ChangeFeed.ChangeFeed
      const taken = yield* Effect.scoped(
        Effect.gen(function* () {
          const queue = yield* ChangeFeed.subscribe
          yield* feed.publish(event("x"))
          return yield* Queue.take(queue)
        })
      )
      assert.strictEqual(taken.table, "x")
      const collected = yield* Effect.fork(Stream.runCollect(Stream.take(ChangeFeed.changes, 2)))
      // Publish until the stream's subscription is live and has taken two events.
      yield* Effect.repeat(feed.publish(event("y")), { until: () => collected.unsafePoll() !== null })
      const tables = Chunk.toReadonlyArray(yield* Fiber.join(collected)).map((e) => e.table)
      assert.deepStrictEqual(tables, ["y", "y"])
    }).pipe(Effect.provide(ChangeFeed.layer))
  )

  it.effect("closing the feed's scope ends its subscriptions", () =>
    Effect.gen(function* () {
      const scope = yield* Scope.make()
      const feed = yield* Scope.extend(ChangeFeed.make, scope)
      const queue = yield* Scope.extend(feed.subscribe, scope)
      yield* Scope.close(scope, Exit.void)
      assert.isTrue(yield* Queue.isShutdown(queue))
    })
  )
})
