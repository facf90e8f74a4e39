import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, assert, describe, it } from "@effect/vitest"
import {
  Chunk,
  ConfigProvider,
  Context,
  Effect,
  Exit,
  Layer,
  Metric,
  Option,
  Queue,
  Ref,
  Schedule,
  Schema,
  Scope,
  Stream
} from "effect"
import * as ChangeStream from "../../src/ChangeStream/ChangeStream.js"
import { ChangeStreamError } from "../../src/ChangeStream/ChangeStreamError.js"
import * as PositionStore from "../../src/ChangeStream/PositionStore.js"
import * as ChangeFeed from "../../src/Query/ChangeFeed.js"
import * as Entity from "../../src/Schema/Entity.js"
import { eventually } from "./cdcStack.js"

const tx = (
  position: string,
  changes: ReadonlyArray<ChangeStream.RowChange> = []
): ChangeStream.Transaction => ({
  position,
  offset: Number(position),
  commitTime: new Date(0),
  changes
})

const dropped = new ChangeStreamError({ reason: "connection", source: "fake", detail: "dropped" })

/**
 * A source serving `script[n]` on its n-th connection: the transactions after `from`, then the
 * failure (if any). Records where each connection started and what was persisted.
 */
const fakeSource = (
  script: ReadonlyArray<{
    readonly after: ReadonlyArray<ChangeStream.Transaction>
    readonly fail?: ChangeStreamError
  }>
) =>
  Effect.gen(function* () {
    const reads = yield* Ref.make<ReadonlyArray<string>>([])
    const persisted = yield* Ref.make<ReadonlyArray<string>>([])
    const source: ChangeStream.Source = {
      name: "fake",
      start: Effect.succeed("0"),
      read: (from) =>
        Stream.unwrap(
          Effect.map(
            Ref.getAndUpdate(reads, (r) => [...r, from]),
            (before) => {
              const step = script[before.length]
              if (step === undefined) return Stream.never
              const served = Stream.fromIterable(step.after.filter((t) => Number(t.position) > Number(from)))
              return step.fail === undefined ? served : Stream.concat(served, Stream.fail(step.fail))
            }
          )
        ),
      persist: (position) => Ref.update(persisted, (p) => [...p, position])
    }
    return { source, reads: Ref.get(reads), persisted: Ref.get(persisted) }
  })

const noWait = { reconnect: Schedule.recurs(5), commitInterval: "1 hour" } as const

describe("ChangeStream", () => {
  it.scoped("a dropped source reconnects after the last transaction it delivered", () =>
    Effect.gen(function* () {
      const fake = yield* fakeSource([
        { after: [tx("1"), tx("2")], fail: dropped },
        { after: [tx("1"), tx("2"), tx("3")] }
      ])
      const stream = yield* ChangeStream.make(fake.source, noWait)
      const got = yield* Stream.runCollect(Stream.take(stream.changes, 3))
      assert.deepStrictEqual(
        Chunk.toArray(got).map((t) => t.position),
        ["1", "2", "3"]
      )
      assert.deepStrictEqual(yield* fake.reads, ["0", "2"])
    })
  )

  it.scoped("a setup error ends the stream at once: no retry", () =>
    Effect.gen(function* () {
      const setup = new ChangeStreamError({ reason: "setup", source: "fake", detail: "wal_level is replica" })
      const fake = yield* fakeSource([{ after: [], fail: setup }, { after: [tx("1")] }])
      const stream = yield* ChangeStream.make(fake.source, noWait)
      const error = yield* Effect.flip(Stream.runDrain(stream.changes))
      assert.strictEqual(error.reason, "setup")
      assert.deepStrictEqual(yield* fake.reads, ["0"])
    })
  )

  it.effect("a commit becomes durable at flush and when the scope closes, never before", () =>
    Effect.gen(function* () {
      const fake = yield* fakeSource([])
      const scope = yield* Scope.make()
      const stream = yield* Scope.extend(ChangeStream.make(fake.source, noWait), scope)
      yield* stream.commit(tx("5"))
      assert.deepStrictEqual(yield* fake.persisted, [])
      assert.strictEqual(yield* stream.committed, "5")
      yield* stream.flush
      yield* stream.flush
      assert.deepStrictEqual(yield* fake.persisted, ["5"], "an unchanged position is not written again")
      yield* stream.commit(tx("7"))
      yield* Scope.close(scope, Exit.void)
      assert.deepStrictEqual(yield* fake.persisted, ["5", "7"])
    })
  )

  it.scoped("a restarted stream starts from the committed position, not the delivered one", () =>
    Effect.gen(function* () {
      const fake = yield* fakeSource([
        { after: [tx("1"), tx("2"), tx("3")] },
        { after: [tx("1"), tx("2"), tx("3")] }
      ])
      const stream = yield* ChangeStream.make(fake.source, noWait)
      const first = yield* Stream.runCollect(Stream.take(stream.changes, 3))
      yield* stream.commit(Chunk.unsafeGet(first, 0))
      const again = yield* Stream.runCollect(Stream.take(stream.changes, 2))
      assert.deepStrictEqual(
        Chunk.toArray(again).map((t) => t.position),
        ["2", "3"]
      )
      assert.deepStrictEqual(yield* fake.reads, ["0", "1"])
    })
  )
})

