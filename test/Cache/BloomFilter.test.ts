import { randomUUID } from "node:crypto"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import * as SqlClient from "@effect/sql/SqlClient"
import { assert, describe, it, layer } from "@effect/vitest"
import { Array as Arr, Effect, Layer, Logger, LogLevel, Metric, Option, Ref, Schema, Stream } from "effect"
import * as BloomFilter from "../../src/Cache/BloomFilter.js"
import * as Cache from "../../src/Cache/Cache.js"
import * as M from "../../src/Cache/internal/patternMetrics.js"
import * as MemoryCache from "../../src/Cache/MemoryCache.js"
import * as ReadThrough from "../../src/Cache/ReadThrough.js"
import * as Database from "../../src/Layers/Database.js"
import * as ChangeCapture from "../../src/Middleware/ChangeCapture.js"
import * as ChangeFeed from "../../src/Query/ChangeFeed.js"
import type { Executor } from "../../src/Query/Executor.js"
import * as Expr from "../../src/Query/Expr.js"
import * as Insert from "../../src/Query/Insert.js"
import * as Raw from "../../src/Query/Raw.js"
import type { SelectError } from "../../src/Query/Select.js"
import * as Select from "../../src/Query/Select.js"
import * as Entity from "../../src/Schema/Entity.js"
import * as Tx from "../../src/Tx/Tx.js"
import { uniqueName } from "../support/databases.js"
import { startRedisServer } from "../support/redisServer.js"
import { serviceAvailable, serviceUrls } from "../support/services.js"
import { pollUntil } from "./Poll.js"

const table = uniqueName("bloom_items")

class Item extends Schema.Class<Item>("Item")(
  { id: Schema.Number, name: Schema.String },
  Entity.table(table)
) {}

class ItemCache extends Cache.Tag("test/BloomFilter/ItemCache")<ItemCache, Item>() {}
class Items extends ReadThrough.Tag("test/BloomFilter/Items")<Items, Item, SelectError, Executor>() {}

/** How many times the loader reached the database. */
class LoaderCalls extends Effect.Service<LoaderCalls>()("test/BloomFilter/LoaderCalls", {
  effect: Ref.make(0)
}) {}

const database = Layer.provideMerge(
  ChangeCapture.layer,
  Layer.provideMerge(ChangeFeed.layer, Layer.orDie(Database.layer({ url: "sqlite::memory:" })))
)

/** 10,000 rows, ids 1..10,000, written in one statement the filter never hears about. */
const fixtures = Layer.effectDiscard(
  Effect.flatMap(SqlClient.SqlClient, (sql) =>
    Effect.zipRight(
      sql.unsafe(`CREATE TABLE ${table} (id INTEGER PRIMARY KEY, name TEXT NOT NULL)`),
      sql.unsafe(
        `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 10000) ` +
          `INSERT INTO ${table} (id, name) SELECT i, 'item ' || i FROM n`
      )
    )
  ).pipe(Effect.orDie)
)

const reads = Layer.unwrapEffect(
  Effect.map(LoaderCalls, (calls) =>
    ReadThrough.layer(Items, ItemCache, {
      loader: (key) =>
        Effect.zipRight(
          Ref.update(calls, (n) => n + 1),
          Effect.map(
            Select.from(Item)
              .where(Expr.columns(Item)("id").eq(Number(key)))
              .getMulti(),
            Arr.head
          )
        ),
      ttl: "1 minute"
    })
  )
)

const stack = BloomFilter.layer(Items, {
  keys: Stream.map(Select.from(Item).columns("id").stream(), (row) => String(row.id)),
  table,
  key: (pk) => String(pk.id),
  falsePositiveRate: 0.01
}).pipe(
  Layer.provideMerge(reads),
  Layer.provideMerge(Cache.layerSchema(ItemCache, Item)),
  Layer.provide(MemoryCache.layer()),
  Layer.provideMerge(LoaderCalls.Default),
  Layer.provideMerge(fixtures),
  Layer.provideMerge(database)
)

