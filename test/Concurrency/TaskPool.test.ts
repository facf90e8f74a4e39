import { assert, describe, it } from "@effect/vitest"
import { Context, Deferred, Effect, Exit, Fiber, Option, Ref, Supervisor, TestClock } from "effect"
import * as TaskPool from "../../src/Concurrency/TaskPool.js"

/** A task that records how many tasks run at once and finishes when `gate` opens. */
const gated = (
  gate: Deferred.Deferred<void>,
  active: Ref.Ref<number>,
  peak: Ref.Ref<number>,
  value: number
) =>
  Effect.gen(function* () {
    const now = yield* Ref.updateAndGet(active, (n) => n + 1)
    yield* Ref.update(peak, (p) => Math.max(p, now))
    yield* Deferred.await(gate)
    yield* Ref.update(active, (n) => n - 1)
    return value
  })

const isClosed = (e: unknown) => e instanceof TaskPool.TaskPoolClosedError

describe("TaskPool", () => {
  it.scoped("runs at most `concurrency` tasks at once and hands back each result", () =>
    Effect.gen(function* () {
      const pool = yield* TaskPool.make({ concurrency: 2, capacity: 10 })
      const gate = yield* Deferred.make<void>()
      const active = yield* Ref.make(0)
      const peak = yield* Ref.make(0)
      const handles = yield* Effect.forEach([1, 2, 3, 4, 5, 6], (n) =>
        pool.submit(gated(gate, active, peak, n))
      )
      const started = yield* Effect.repeat(Effect.zipRight(Effect.yieldNow(), Ref.get(active)), {
        until: (n) => n >= 2,
        times: 100
      })
      assert.strictEqual(started, 2)
      yield* Deferred.succeed(gate, undefined)
      assert.deepStrictEqual(yield* Effect.forEach(handles, (h) => h.await), [1, 2, 3, 4, 5, 6])
      assert.strictEqual(yield* Ref.get(peak), 2)
    })
  )

  it.scoped("a failing or dying task fails its own handle and the worker carries on", () =>
    Effect.gen(function* () {
      const pool = yield* TaskPool.make({ concurrency: 1, capacity: 4 })
      const failed = yield* pool.submit(Effect.fail("nope"))
      const died = yield* pool.submit(Effect.die("boom"))
      const fine = yield* pool.submit(Effect.succeed(3))
      assert.strictEqual(yield* Effect.flip(failed.await), "nope")
      assert.isTrue(Exit.isFailure(yield* Effect.exit(died.await)))
      assert.strictEqual(yield* fine.await, 3)
    })
  )

  it.scoped("submit waits while the buffer is full and returns once the task is accepted", () =>
    Effect.gen(function* () {
      const pool = yield* TaskPool.make({ concurrency: 1, capacity: 1 })
      const gate = yield* Deferred.make<void>()
      const active = yield* Ref.make(0)
      const peak = yield* Ref.make(0)
      yield* pool.submit(gated(gate, active, peak, 1))
      yield* pool.submit(gated(gate, active, peak, 2))
      const third = yield* Effect.fork(pool.submit(gated(gate, active, peak, 3)))
      yield* Effect.yieldNow()
      assert.isTrue(Option.isNone(yield* Fiber.poll(third)))
      yield* Deferred.succeed(gate, undefined)
      const handle = yield* Fiber.join(third)
      assert.strictEqual(yield* handle.await, 3)
    })
  )

  it.scoped("capacity 0 hands a task straight to an idle worker and otherwise waits", () =>
    Effect.gen(function* () {
      const pool = yield* TaskPool.make({ concurrency: 1, capacity: 0 })
      const gate = yield* Deferred.make<void>()
      yield* Effect.yieldNow()
      const first = yield* pool.submit(Effect.as(Deferred.await(gate), "first"))
      const second = yield* Effect.fork(pool.submit(Effect.succeed("second")))
      yield* Effect.yieldNow()
      assert.isTrue(Option.isNone(yield* Fiber.poll(second)))
      yield* Deferred.succeed(gate, undefined)
      assert.strictEqual(yield* first.await, "first")
      assert.strictEqual(yield* Effect.flatMap(Fiber.join(second), (h) => h.await), "second")
    })
  )

  it.scoped("a wait that times out or is interrupted withdraws the task: it never runs", () =>
    Effect.gen(function* () {
      const pool = yield* TaskPool.make({ concurrency: 1, capacity: 1 })
      const gate = yield* Deferred.make<void>()
      const ran = yield* Ref.make<Array<string>>([])
      const record = (name: string) => Ref.update(ran, (all) => [...all, name])
      yield* pool.submit(Effect.zipRight(Deferred.await(gate), record("running")))
      yield* pool.submit(record("queued"))
      const timedOut = yield* Effect.fork(pool.submit(record("timed out")).pipe(Effect.timeout("1 second")))
      const interrupted = yield* Effect.fork(pool.submit(record("interrupted")))
      yield* Effect.yieldNow()
      yield* TestClock.adjust("1 second")
      const timeout = yield* Effect.flip(Fiber.join(timedOut))
      assert.strictEqual(timeout._tag, "TimeoutException")
      yield* Fiber.interrupt(interrupted)
      yield* Deferred.succeed(gate, undefined)
      const last = yield* pool.submit(record("last"))
      yield* last.await
      assert.deepStrictEqual(yield* Ref.get(ran), ["running", "queued", "last"])
    })
  )

  it.scoped("tasks run with the submitter's services", () =>
    Effect.gen(function* () {
      class Greeting extends Context.Tag("Greeting")<Greeting, string>() {}
      const pool = yield* TaskPool.make({ concurrency: 1, capacity: 1 })
      const handle = yield* pool
        .submit(Effect.map(Greeting, (g) => `${g}, pool`))
        .pipe(Effect.provideService(Greeting, "hello"))
      assert.strictEqual(yield* handle.await, "hello, pool")
    })
  )

  it.scoped("close (drain) runs every accepted task, refuses new ones, and is idempotent", () =>
    Effect.gen(function* () {
      const pool = yield* TaskPool.make({ concurrency: 1, capacity: 5 })
      const gate = yield* Deferred.make<void>()
      const first = yield* pool.submit(Effect.as(Deferred.await(gate), 1))
      const queued = yield* Effect.forEach([2, 3, 4], (n) => pool.submit(Effect.succeed(n)))
      const closing = yield* Effect.fork(pool.close)
      yield* Effect.yieldNow()
      assert.isTrue(isClosed(yield* Effect.flip(pool.submit(Effect.succeed(5)))))
      assert.isTrue(Option.isNone(yield* Fiber.poll(closing)))
      yield* Deferred.succeed(gate, undefined)
      yield* Fiber.join(closing)
      yield* pool.close
      assert.deepStrictEqual(yield* Effect.forEach([first, ...queued], (h) => h.await), [1, 2, 3, 4])
    })
  )

  it.scoped("close (discard) drops queued tasks, interrupts running ones, and frees waiting submitters", () =>
    Effect.gen(function* () {
      const pool = yield* TaskPool.make({ concurrency: 1, capacity: 1, onClose: "discard" })
      const ran = yield* Ref.make(0)
      const running = yield* pool.submit(Effect.never)
      const queued = yield* pool.submit(Ref.update(ran, (n) => n + 1))
      const waiting = yield* Effect.fork(pool.submit(Ref.update(ran, (n) => n + 1)))
      yield* Effect.yieldNow()
      yield* pool.close
      assert.isTrue(isClosed(yield* Effect.flip(running.await)))
      assert.isTrue(isClosed(yield* Effect.flip(queued.await)))
      assert.isTrue(isClosed(yield* Effect.flip(Fiber.join(waiting))))
      assert.strictEqual(yield* Ref.get(ran), 0)
    })
  )

  it.effect("no fiber is left behind once a pool's scope closes, drained or discarded", () =>
    Effect.gen(function* () {
      const supervisor = yield* Supervisor.track
      yield* Effect.gen(function* () {
        yield* Effect.scoped(
          Effect.gen(function* () {
            const pool = yield* TaskPool.make({ concurrency: 3, capacity: 2 })
            const handles = yield* Effect.forEach([1, 2, 3, 4], (n) => pool.submit(Effect.succeed(n)))
            assert.isAtLeast((yield* supervisor.value).length, 3)
            yield* Effect.forEach(handles, (h) => h.await)
          })
        )
        yield* Effect.scoped(
          Effect.gen(function* () {
            const pool = yield* TaskPool.make({ concurrency: 1, capacity: 0, onClose: "discard" })
            yield* Effect.yieldNow()
            yield* pool.submit(Effect.never)
            const waiting = yield* Effect.fork(pool.submit(Effect.void))
            yield* Effect.yieldNow()
            yield* pool.close
            assert.isTrue(isClosed(yield* Effect.flip(Fiber.join(waiting))))
          })
        )
      }).pipe(Effect.supervised(supervisor))
      assert.deepStrictEqual(yield* supervisor.value, [])
    })
  )

  it.scoped("bad options are an IllegalArgumentException", () =>
    Effect.gen(function* () {
      for (const options of [
        { concurrency: 0, capacity: 1 },
        { concurrency: 1.5, capacity: 1 },
        { concurrency: 1, capacity: -1 }
      ]) {
        assert.strictEqual((yield* Effect.flip(TaskPool.make(options)))._tag, "IllegalArgumentException")
      }
    })
  )
})
