import { assert, describe, it } from "@effect/vitest"
import { Cause, Effect, Exit, Metric, Option, TestClock } from "effect"
import * as Cache from "../../src/Cache/Cache.js"
import * as DeadLetter from "../../src/Cache/DeadLetter.js"
import * as M from "../../src/Cache/internal/patternMetrics.js"
import * as WriteBack from "../../src/Cache/WriteBack.js"
import type * as WriteThrough from "../../src/Cache/WriteThrough.js"
import * as ChangeFeed from "../../src/Query/ChangeFeed.js"

const table = "accounts"

/** A change event of `table` for the rows `ids`, as a change stream (or another process) reports it. */
const changed = (ids: ReadonlyArray<string>, on = table): ChangeFeed.ChangeEvent => ({
  database: "db",
  table: on,
  type: "UPDATE",
  primaryKeys: ids.map((id) => ({ id })),
  rowsAffected: ids.length
})

/**
 * The database: a map of rows whose writes publish their own change event while the write runs, as
 * the ChangeCapture middleware does for the library's statements.
 */
const database = Effect.gen(function* () {
  const feed = yield* ChangeFeed.ChangeFeed
  const rows = new Map<string, unknown>()
  const store: WriteThrough.Store<unknown> = {
    write: (entries) =>
      Effect.zipRight(
        Effect.sync(() => {
          for (const e of entries) rows.set(e.key, e.value)
        }),
        feed.publish(changed(entries.map((e) => e.key)))
      ),
    delete: (keys) =>
      Effect.zipRight(
        Effect.sync(() => {
          for (const k of keys) rows.delete(k)
        }),
        feed.publish({ ...changed(keys), type: "DELETE" })
      )
  }
  /** A plain SQL client's write: the row changes, and the change stream reports it. */
  const outside = (id: string, value: unknown) =>
    Effect.zipRight(
      Effect.sync(() => rows.set(id, value)),
      feed.publish(changed([id]))
    )
  return { rows, store, outside, feed }
})

const memoryLetters = () => {
  const stored: Array<DeadLetter.StoredLetter> = []
  const letters: DeadLetter.DeadLetters = {
    put: (letters) =>
      Effect.sync(() => {
        for (const l of letters) stored.push({ ...l, id: stored.length + 1 })
      }),
    list: (cache) => Effect.sync(() => stored.filter((l) => l.cache === cache)),
    remove: (ids) =>
      Effect.sync(() => {
        for (const i of ids) {
          const at = stored.findIndex((l) => l.id === i)
          if (at >= 0) stored.splice(at, 1)
        }
      })
  }
  return { stored, letters }
}

/** A write-back cache with conflict detection over `database`, its dead letters in memory. */
const setup = (name: string) =>
  Effect.gen(function* () {
    const feed = yield* ChangeFeed.make
    const db = yield* Effect.provideService(database, ChangeFeed.ChangeFeed, feed)
    const { stored, letters } = memoryLetters()
    const base = yield* Cache.makeTest
    const { cache, control } = yield* WriteBack.make(base, {
      store: db.store,
      name,
      replay: false,
      conflicts: { table, key: (pk) => String(pk.id), echoFor: "10 seconds" }
    }).pipe(
      Effect.provideService(ChangeFeed.ChangeFeed, feed),
      Effect.provideService(DeadLetter.DeadLetters, letters)
    )
    return { ...db, stored, base, cache, control }
  })

const conflictCount = (name: string) =>
  Effect.map(Metric.value(Metric.tagged(M.conflicts, "cache", name)), (state) => state.count)