describe("BloomFilter", () => {
  layer(stack, { timeout: "60 seconds" })((it) => {
    it.effect(
      "penetration: 10,000 random absent keys behind a 1% filter reach the loader for at most 2%",
      () =>
        Effect.gen(function* () {
          const rt = yield* Items
          const calls = yield* LoaderCalls
          const before = yield* Ref.get(calls)
          const absent = new Set<number>()
          while (absent.size < 10_000) absent.add(10_001 + Math.floor(Math.random() * 1e9))
          for (const id of absent) assert.isTrue(Option.isNone(yield* rt.get(String(id))))
          const loads = (yield* Ref.get(calls)) - before
          assert.isAtMost(loads, 200)
          const rejected = yield* Metric.value(Metric.tagged(M.rejections, "cache", "test/BloomFilter/Items"))
          assert.isAtLeast(rejected.count, 9_800)
        })
    )

    it.effect("no existing key is rejected", () =>
      Effect.gen(function* () {
        const rt = yield* Items
        for (let id = 1; id <= 10_000; id += 97) {
          assert.strictEqual(
            Option.map(yield* rt.get(String(id)), (i) => i.name).pipe(Option.getOrUndefined),
            `item ${id}`
          )
        }
      })
    )

    it.effect("an INSERT through the library adds its key: rejected before, found after", () =>
      Effect.gen(function* () {
        const rt = yield* Items
        const calls = yield* LoaderCalls
        // A key the filter rejects for sure would need luck; pick ids until one is rejected.
        let id = 20_000
        for (;;) {
          const before = yield* Ref.get(calls)
          yield* rt.get(String(id))
          if ((yield* Ref.get(calls)) === before) break
          id++
        }
        yield* Insert.into(Item)
          .values(new Item({ id, name: "new" }))
          .exec()
        yield* Effect.repeat(rt.get(String(id)), { until: Option.isSome, times: 100 })
        assert.deepStrictEqual(
          Option.map(yield* rt.get(String(id)), (i) => i.name),
          Option.some("new")
        )
      })
    )

    it.effect("an INSERT whose keys are unknown rebuilds the filter; its rows are found", () =>
      Effect.gen(function* () {
        const rt = yield* Items
        yield* Raw.query(Item, `INSERT INTO ${table} (id, name) VALUES (?, ?), (?, ?)`, [
          30_001,
          "raw a",
          30_002,
          "raw b"
        ]).exec()
        const found = yield* Effect.repeat(rt.get("30002"), { until: Option.isSome, times: 1000 })
        assert.deepStrictEqual(
          Option.map(found, (i) => i.name),
          Option.some("raw b")
        )
        assert.deepStrictEqual(
          Option.map(yield* rt.get("30001"), (i) => i.name),
          Option.some("raw a")
        )
      })
    )

    it.scoped("the rebuild after an unknown INSERT holds the new keys and closes the filter again", () =>
      Effect.gen(function* () {
        const filter = yield* BloomFilter.make({
          keys: Stream.map(Select.from(Item).columns("id").stream(), (row) => String(row.id)),
          table,
          key: (pk) => String(pk.id)
        })
        const before = yield* filter.stats
        assert.isFalse(before.open)
        yield* Raw.query(Item, `INSERT INTO ${table} (id, name) VALUES (?, ?)`, [40_001, "raw c"]).exec()
        const after = yield* Effect.repeat(filter.stats, {
          until: (s) => !s.open && s.items === before.items + 1,
          times: 10_000
        })
        assert.strictEqual(after.items, before.items + 1)
        assert.isFalse(after.open)
        assert.isTrue(yield* filter.mightContain("40001"))
        assert.isAtLeast(after.capacity, 2 * after.items - 2)
      })
    )
  })
})

describe("BloomFilter reads its own writes", () => {
  layer(stack, { timeout: "60 seconds" })((it) => {
    it.effect("20 rows created one after another are each found by the get right after", () =>
      Effect.gen(function* () {
        const rt = yield* Items
        const rejections = Metric.tagged(M.rejections, "cache", "test/BloomFilter/Items")
        const before = (yield* Metric.value(rejections)).count
        for (let id = 50_001; id <= 50_020; id++) {
          yield* Insert.into(Item)
            .values(new Item({ id, name: `created ${id}` }))
            .exec()
          assert.deepStrictEqual(
            Option.map(yield* rt.get(String(id)), (i) => i.name),
            Option.some(`created ${id}`)
          )
        }
        assert.strictEqual((yield* Metric.value(rejections)).count, before)
      })
    )

    it.effect("a raw INSERT through the library is found by the get right after", () =>
      Effect.gen(function* () {
        const rt = yield* Items
        yield* Raw.query(Item, `INSERT INTO ${table} (id, name) VALUES (?, ?)`, [60_001, "raw now"]).exec()
        assert.deepStrictEqual(
          Option.map(yield* rt.get("60001"), (i) => i.name),
          Option.some("raw now")
        )
      })
    )

    it.effect("rows of a committed transaction are found right after the commit; a rollback's are not", () =>
      Effect.gen(function* () {
        const rt = yield* Items
        yield* Effect.gen(function* () {
          yield* Insert.into(Item)
            .values(new Item({ id: 60_101, name: "tx row" }))
            .exec()
          yield* Raw.query(Item, `INSERT INTO ${table} (id, name) VALUES (?, ?)`, [60_102, "tx raw"]).exec()
        }).pipe(Tx.run())
        assert.deepStrictEqual(
          Option.map(yield* rt.get("60101"), (i) => i.name),
          Option.some("tx row")
        )
        assert.deepStrictEqual(
          Option.map(yield* rt.get("60102"), (i) => i.name),
          Option.some("tx raw")
        )
        yield* Effect.flip(
          Effect.gen(function* () {
            yield* Insert.into(Item)
              .values(new Item({ id: 60_201, name: "rolled back" }))
              .exec()
            return yield* Effect.fail("undo" as const)
          }).pipe(Tx.run())
        )
        assert.isTrue(Option.isNone(yield* rt.get("60201")))
        // A key the rollback left in the filter is a false positive only: inserted later, it is found.
        yield* Insert.into(Item)
          .values(new Item({ id: 60_201, name: "later" }))
          .exec()
        assert.deepStrictEqual(
          Option.map(yield* rt.get("60201"), (i) => i.name),
          Option.some("later")
        )
      })
    )
  })
})