const dir = mkdtempSync(join(tmpdir(), "effect-dal-positions-"))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

describe("PositionStore", () => {
  it.effect("a file store keeps every name across instances (a restarted process reads them back)", () =>
    Effect.gen(function* () {
      const path = join(dir, "positions.json")
      const first = yield* PositionStore.makeFile(path)
      assert.deepStrictEqual(yield* first.load("a"), Option.none())
      yield* Effect.all([first.save("a", "0-1-5"), first.save("b", "0/16B3748")], {
        concurrency: "unbounded"
      })
      const second = yield* PositionStore.makeFile(path)
      assert.deepStrictEqual(
        [yield* second.load("a"), yield* second.load("b")],
        [Option.some("0-1-5"), Option.some("0/16B3748")]
      )
    })
  )

  it.effect("a corrupt file is a store error, not an empty position", () =>
    Effect.gen(function* () {
      const path = join(dir, "corrupt.json")
      writeFileSync(path, "{ not json")
      const store = yield* PositionStore.makeFile(path)
      const error = yield* Effect.flip(store.load("a"))
      assert.strictEqual(error.reason, "store")
      assert.include(error.detail, path)
    })
  )
})

class Account extends Schema.Class<Account>("Account")(
  { accountId: Schema.Number.pipe(Entity.primaryKey, Entity.column("account_no")), name: Schema.String },
  Entity.table("accounts")
) {}

const change = (
  table: string,
  operation: ChangeFeed.ChangeType,
  key: Record<string, unknown> | undefined,
  before?: Record<string, unknown>
): ChangeStream.RowChange => ({ schema: "app", table, operation, key, row: key, before })

describe("ChangeStream.layerChangeFeed", () => {
  it.live(
    "publishes each change with keys by field name, both keys of a changed key, and commits the batch",
    () =>
      Effect.scoped(
        Effect.gen(function* () {
          const committed = yield* Ref.make<ReadonlyArray<string>>([])
          const transactions = [
            tx("1", [
              change("accounts", "INSERT", { account_no: 7 }),
              change("ignored", "INSERT", { id: 1 })
            ]),
            tx("2", [change("accounts", "UPDATE", { account_no: 8 }, { account_no: 7, name: "x" })]),
            tx("3", [change("other", "DELETE", { id: 3 }), change("other", "DELETE", undefined)])
          ]
          const fake = Layer.succeed(ChangeStream.ChangeStream, {
            name: "fake",
            changes: Stream.fromIterable(transactions),
            commit: (t) => Ref.update(committed, (c) => [...c, t.position]),
            flush: Effect.void,
            committed: Effect.succeed("0")
          })
          const feed = yield* ChangeFeed.make
          const events = yield* feed.subscribe
          yield* Layer.buildWithScope(
            ChangeStream.layerChangeFeed({
              entities: [Account],
              tables: ["accounts", "other"],
              database: "db"
            }).pipe(Layer.provide(fake), Layer.provide(Layer.succeed(ChangeFeed.ChangeFeed, feed))),
            yield* Effect.scope
          )
          const got = yield* Effect.all(Array.from({ length: 4 }, () => Queue.take(events)))
          assert.deepStrictEqual(
            got.map((e) => [e.database, e.table, e.type, e.primaryKeys]),
            [
              ["db", "accounts", "INSERT", [{ accountId: 7 }]],
              ["db", "accounts", "UPDATE", [{ accountId: 8 }, { accountId: 7 }]],
              ["db", "other", "DELETE", [{ id: 3 }]],
              ["db", "other", "DELETE", undefined]
            ]
          )
          const done = yield* eventually("the commit", Ref.get(committed), (c) => c.includes("3"))
          assert.strictEqual(done.value.at(-1), "3")
        })
      )
  )
})