describe("WriteBack conflicts", () => {
  it.scoped(
    "a row changed outside while its entry is pending is not overwritten; the conflict is reported",
    () =>
      Effect.gen(function* () {
        const { rows, outside, stored, base, cache, control } = yield* setup("wb-conflict")
        yield* cache.set("1", "cache")
        yield* cache.set("2", "cache")
        yield* outside("1", "sql client")
        const report = yield* control.flush
        assert.deepStrictEqual(report.written, ["2"])
        assert.deepStrictEqual(WriteBack.keysOf(report.conflicted), ["1"])
        const [conflict] = report.conflicted
        assert.deepStrictEqual(conflict?.writes, [{ key: "1", value: "cache" }])
        assert.isTrue(conflict?.permanent)
        const defect = Option.flatMap(Option.fromNullable(conflict?.cause), Cause.dieOption)
        assert.isTrue(Option.isSome(defect) && defect.value instanceof WriteBack.WriteConflict)
        assert.strictEqual(rows.get("1"), "sql client")
        assert.strictEqual(rows.get("2"), "cache")
        // Dropped from the cache and no longer dirty: the next read loads the database's row.
        assert.deepStrictEqual(yield* base.get("1"), Option.none())
        assert.deepStrictEqual(yield* cache.get("1"), Option.none())
        assert.deepStrictEqual(yield* control.pending("1"), Option.none())
        assert.strictEqual(yield* conflictCount("wb-conflict"), 1)
        // Kept in the dead letters, and never replayed over the newer row.
        assert.deepStrictEqual(
          stored.map((l) => [l.key, l.value]),
          [["1", JSON.stringify("cache")]]
        )
        assert.match(stored[0]?.error ?? "", /^write conflict:.*"1"/)
        const replayed = yield* control.replayDeadLetters
        assert.deepStrictEqual(replayed.written, [])
        assert.strictEqual(rows.get("1"), "sql client")
        assert.strictEqual(stored.length, 1)
        // A conflict is reported, not a failure of close.
        const closed = yield* Effect.exit(control.close())
        assert.isTrue(Exit.isSuccess(closed))
      })
  )

  it.scoped("a pending delete of a row changed outside is not applied", () =>
    Effect.gen(function* () {
      const { rows, outside, cache, control } = yield* setup("wb-conflict-delete")
      yield* outside("1", "old")
      yield* cache.delete("1")
      yield* outside("1", "new")
      const report = yield* control.flush
      assert.deepStrictEqual(report.deleted, [])
      assert.deepStrictEqual(
        report.conflicted.map((f) => f.deletes),
        [["1"]]
      )
      assert.strictEqual(rows.get("1"), "new")
    })
  )

  it.scoped("the cache's own writes are no conflicts, whichever source echoes them and when", () =>
    Effect.gen(function* () {
      const { rows, feed, cache, control } = yield* setup("wb-conflict-own")
      yield* cache.set("1", "v1")
      const first = yield* control.flush
      assert.deepStrictEqual(first.written, ["1"])
      yield* cache.set("1", "v2")
      // The change stream's copy of the first flush, delivered after the key became dirty again.
      yield* feed.publish(changed(["1"]))
      yield* TestClock.adjust("9 seconds")
      yield* feed.publish(changed(["1"]))
      const second = yield* control.flush
      assert.deepStrictEqual(second.written, ["1"])
      assert.deepStrictEqual(second.conflicted, [])
      assert.strictEqual(rows.get("1"), "v2")
    })
  )

  it.scoped("past echoFor an event for the key is a change from elsewhere", () =>
    Effect.gen(function* () {
      const { rows, feed, cache, control } = yield* setup("wb-conflict-late")
      yield* cache.set("1", "v1")
      yield* control.flush
      yield* TestClock.adjust("11 seconds")
      yield* cache.set("1", "v2")
      yield* feed.publish(changed(["1"]))
      const report = yield* control.flush
      assert.deepStrictEqual(WriteBack.keysOf(report.conflicted), ["1"])
      assert.strictEqual(rows.get("1"), "v1")
    })
  )

  it.scoped("changes of other keys, other tables and from before the key became dirty are no conflicts", () =>
    Effect.gen(function* () {
      const { rows, outside, feed, cache, control } = yield* setup("wb-conflict-other")
      yield* outside("1", "before")
      yield* cache.set("1", "cache")
      yield* outside("2", "sql client")
      yield* feed.publish(changed(["1"], "other_table"))
      const report = yield* control.flush
      assert.deepStrictEqual(report.written, ["1"])
      assert.deepStrictEqual(report.conflicted, [])
      assert.strictEqual(rows.get("1"), "cache")
    })
  )

  it.scoped("a change whose rows are unknown holds against every dirty key", () =>
    Effect.gen(function* () {
      const { rows, feed, cache, control } = yield* setup("wb-conflict-unknown")
      yield* cache.set("1", "a")
      yield* cache.set("2", "b")
      yield* feed.publish({ ...changed([]), primaryKeys: undefined })
      const report = yield* control.flush
      assert.deepStrictEqual([...WriteBack.keysOf(report.conflicted)].sort(), ["1", "2"])
      assert.strictEqual(rows.size, 0)
    })
  )

  it.scoped("conflicts without a ChangeFeed is a typed error", () =>
    Effect.gen(function* () {
      const base = yield* Cache.makeTest
      const store: WriteThrough.Store<unknown> = { write: () => Effect.void, delete: () => Effect.void }
      const error = yield* Effect.flip(
        WriteBack.make(base, { store, conflicts: { table, key: (pk) => String(pk.id) } })
      )
      assert.strictEqual(error.reason, "invalid_argument")
      assert.match(error.detail ?? "", /ChangeFeed/)
    })
  )
})
