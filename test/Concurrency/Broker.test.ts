import { assert, describe, it } from "@effect/vitest"
import { Chunk, Effect, Exit, Fiber, Option, Scope, Stream } from "effect"
import * as Broker from "../../src/Concurrency/Broker.js"

const takeN = <A>(sub: Broker.Subscription<A>, n: number) =>
  Effect.forEach(Array.from({ length: n }), () => Effect.map(sub.take, Option.getOrThrow))

describe("Broker", () => {
  it.scoped("every subscriber receives every message, in publish order", () =>
    Effect.gen(function* () {
      const broker = yield* Broker.make<number>()
      const a = yield* broker.subscribe(10)
      const b = yield* broker.subscribe(10)
      yield* Effect.forEach([1, 2, 3], broker.publish, { discard: true })
      assert.deepStrictEqual(yield* takeN(a, 3), [1, 2, 3])
      assert.deepStrictEqual(yield* takeN(b, 3), [1, 2, 3])
    })
  )

  it.scoped("each group receives every message and exactly one member of a group takes it", () =>
    Effect.gen(function* () {
      const broker = yield* Broker.make<number>()
      const members = yield* Effect.all([
        broker.subscribe(100, { group: "billing" }),
        broker.subscribe(100, { group: "billing" }),
        broker.subscribe(100, { group: "audit" }),
        broker.subscribe(100, { group: "audit" })
      ])
      const messages = Array.from({ length: 40 }, (_, i) => i)
      const received = members.map(() => [] as number[])
      const consumers = yield* Effect.forEach(members, (m, i) =>
        Effect.fork(
          Effect.forever(
            Effect.flatMap(m.take, (next) =>
              Effect.zipRight(
                Effect.sync(() => Option.map(next, (n) => received[i]?.push(n))),
                Effect.yieldNow()
              )
            )
          )
        )
      )
      yield* Effect.forEach(messages, broker.publish, { discard: true })
      yield* Effect.repeat(Effect.yieldNow(), {
        until: () => received.reduce((sum, r) => sum + r.length, 0) >= 2 * messages.length
      })
      yield* Fiber.interruptAll(consumers)
      const sorted = (xs: ReadonlyArray<number>) => [...xs].sort((x, y) => x - y)
      assert.deepStrictEqual(sorted([...(received[0] ?? []), ...(received[1] ?? [])]), messages)
      assert.deepStrictEqual(sorted([...(received[2] ?? []), ...(received[3] ?? [])]), messages)
    })
  )

  it.scoped("strategy fail: a full buffer fails the publish, and nobody receives that message", () =>
    Effect.gen(function* () {
      const broker = yield* Broker.make<string>()
      const roomy = yield* broker.subscribe(10, { strategy: "fail" })
      const tight = yield* broker.subscribe(2, { strategy: "fail" })
      yield* broker.publish("a")
      yield* broker.publish("b")
      const error = yield* Effect.flip(broker.publish("c"))
      assert.instanceOf(error, Broker.BrokerFullError)
      assert.strictEqual(error instanceof Broker.BrokerFullError ? error.subscriber : "", "subscriber #2")
      yield* tight.take
      yield* broker.publish("d")
      assert.deepStrictEqual(yield* takeN(roomy, 3), ["a", "b", "d"])
      assert.deepStrictEqual(yield* takeN(tight, 2), ["b", "d"])
    })
  )

  it.scoped("strategy dropOldest: a full buffer drops its oldest message", () =>
    Effect.gen(function* () {
      const broker = yield* Broker.make<number>()
      const sub = yield* broker.subscribe(2, { strategy: "dropOldest" })
      yield* Effect.forEach([1, 2, 3, 4], broker.publish, { discard: true })
      assert.deepStrictEqual(yield* takeN(sub, 2), [3, 4])
    })
  )

  it.scoped("strategy backpressure: the publisher waits for room", () =>
    Effect.gen(function* () {
      const broker = yield* Broker.make<number>()
      const sub = yield* broker.subscribe(1)
      yield* broker.publish(1)
      const waiting = yield* Effect.fork(broker.publish(2))
      yield* Effect.yieldNow()
      assert.isTrue(Option.isNone(yield* Fiber.poll(waiting)))
      assert.deepStrictEqual(yield* sub.take, Option.some(1))
      yield* Fiber.join(waiting)
      assert.deepStrictEqual(yield* sub.take, Option.some(2))
    })
  )

  it.scoped(
    "closing lets subscribers drain what is buffered, then ends them; closing twice is harmless",
    () =>
      Effect.gen(function* () {
        const broker = yield* Broker.make<number>()
        const sub = yield* broker.subscribe(10)
        yield* broker.publish(1)
        yield* broker.publish(2)
        yield* broker.close
        yield* broker.close
        assert.deepStrictEqual(Chunk.toReadonlyArray(yield* Stream.runCollect(sub.stream)), [1, 2])
        assert.isTrue(Option.isNone(yield* sub.take))
        assert.instanceOf(yield* Effect.flip(broker.publish(3)), Broker.BrokerClosedError)
        assert.instanceOf(yield* Effect.flip(broker.subscribe(1)), Broker.BrokerClosedError)
      })
  )

  it.scoped("closing wakes every subscriber and group member waiting on an empty buffer", () =>
    Effect.gen(function* () {
      const broker = yield* Broker.make<number>()
      const subs = yield* Effect.all([
        broker.subscribe(4),
        broker.subscribe(4, { group: "g" }),
        broker.subscribe(4, { group: "g" }),
        broker.subscribe(4, { group: "g" })
      ])
      const waiting = yield* Effect.fork(Effect.forEach(subs, (s) => s.take, { concurrency: "unbounded" }))
      yield* Effect.yieldNow()
      assert.isTrue(Option.isNone(yield* Fiber.poll(waiting)))
      yield* broker.close
      const results = yield* Fiber.join(waiting)
      assert.isTrue(results.every(Option.isNone))
    })
  )

  it.scoped("a stream subscriber waiting on an empty buffer ends when the broker closes", () =>
    Effect.gen(function* () {
      const broker = yield* Broker.make<number>()
      const sub = yield* broker.subscribe(4)
      const collected = yield* Effect.fork(Stream.runCollect(sub.stream))
      yield* broker.publish(7)
      yield* Effect.yieldNow()
      yield* broker.close
      assert.deepStrictEqual(Chunk.toReadonlyArray(yield* Fiber.join(collected)), [7])
    })
  )

  it.scoped("closing frees a publisher waiting on a full buffer, with BrokerClosedError", () =>
    Effect.gen(function* () {
      const broker = yield* Broker.make<number>()
      yield* broker.subscribe(1)
      yield* broker.publish(1)
      const waiting = yield* Effect.fork(broker.publish(2))
      yield* Effect.yieldNow()
      yield* broker.close
      assert.deepStrictEqual(yield* Effect.flip(Fiber.join(waiting)), new Broker.BrokerClosedError())
    })
  )

  it.scoped("leaving (closing the subscription's scope) stops delivery and frees waiting publishers", () =>
    Effect.gen(function* () {
      const broker = yield* Broker.make<number>()
      const stays = yield* broker.subscribe(10)
      const scope = yield* Scope.make()
      yield* Scope.extend(broker.subscribe(1), scope)
      yield* broker.publish(1)
      const waiting = yield* Effect.fork(broker.publish(2))
      yield* Effect.yieldNow()
      assert.isTrue(Option.isNone(yield* Fiber.poll(waiting)))
      yield* Scope.close(scope, Exit.void)
      yield* Fiber.join(waiting)
      yield* broker.publish(3)
      assert.deepStrictEqual(yield* takeN(stays, 3), [1, 2, 3])
    })
  )

  it.scoped("a capacity that is not a positive integer is an IllegalArgumentException", () =>
    Effect.gen(function* () {
      const broker = yield* Broker.make<number>()
      const error = yield* Effect.flip(broker.subscribe(0))
      assert.strictEqual(error._tag, "IllegalArgumentException")
    })
  )
})
