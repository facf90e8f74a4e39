import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { Context, Effect, Fiber, Layer, Metric, Option, Queue } from "effect"
import * as Mysql from "mysql2/promise"
import Pg from "pg"
import * as Cache from "../../src/Cache/Cache.js"
import * as DeadLetter from "../../src/Cache/DeadLetter.js"
import * as M from "../../src/Cache/internal/patternMetrics.js"
import * as WriteBack from "../../src/Cache/WriteBack.js"
import * as WriteThrough from "../../src/Cache/WriteThrough.js"
import type * as ChangeStream from "../../src/ChangeStream/ChangeStream.js"
import * as MariaDbBinlog from "../../src/ChangeStream/MariaDbBinlog.js"
import * as PositionStore from "../../src/ChangeStream/PositionStore.js"
import * as PostgresLogical from "../../src/ChangeStream/PostgresLogical.js"
import * as ChangeCapture from "../../src/Middleware/ChangeCapture.js"
import * as ChangeFeed from "../../src/Query/ChangeFeed.js"
import { startMariaDb, startOrSkip, startPostgres } from "../support/logServers.js"
import { eventually, followingLayer, Item, itemsTable } from "./cdcStack.js"

// One server of each kind for the file, started while the file is collected so that a suite can be
// skipped (loudly) when its server cannot start.
const mariadb = await startOrSkip("mariadb", startMariaDb)
const postgres = await startOrSkip("postgres", startPostgres)
let my: Mysql.Connection | undefined
let pg: Pg.Client | undefined
const dir = mkdtempSync(join(tmpdir(), "effect-dal-writeback-conflicts-"))
const createItems = `CREATE TABLE ${itemsTable} (id INT PRIMARY KEY, name VARCHAR(100) NOT NULL)`

beforeAll(async () => {
  if (mariadb !== undefined) {
    my = await Mysql.createConnection({ uri: mariadb.url })
    await my.query(createItems)
  }
  if (postgres !== undefined) {
    pg = new Pg.Client({ connectionString: postgres.url })
    pg.on("error", () => {})
    await pg.connect()
    await pg.query(createItems)
  }
})

afterAll(async () => {
  await my?.end().catch(() => undefined)
  await pg?.end().catch(() => undefined)
  await mariadb?.stop()
  await postgres?.stop()
  rmSync(dir, { recursive: true, force: true })
})

/** A plain SQL client of the server, outside the library. */
type Exec = (statement: string) => Effect.Effect<unknown>

const execMy: Exec = (statement) =>
  Effect.promise(() => (my as Mysql.Connection).query(statement).then((r) => r[0]))
const execPg: Exec = (statement) =>
  Effect.promise(() => (pg as Pg.Client).query(statement).then((r) => r.rows))

/** The count of a one-row, one-column result (statements waiting for a lock). */
const waiting = (rows: unknown) => Number(Object.values((rows as ReadonlyArray<object>)[0] ?? {})[0] ?? 0)

const nameOf = (exec: Exec, id: number) =>
  Effect.map(exec(`SELECT name FROM ${itemsTable} WHERE id = ${id}`), (rows) => {
    const [row] = rows as ReadonlyArray<{ readonly name: string }>
    return row?.name
  })

/**
 * The write-back cache of items over the database's change stream: its store runs through the
 * ChangeCapture middleware, so each of its writes is reported twice (the library's own event, then
 * the change stream's).
 */
