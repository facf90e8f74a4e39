/**
 * Cases both sources must pass, written once: two program instances sharing Redis, and a listener
 * process killed and restarted.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { randomUUID } from "node:crypto"
import { join } from "node:path"
import { createInterface } from "node:readline"
import { assert } from "@effect/vitest"
import { Effect, Layer, Option, Queue, type Scope } from "effect"
import type * as ChangeStream from "../../src/ChangeStream/ChangeStream.js"
import * as Database from "../../src/Layers/Database.js"
import * as ChangeFeed from "../../src/Query/ChangeFeed.js"
import { cacheLayer, eventually, followingLayer, get, itemsTable } from "./cdcStack.js"

type Exec = (statement: string, params?: ReadonlyArray<unknown>) => Effect.Effect<void>

/**
 * Instance A follows the change stream; instance B only shares A's Redis channel. A row inserted
 * and updated by a plain client reaches both caches, each of which had cached the old state.
 */
export const sharedRedisCase = <E>(
  url: string,
  stream: Layer.Layer<ChangeStream.ChangeStream, E>,
  exec: Exec,
  redisUrl: string,
  id: number
) =>
  Effect.scoped(
    Effect.gen(function* () {
      const redis = { url: redisUrl, channel: `effect-dal-cdc-test:${randomUUID()}` }
      const a = yield* Layer.build(cacheLayer(redis).pipe(Layer.provideMerge(followingLayer(url, stream))))
      const b = yield* Layer.build(
        cacheLayer(redis).pipe(
          Layer.provideMerge(ChangeFeed.layer),
          Layer.provideMerge(Layer.orDie(Database.layer({ url })))
        )
      )
      const both = Effect.all([Effect.provide(get(id), a), Effect.provide(get(id), b)])
      assert.deepStrictEqual(yield* both, [Option.none(), Option.none()])
      yield* exec(`INSERT INTO ${itemsTable} (id, name) VALUES (${id}, 'one')`)
      yield* eventually(
        "both instances see the insert",
        both,
        ([x, y]) => Option.getOrUndefined(x) === "one" && Option.getOrUndefined(y) === "one",
        "5 seconds"
      )
      yield* exec(`UPDATE ${itemsTable} SET name = 'two' WHERE id = ${id}`)
      yield* eventually(
        "both instances see the update",
        both,
        ([x, y]) => Option.getOrUndefined(x) === "two" && Option.getOrUndefined(y) === "two",
        "5 seconds"
      )
    })
  )

/** A transaction inserting id 10 rolled back, then id 11 inserted: only 11 may be reported. */
export const rolledBackThenKept = (exec: Exec) =>
  Effect.all(
    [
      exec("BEGIN"),
      exec(`INSERT INTO ${itemsTable} (id, name) VALUES (10, 'never')`),
      exec("ROLLBACK"),
      exec(`INSERT INTO ${itemsTable} (id, name) VALUES (11, 'a')`)
    ],
    { discard: true }
  )

/** The listener child; its printed lines (ids per transaction) arrive in `lines`. */
const listener = (
  args: ReadonlyArray<string>
): Effect.Effect<{ readonly lines: Queue.Queue<string>; readonly proc: ChildProcess }, never, Scope.Scope> =>
  Effect.gen(function* () {
    const lines = yield* Queue.unbounded<string>()
    const proc = yield* Effect.acquireRelease(
      Effect.sync(() =>
        spawn(
          process.execPath,
          ["--import", "tsx", join(import.meta.dirname, "listener.child.ts"), ...args],
          {
            stdio: ["ignore", "pipe", "inherit"]
          }
        )
      ),
      (p) => Effect.sync(() => p.kill("SIGKILL"))
    )
    if (proc.stdout !== null)
      createInterface({ input: proc.stdout }).on("line", (line) => lines.unsafeOffer(line))
    const ready = yield* Effect.timeout(Queue.take(lines), "60 seconds").pipe(Effect.orDie)
    assert.strictEqual(ready, "ready")
    return { lines, proc }
  })

/** Takes printed lines until `last` has been seen; returns the ids in order. */
const idsUntil = (lines: Queue.Queue<string>, last: number) =>
  Effect.gen(function* () {
    const ids: Array<number> = []
    while (!ids.includes(last)) {
      const line = yield* Queue.take(lines)
      ids.push(...(JSON.parse(line) as Array<number>))
    }
    return ids
  }).pipe(Effect.timeout("60 seconds"), Effect.orDie)

/**
 * A listener process prints ids 1000..1000+half-1 as it handles them; once its commit of the last
 * one is durable (`durable(mark)`, where `mark` was read just before that last write) it is killed
 * with SIGKILL. Rows written while it is down and after it restarts reach the restarted listener,
 * which starts right after its committed position: nothing missed, nothing replayed.
 */
export const killedListenerCase = (
  args: ReadonlyArray<string>,
  exec: Exec,
  count: number,
  mark: Effect.Effect<string>,
  durable: (mark: string) => Effect.Effect<boolean>
) =>
  Effect.gen(function* () {
    const base = 1000
    const half = Math.floor(count / 2)
    const insert = (id: number) => exec(`INSERT INTO ${itemsTable} (id, name) VALUES (${id}, 'x')`)
    const firstRun = yield* Effect.scoped(
      Effect.gen(function* () {
        const first = yield* listener(args)
        let marked = ""
        for (let id = base; id < base + half; id++) {
          if (id === base + half - 1) marked = yield* mark
          yield* insert(id)
        }
        const ids = yield* idsUntil(first.lines, base + half - 1)
        yield* eventually("the last commit is durable", durable(marked), (ok) => ok, "10 seconds")
        first.proc.kill("SIGKILL")
        return ids
      })
    )
    for (let id = base + half; id < base + count - 10; id++) yield* insert(id)
    const secondRun = yield* Effect.scoped(
      Effect.gen(function* () {
        const second = yield* listener(args)
        for (let id = base + count - 10; id < base + count; id++) yield* insert(id)
        return yield* idsUntil(second.lines, base + count - 1)
      })
    )
    assert.deepStrictEqual(
      firstRun,
      Array.from({ length: half }, (_, i) => base + i)
    )
    assert.deepStrictEqual(
      secondRun,
      Array.from({ length: count - half }, (_, i) => base + half + i)
    )
  })