describe("ChangeStream health", () => {
  it.scoped("received and committed offsets, lag and reconnects are measured per source", () =>
    Effect.gen(function* () {
      const fake = yield* fakeSource([{ after: [tx("1"), tx("2")], fail: dropped }, { after: [tx("3")] }])
      const stream = yield* ChangeStream.make({ ...fake.source, name: "metered" }, noWait)
      const got = yield* Stream.runCollect(Stream.take(stream.changes, 3))
      yield* stream.commit(Chunk.unsafeGet(got, 1))
      const snapshot = yield* Metric.snapshot
      const value = (name: string) => {
        const pair = snapshot.find(
          (m) =>
            m.metricKey.name === name &&
            m.metricKey.tags.some((t) => t.key === "source" && t.value === "metered")
        )
        const state: unknown = pair?.metricState
        if (typeof state === "object" && state !== null) {
          if ("count" in state) return Number(state.count)
          if ("value" in state) return Number(state.value)
        }
        return Number.NaN
      }
      assert.strictEqual(value("effect_dal_change_stream_received_offset"), 3)
      assert.strictEqual(value("effect_dal_change_stream_committed_offset"), 2)
      assert.strictEqual(value("effect_dal_change_stream_transactions_total"), 3)
      assert.strictEqual(value("effect_dal_change_stream_reconnects_total"), 1)
      assert.isAbove(value("effect_dal_change_stream_lag_seconds"), 0, "commits at the epoch lag")
    })
  )

  it.live(
    "a stream that stops on a setup error is logged, the up gauge drops to 0, and the program keeps running",
    () =>
      Effect.scoped(
        Effect.gen(function* () {
          const failing = Layer.succeed(ChangeStream.ChangeStream, {
            name: "broken",
            changes: Stream.fail(
              new ChangeStreamError({ reason: "setup", source: "broken", detail: "binlog off" })
            ),
            commit: () => Effect.void,
            flush: Effect.void,
            committed: Effect.succeed("0")
          })
          yield* Layer.buildWithScope(
            ChangeStream.layerChangeFeed().pipe(Layer.provide(failing), Layer.provide(ChangeFeed.layer)),
            yield* Effect.scope
          )
          const up = Metric.tagged(Metric.gauge("effect_dal_change_stream_up"), "source", "broken")
          const state = yield* eventually("the gauge drops", Metric.value(up), (s) => s.value === 0)
          assert.strictEqual(state.value.value, 0)
        })
      )
  )
})

describe("ChangeStream.layerConfig", () => {
  it.scoped("without CDC=1, and on SQLite, it provides nothing and needs no driver", () =>
    Effect.gen(function* () {
      for (const map of [
        new Map<string, string>(),
        new Map([
          ["CDC", "1"],
          ["DATABASE_URL", "sqlite::memory:"]
        ])
      ]) {
        const built = yield* Layer.build(ChangeStream.layerConfig()).pipe(
          Effect.provide(ChangeFeed.layer),
          Effect.withConfigProvider(ConfigProvider.fromMap(map))
        )
        assert.strictEqual(Context.isContext(built), true)
      }
    })
  )

  it.scoped("CDC=1 without a database URL is a configuration error", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(
        Layer.build(ChangeStream.layerConfig()).pipe(
          Effect.provide(ChangeFeed.layer),
          Effect.withConfigProvider(ConfigProvider.fromMap(new Map([["CDC", "1"]])))
        )
      )
      assert.include(String(error), "DATABASE_URL")
    })
  )
})
