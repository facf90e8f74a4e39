import { mkdtempSync, rmSync } from "node:fs"
import { readFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { ConfigProvider, Effect, Exit, Layer, Metric, Option, Queue, Stream } from "effect"
import * as Mysql from "mysql2/promise"
import * as ChangeStream from "../../src/ChangeStream/ChangeStream.js"
import * as MariaDbBinlog from "../../src/ChangeStream/MariaDbBinlog.js"
import * as PositionStore from "../../src/ChangeStream/PositionStore.js"
import * as ChangeFeed from "../../src/Query/ChangeFeed.js"
import { type LogServer, startMariaDb, startOrSkip } from "../support/logServers.js"
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
const server = await startOrSkip("mariadb", startMariaDb)
let sql: Mysql.Connection | undefined
const dir = mkdtempSync(join(tmpdir(), "effect-dal-binlog-test-"))

beforeAll(async () => {
  if (server === undefined) return
  sql = await Mysql.createConnection({ uri: server.url })
  await sql.query(`CREATE TABLE ${itemsTable} (id INT PRIMARY KEY, name VARCHAR(100) NOT NULL)`)
  await sql.query("CREATE TABLE burst (id INT PRIMARY KEY, n INT NOT NULL)")
})

afterAll(async () => {
  await sql?.end().catch(() => undefined)
  await server?.stop()
  rmSync(dir, { recursive: true, force: true })
})

const url = () => server?.url ?? ""
const exec = (statement: string, params: ReadonlyArray<unknown> = []) =>
  Effect.promise(async () => {
    if (sql === undefined) throw new Error("no server")
    await sql.query(statement, [...params] as Array<string | number>)
  })

const positions = join(dir, "positions.json")
const binlogPosition = Effect.promise(async () => {
  const [rows] = await (sql as Mysql.Connection).query<Array<Mysql.RowDataPacket>>(
    "SELECT @@gtid_binlog_pos AS p"
  )
  return String(rows[0]?.p)
})
/** The sequence number of a one-domain GTID position (`0-1-42` → 42). */
const sequence = (position: string) => Number(position.split("-")[2] ?? -1)

/** A binlog stream with positions in memory, read from the server's current position. */
const memoryStream = (options: Partial<MariaDbBinlog.Options> = {}) =>
  MariaDbBinlog.layer({ url: url(), ...options }).pipe(Layer.provide(PositionStore.layerMemory))

describe.skipIf(server === undefined)("MariaDbBinlog", () => {
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
        `binlog → cache: insert ${inserted.millis} ms, update ${updated.millis} ms, delete ${deleted.millis} ms`
      )
    }).pipe(Effect.provide(cacheLayer().pipe(Layer.provideMerge(followingLayer(url(), memoryStream())))))
  )

  it.live(
    "rolled-back work produces no event (a transaction, a savepoint); key, row and old row are reported",
    () =>
      Effect.gen(function* () {
        const stream = yield* ChangeStream.ChangeStream
        const collected = yield* Effect.fork(takeUntilId(stream.changes, itemsTable, 12))
        yield* rolledBackThenKept(exec)
        yield* Effect.promise(async () => {
          if (sql === undefined) return
          // A savepoint rolled back inside a committed transaction: only what was kept arrives.
          await sql.query("BEGIN")
          await sql.query(`UPDATE ${itemsTable} SET name = 'b' WHERE id = 11`)
          await sql.query("SAVEPOINT s1")
          await sql.query(`INSERT INTO ${itemsTable} (id, name) VALUES (13, 'undone')`)
          await sql.query("ROLLBACK TO SAVEPOINT s1")
          await sql.query("SAVEPOINT s2")
          await sql.query(`INSERT INTO ${itemsTable} (id, name) VALUES (12, 'c')`)
          await sql.query("COMMIT")
        })
        const transactions = yield* collected.await.pipe(Effect.flatten, Effect.timeout("10 seconds"))
        assert.deepStrictEqual(changedIds(transactions, itemsTable), [11, 11, 12])
        assert.deepStrictEqual(
          transactions.filter((tx) => tx.changes.length > 0).map((tx) => tx.changes.length),
          [1, 2],
          "the savepoints do not split the transaction"
        )
        const changes = transactions.flatMap((tx) => tx.changes)
        const update = changes.find((c) => c.operation === "UPDATE")
        assert.deepStrictEqual(update?.key, { id: 11 })
        assert.deepStrictEqual(update?.row, { id: 11, name: "b" })
        assert.deepStrictEqual(update?.before, { id: 11, name: "a" })
        assert.isTrue(transactions.every((tx) => /^\d+-\d+-\d+$/.test(tx.position)))
      }).pipe(Effect.provide(memoryStream()))
  )

  it.live("10,000 changes in a burst (1,000 transactions) arrive complete and in commit order", () =>
    Effect.gen(function* () {
      const stream = yield* ChangeStream.ChangeStream
      const collected = yield* Effect.fork(takeUntilId(stream.changes, "burst", 10_000))
      // 1,000 autocommit INSERTs of 10 rows each, sent back to back.
      yield* Effect.promise(() =>
        Promise.all(
          Array.from({ length: 1000 }, (_, t) =>
            sql?.query("INSERT INTO burst VALUES ?", [
              Array.from({ length: 10 }, (_, i) => [t * 10 + i + 1, t])
            ])
          )
        )
      )
      const transactions = yield* collected.await.pipe(Effect.flatten, Effect.timeout("60 seconds"))
      assertRange(changedIds(transactions, "burst"), 1, 10_000)
      assert.strictEqual(transactions.filter((tx) => tx.changes.length > 0).length, 1000)
    }).pipe(Effect.provide(memoryStream({ tables: ["burst"] })))
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
        sql = await Mysql.createConnection({ uri: current.url })
      })
      yield* exec(`INSERT INTO ${itemsTable} (id, name) VALUES (21, 'after'), (22, 'after')`)
      const transactions = yield* collected.await.pipe(Effect.flatten, Effect.timeout("60 seconds"))
      assert.deepStrictEqual([...new Set(changedIds(transactions, itemsTable))], [20, 21, 22])
      const snapshot = yield* Metric.snapshot
      const reconnects = snapshot.find(
        (m) => m.metricKey.name === "effect_dal_change_stream_reconnects_total"
      )
      assert.isDefined(reconnects, "the reconnect is counted")
    }).pipe(Effect.provide(memoryStream()))
  )

  it.live("a binlog not in ROW format is a setup error, not a retry", () =>
    Effect.gen(function* () {
      yield* exec("SET GLOBAL binlog_format = 'STATEMENT'")
      const exit = yield* Effect.exit(Effect.scoped(Layer.build(memoryStream())))
      yield* exec("SET GLOBAL binlog_format = 'ROW'")
      assert.isTrue(Exit.isFailure(exit))
      if (Exit.isFailure(exit)) {
        const error = Option.getOrThrow(
          Exit.causeOption(exit).pipe(Option.flatMap((c) => Option.fromNullable(c)))
        )
        assert.match(String(error), /binlog_format is STATEMENT, not ROW/)
        assert.match(String(error), /setup/)
      }
    })
  )

  it.live("a stored position whose binlog was purged fails with position_lost", () =>
    Effect.gen(function* () {
      yield* exec(`INSERT INTO ${itemsTable} (id, name) VALUES (30, 'x')`)
      yield* exec("FLUSH BINARY LOGS")
      yield* exec("PURGE BINARY LOGS BEFORE NOW() + INTERVAL 1 DAY")
      const store = join(dir, "purged.json")
      yield* Effect.flatMap(PositionStore.makeFile(store), (s) => s.save("purged", "0-1-1"))
      const result = yield* Effect.scoped(
        Effect.flatMap(ChangeStream.ChangeStream, (s) => Stream.runHead(s.changes)).pipe(
          Effect.provide(
            MariaDbBinlog.layer({ url: url(), name: "purged" }).pipe(
              Layer.provide(PositionStore.layerFile(store))
            )
          ),
          Effect.flip,
          Effect.timeout("30 seconds")
        )
      )
      assert.strictEqual(result._tag, "ChangeStreamError")
      assert.strictEqual(result.reason, "position_lost")
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
              ["DATABASE_URL", url()]
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
  "MariaDbBinlog with a shared Redis",
  () => {
    it.live("two program instances sharing Redis both see a row changed outside the library", () =>
      sharedRedisCase(url(), memoryStream(), exec, serviceUrls.redis, 40)
    )
  }
)

describe.skipIf(server === undefined)("MariaDbBinlog listener process", () => {
  it.live("killed with SIGKILL and restarted, it resumes from its committed position: no change missed", () =>
    killedListenerCase(["mariadb", url(), positions, itemsTable], exec, 100, binlogPosition, (mark) =>
      Effect.promise(async () => {
        const stored: Record<string, string> = JSON.parse(await readFile(positions, "utf8").catch(() => "{}"))
        return Object.values(stored).some((p) => sequence(p) > sequence(mark))
      })
    )
  )
})