/**
 * One instance of the program: its own connection to the shared SQLite file, its own change feed,
 * read path and filter (over Redis when `redis` is given).
 */
const instance = (
  url: string,
  options: Pick<BloomFilter.Options<never, never>, "redis" | "rebuildInterval">
) =>
  BloomFilter.layer(Items, {
    keys: Stream.map(Select.from(Item).columns("id").stream(), (row) => String(row.id)),
    table,
    key: (pk) => String(pk.id),
    ...options
  }).pipe(
    Layer.provideMerge(reads),
    Layer.provideMerge(Cache.layerSchema(ItemCache, Item)),
    Layer.provide(MemoryCache.layer()),
    Layer.provideMerge(LoaderCalls.Default),
    Layer.provideMerge(
      Layer.provideMerge(
        ChangeCapture.layer,
        Layer.provideMerge(ChangeFeed.layer, Layer.orDie(Database.layer({ url })))
      )
    )
  )

/** Builds an instance in the current scope; `run` runs an effect inside it. */
const start = (url: string, options: Parameters<typeof instance>[1]) =>
  Effect.map(
    Layer.build(instance(url, options)),
    (context) =>
      <A, E>(effect: Effect.Effect<A, E, Items | Executor | SqlClient.SqlClient>) =>
        Effect.provide(effect, context)
  )

const found = (id: number) =>
  Effect.map(
    Effect.flatMap(Items, (rt) => rt.get(String(id))),
    Option.isSome
  )

/** A shared SQLite file with the table, removed with the scope. */
const sharedFile = Effect.gen(function* () {
  const dir = yield* Effect.acquireRelease(
    Effect.sync(() => mkdtempSync(join(tmpdir(), "bloom-"))),
    (d) => Effect.sync(() => rmSync(d, { recursive: true, force: true }))
  )
  const url = `sqlite:${join(dir, "shared.sqlite")}`
  yield* Effect.scoped(
    Effect.flatMap(SqlClient.SqlClient, (sql) =>
      sql.unsafe(`CREATE TABLE ${table} (id INTEGER PRIMARY KEY, name TEXT NOT NULL)`)
    ).pipe(Effect.provide(Layer.orDie(Database.layer({ url }))), Effect.orDie)
  )
  return url
})

describe.skipIf(!serviceAvailable("redis"))("BloomFilter across instances sharing Redis", () => {
  it.scopedLive(
    "a row another instance inserts is admitted through Redis; one that bypasses the library, at the next rebuild",
    () =>
      Effect.gen(function* () {
        const url = yield* sharedFile
        const redis = { url: serviceUrls.redis, channel: `test:bloom:${randomUUID()}` }
        const a = yield* start(url, { redis, rebuildInterval: "never" })
        const b = yield* start(url, { redis, rebuildInterval: "1 second" })
        // The control: an instance that hears nothing from the others.
        const alone = yield* start(url, { rebuildInterval: "never" })
        yield* a(
          Insert.into(Item)
            .values(new Item({ id: 7, name: "from a" }))
            .exec()
        )
        yield* pollUntil("b to admit 7", 10_000, b(found(7)))
        assert.isFalse(yield* alone(found(7)))
        // A row written behind the library's back: no instance's feed sees it.
        yield* a(
          Effect.flatMap(SqlClient.SqlClient, (sql) =>
            sql.unsafe(`INSERT INTO ${table} (id, name) VALUES (8, 'raw')`)
          )
        )
        yield* pollUntil("b's periodic rebuild to admit 8", 10_000, b(found(8)))
        assert.isFalse(yield* alone(found(8)))
      }),
    60_000
  )

  it.scopedLive(
    "after a Redis outage a subscriber rebuilds: what it missed is admitted once Redis is back",
    () =>
      Effect.gen(function* () {
        const server = yield* Effect.acquireRelease(
          Effect.promise(() => startRedisServer()),
          (s) => Effect.promise(() => s.stop())
        )
        const url = yield* sharedFile
        const redis = { url: server.url, channel: "bloom" }
        const a = yield* start(url, { redis, rebuildInterval: "never" })
        const b = yield* start(url, { redis, rebuildInterval: "never" })
        yield* Effect.promise(() => server.kill())
        // Published while the channel is down: lost (a logs it).
        yield* a(
          Insert.into(Item)
            .values(new Item({ id: 9, name: "during the outage" }))
            .exec()
        )
        assert.isFalse(yield* b(found(9)))
        yield* Effect.promise(() => server.restart())
        yield* pollUntil("b to rebuild after reconnecting", 20_000, b(found(9)))
      }).pipe(Logger.withMinimumLogLevel(LogLevel.Error)),
    60_000
  )
})
