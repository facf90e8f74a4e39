import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { ConfigProvider, Effect, Layer, Option, Queue } from "effect"
import Pg from "pg"
import * as ChangeStream from "../../src/ChangeStream/ChangeStream.js"
import * as PostgresLogical from "../../src/ChangeStream/PostgresLogical.js"
import * as ChangeFeed from "../../src/Query/ChangeFeed.js"
import { type LogServer, startOrSkip, startPostgres } from "../support/logServers.js"
import { serviceAvailable, serviceUrls } from "../support/services.js"
import { killedListenerCase, rolledBackThenKept, sharedRedisCase } from "./cases.js"
import {
  assertRange,
  cacheLayer,
  changedIds,
  eventually,
  followingLayer,
  get,
  Item,
  itemsTable,
  loads,
  takeUntilId
} from "./cdcStack.js"

// One server for the file, started while the file is collected so that its suites can be skipped
// (loudly) when it cannot start.
const server = await startOrSkip("postgres", startPostgres)
let sql: Pg.Client | undefined

const connect = async (url: string) => {
  const client = new Pg.Client({ connectionString: url })
  client.on("error", () => {})
  await client.connect()
  return client
}

beforeAll(async () => {
  if (server === undefined) return
  sql = await connect(server.url)
  await sql.query(`CREATE TABLE ${itemsTable} (id INT PRIMARY KEY, name TEXT NOT NULL)`)
  await sql.query("CREATE TABLE burst (id INT PRIMARY KEY, n INT NOT NULL)")
})

afterAll(async () => {
  await sql?.end().catch(() => undefined)
  await server?.stop()
})

const url = () => server?.url ?? ""
const exec = (statement: string, params: ReadonlyArray<unknown> = []) =>
  Effect.promise(async () => {
    if (sql === undefined) throw new Error("no server")
    await sql.query(statement, [...params])
  })
const value = (statement: string, params: ReadonlyArray<unknown> = []) =>
  Effect.promise(async () => {
    if (sql === undefined) throw new Error("no server")
    const result = await sql.query<{ v: unknown }>(statement, [...params])
    return result.rows[0]?.v
  })

let slots = 0
/** A stream on a slot of its own (created at the current position). */
const slotStream = () => PostgresLogical.layer({ url: url(), slot: `test_slot_${++slots}` })