const conflictCase = <E>(
  url: string,
  stream: Layer.Layer<ChangeStream.ChangeStream, E>,
  exec: Exec,
  lockWaits: string
) =>
  Effect.scoped(
    Effect.gen(function* () {
      const name = `wb-cdc-${url.slice(0, url.indexOf(":"))}`
      const following = yield* Layer.build(followingLayer(url, stream))
      const captured = yield* Layer.build(ChangeCapture.layer).pipe(Effect.provide(following))
      const seen = yield* Effect.provide(ChangeFeed.subscribe, following)
      const ids = new Set<string>()
      /** Waits until the change stream has delivered the change of `id` (in commit order). */
      const delivered = (id: number) =>
        eventually(
          `the change of row ${id} reaches the feed`,
          Effect.map(Queue.takeAll(seen), (events) => {
            for (const e of events) for (const pk of e.primaryKeys ?? []) ids.add(String(pk.id))
            return ids.has(String(id))
          }),
          (found) => found
        )
      const letters = yield* DeadLetter.makeFile(join(dir, `${name}.sqlite`))
      const base = Cache.forSchema(Item)(yield* Cache.makeTest)
      const { cache, control } = yield* WriteBack.make(base, {
        store: WriteThrough.entityStore(Item),
        name,
        schema: Item,
        replay: false,
        conflicts: { table: itemsTable, key: (pk) => String(pk.id), echoFor: "5 minutes" }
      }).pipe(
        Effect.provide(Context.merge(following, captured)),
        Effect.provideService(DeadLetter.DeadLetters, letters)
      )

      yield* exec(`INSERT INTO ${itemsTable} (id, name) VALUES (1, 'first'), (2, 'first')`)
      yield* delivered(2)
      yield* cache.set("1", new Item({ id: 1, name: "cache" }))
      yield* cache.set("2", new Item({ id: 2, name: "cache" }))
      // A plain client updates row 1 while the cache holds a pending write of it.
      yield* exec(`UPDATE ${itemsTable} SET name = 'sql client' WHERE id = 1`)
      ids.clear()
      yield* delivered(1)
      const first = yield* control.flush
      assert.deepStrictEqual(WriteBack.keysOf(first.conflicted), ["1"])
      assert.deepStrictEqual(first.written, ["2"])
      assert.strictEqual(yield* nameOf(exec, 1), "sql client")
      assert.strictEqual(yield* nameOf(exec, 2), "cache")
      assert.deepStrictEqual(yield* cache.get("1"), Option.none())
      const conflicts = yield* Metric.value(Metric.tagged(M.conflicts, "cache", name))
      assert.strictEqual(conflicts.count, 1)
      const stored = yield* letters.list(name)
      assert.deepStrictEqual(
        stored.map((l) => l.key),
        ["1"]
      )
      assert.match(stored[0]?.error ?? "", /^write conflict:/)

      // The cache's own write of row 2 held by a plain client's row lock, and row 2 written to the
      // cache again meanwhile: the change stream reports the own write only once the key is dirty
      // again, which is no conflict. A plain client's write to another row, committed after that,
      // marks when that report is in.
      yield* exec("BEGIN")
      yield* exec(`SELECT name FROM ${itemsTable} WHERE id = 2 FOR UPDATE`)
      yield* cache.set("2", new Item({ id: 2, name: "cache again" }))
      const held = yield* Effect.fork(control.flush)
      yield* eventually("the flush waits for the row lock", exec(lockWaits), (rows) => waiting(rows) > 0)
      yield* cache.set("2", new Item({ id: 2, name: "cache last" }))
      yield* exec("COMMIT")
      const during = yield* Fiber.join(held)
      assert.deepStrictEqual(during.written, ["2"])
      assert.deepStrictEqual(during.conflicted, [])
      yield* exec(`INSERT INTO ${itemsTable} (id, name) VALUES (3, 'other row')`)
      ids.clear()
      yield* delivered(3)
      const second = yield* control.flush
      assert.deepStrictEqual(second.conflicted, [])
      assert.deepStrictEqual(second.written, ["2"])
      assert.strictEqual(yield* nameOf(exec, 2), "cache last")
      yield* control.close()
    })
  )

describe.skipIf(mariadb === undefined)("WriteBack conflicts over the MariaDB binlog", () => {
  it.live(
    "a row a plain client updated while its write was pending is not overwritten; own writes and other rows are no conflicts",
    () =>
      conflictCase(
        mariadb?.url ?? "",
        MariaDbBinlog.layer({ url: mariadb?.url ?? "" }).pipe(Layer.provide(PositionStore.layerMemory)),
        execMy,
        "SELECT COUNT(*) AS n FROM information_schema.PROCESSLIST WHERE INFO LIKE 'UPDATE%'"
      ),
    60_000
  )
})

describe.skipIf(postgres === undefined)("WriteBack conflicts over PostgreSQL logical replication", () => {
  it.live(
    "a row a plain client updated while its write was pending is not overwritten; own writes and other rows are no conflicts",
    () =>
      conflictCase(
        postgres?.url ?? "",
        PostgresLogical.layer({ url: postgres?.url ?? "", slot: "writeback_conflicts" }),
        execPg,
        "SELECT count(*) AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
      ),
    60_000
  )
})