describe.skipIf(server === undefined)("PostgresLogical", () => {
  it.live("rows written by a plain SQL client reach the refresh-ahead cache (bound: 5 s)", () =>
    Effect.gen(function* () {
      assert.deepStrictEqual(yield* get(1), Option.none())
      assert.deepStrictEqual(yield* get(1), Option.none())
      assert.strictEqual(yield* loads, 1, "the absence is cached")
      yield* exec(`INSERT INTO ${itemsTable} (id, name) VALUES (1, 'first')`)
      const inserted = yield* eventually(
        "the insert",
        get(1),
        (v) => Option.getOrUndefined(v) === "first",
        "5 seconds"
      )
      yield* exec(`UPDATE ${itemsTable} SET name = 'second' WHERE id = 1`)
      const updated = yield* eventually(
        "the update",
        get(1),
        (v) => Option.getOrUndefined(v) === "second",
        "5 seconds"
      )
      yield* exec(`DELETE FROM ${itemsTable} WHERE id = 1`)
      const deleted = yield* eventually("the delete", get(1), Option.isNone, "5 seconds")
      const before = yield* loads
      yield* get(1)
      assert.strictEqual(yield* loads, before, "served from the cache until the next change")
      console.log(
        `WAL → cache: insert ${inserted.millis} ms, update ${updated.millis} ms, delete ${deleted.millis} ms`
      )
    }).pipe(Effect.provide(cacheLayer().pipe(Layer.provideMerge(followingLayer(url(), slotStream())))))
  )

  it.live(
    "rolled-back work produces no event (a transaction, a savepoint); keys, rows, a changed key and a TRUNCATE are reported",
    () =>
      Effect.gen(function* () {
        const stream = yield* ChangeStream.ChangeStream
        const collected = yield* Effect.fork(takeUntilId(stream.changes, itemsTable, 16))
        yield* rolledBackThenKept(exec)
        yield* Effect.promise(async () => {
          if (sql === undefined) return
          await sql.query(`UPDATE ${itemsTable} SET id = 12 WHERE id = 11`)
          await sql.query("TRUNCATE burst")
          await sql.query(`INSERT INTO ${itemsTable} (id, name) VALUES (13, 'c')`)
          await sql.query("BEGIN")
          await sql.query(`INSERT INTO ${itemsTable} (id, name) VALUES (14, 'kept')`)
          await sql.query("SAVEPOINT s1")
          await sql.query(`INSERT INTO ${itemsTable} (id, name) VALUES (15, 'undone')`)
          await sql.query("ROLLBACK TO SAVEPOINT s1")
          await sql.query(`INSERT INTO ${itemsTable} (id, name) VALUES (16, 'kept')`)
          await sql.query("COMMIT")
        })
        const transactions = yield* collected.await.pipe(Effect.flatten, Effect.timeout("10 seconds"))
        assert.deepStrictEqual(changedIds(transactions, itemsTable), [11, 12, 13, 14, 16])
        const changes = transactions.flatMap((tx) => tx.changes)
        const update = changes.find((c) => c.operation === "UPDATE")
        assert.deepStrictEqual(update?.key, { id: 12 })
        assert.deepStrictEqual(update?.row, { id: 12, name: "a" })
        assert.deepStrictEqual(update?.before?.id, 11, "the old key of a changed key")
        const truncate = changes.find((c) => c.table === "burst")
        assert.deepStrictEqual([truncate?.operation, truncate?.key], ["DELETE", undefined])
        assert.isTrue(transactions.every((tx) => /^[0-9A-F]+\/[0-9A-F]+$/.test(tx.position)))
      }).pipe(Effect.provide(slotStream()))
  )

  it.live("10,000 changes in a burst (1,000 transactions) arrive complete and in commit order", () =>
    Effect.gen(function* () {
      const stream = yield* ChangeStream.ChangeStream
      const collected = yield* Effect.fork(takeUntilId(stream.changes, "burst", 10_000))
      yield* Effect.promise(async () => {
        for (let t = 0; t < 1000; t++) {
          await sql?.query("INSERT INTO burst SELECT g, $1 FROM generate_series($2::int, $3::int) AS g", [
            t,
            t * 10 + 1,
            t * 10 + 10
          ])
        }
      })
      const transactions = yield* collected.await.pipe(Effect.flatten, Effect.timeout("60 seconds"))
      assertRange(changedIds(transactions, "burst"), 1, 10_000)
      assert.strictEqual(transactions.filter((tx) => tx.changes.length > 0).length, 1000)
    }).pipe(Effect.provide(slotStream()))
  )

  it.live("the server killed and restarted: the stream reconnects and misses nothing", () =>
    Effect.gen(function* () {
      const current = server as LogServer
      const stream = yield* ChangeStream.ChangeStream
      const collected = yield* Effect.fork(takeUntilId(stream.changes, itemsTable, 22))
      yield* exec(`INSERT INTO ${itemsTable} (id, name) VALUES (20, 'before')`)
      yield* Effect.promise(async () => {
        await sql?.end().catch(() => undefined)
        await current.kill()
        await current.restart()
        sql = await connect(current.url)
      })
      yield* exec(`INSERT INTO ${itemsTable} (id, name) VALUES (21, 'after'), (22, 'after')`)
      const transactions = yield* collected.await.pipe(Effect.flatten, Effect.timeout("60 seconds"))
      assert.deepStrictEqual([...new Set(changedIds(transactions, itemsTable))], [20, 21, 22])
    }).pipe(Effect.provide(slotStream()))
  )

  it.live(
    "a hostile slot name is refused before any SQL; a missing slot with create: false is a setup error",
    () =>
      Effect.gen(function* () {
        const hostile = yield* Effect.flip(
          Effect.scoped(
            Layer.build(
              PostgresLogical.layer({ url: url(), slot: `x" LOGICAL 0/0; DROP TABLE ${itemsTable}; --` })
            )
          )
        )
        assert.strictEqual(hostile.reason, "setup")
        assert.match(hostile.detail, /slot name must match/)
        assert.strictEqual(Number(yield* value(`SELECT count(*) AS v FROM ${itemsTable}`)) >= 0, true)
        const missing = yield* Effect.flip(
          Effect.scoped(
            Layer.build(PostgresLogical.layer({ url: url(), slot: "never_created", create: false }))
          )
        )
        assert.strictEqual(missing.reason, "setup")
        assert.match(missing.detail, /does not exist/)
        assert.strictEqual(
          Number(
            yield* value("SELECT count(*) AS v FROM pg_replication_slots WHERE slot_name = 'never_created'")
          ),
          0
        )
      })
  )
  it.scoped("the demo's switch: CDC=1 follows DATABASE_URL's change log into the ChangeFeed", () =>
    Effect.gen(function* () {
      const feed = yield* ChangeFeed.ChangeFeed
      const events = yield* feed.subscribe
      yield* Layer.build(ChangeStream.layerConfig({ entities: [Item] })).pipe(
        Effect.provide(Layer.succeed(ChangeFeed.ChangeFeed, feed)),
        Effect.withConfigProvider(
          ConfigProvider.fromMap(
            new Map([
              ["CDC", "1"],
              ["DATABASE_URL", url()],
              ["CDC_SLOT", "switch_slot"]
            ])
          )
        )
      )
      yield* exec(`INSERT INTO ${itemsTable} (id, name) VALUES (50, 'switch')`)
      const event = yield* Queue.take(events).pipe(Effect.timeout("10 seconds"))
      assert.deepStrictEqual(
        [event.table, event.type, event.primaryKeys],
        [itemsTable, "INSERT", [{ id: 50 }]]
      )
    }).pipe(Effect.provide(ChangeFeed.layer))
  )
})

describe.skipIf(server === undefined || !serviceAvailable("redis"))(
  "PostgresLogical with a shared Redis",
  () => {
    it.live("two program instances sharing Redis both see a row changed outside the library", () =>
      sharedRedisCase(url(), slotStream(), exec, serviceUrls.redis, 40)
    )
  }
)

describe.skipIf(server === undefined)("PostgresLogical listener process", () => {
  it.live("killed with SIGKILL and restarted, it resumes from its committed position: no change missed", () =>
    killedListenerCase(
      ["postgres", url(), "listener_slot", itemsTable],
      exec,
      100,
      Effect.map(value("SELECT pg_current_wal_insert_lsn()::text AS v"), String),
      (mark) =>
        Effect.map(
          value(
            "SELECT confirmed_flush_lsn > $1::pg_lsn AS v FROM pg_replication_slots WHERE slot_name = $2",
            [mark, "listener_slot"]
          ),
          (v) => v === true
        )
    )
  )
})
