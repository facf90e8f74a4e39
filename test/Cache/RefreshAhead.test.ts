import { type ChildProcess, spawn } from "node:child_process"
import { randomUUID } from "node:crypto"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { createInterface } from "node:readline"
import * as SqlClient from "@effect/sql/SqlClient"
import { assert, describe, it } from "@effect/vitest"
import { Array as Arr, Effect, Layer, Logger, LogLevel, Option, Queue, Ref, Schema } from "effect"
import * as Cache from "../../src/Cache/Cache.js"
import * as MemoryCache from "../../src/Cache/MemoryCache.js"
import * as ReadThrough from "../../src/Cache/ReadThrough.js"
import * as RefreshAhead from "../../src/Cache/RefreshAhead.js"
import * as Database from "../../src/Layers/Database.js"
import * as ChangeCapture from "../../src/Middleware/ChangeCapture.js"
import * as ChangeFeed from "../../src/Query/ChangeFeed.js"
import type { Executor } from "../../src/Query/Executor.js"
import * as Expr from "../../src/Query/Expr.js"
import * as Insert from "../../src/Query/Insert.js"
import type { SelectError } from "../../src/Query/Select.js"
import * as Select from "../../src/Query/Select.js"
import * as Update from "../../src/Query/Update.js"
import * as Entity from "../../src/Schema/Entity.js"
import * as Tx from "../../src/Tx/Tx.js"
import { uniqueName } from "../support/databases.js"
import { startRedisServer } from "../support/redisServer.js"
import { serviceAvailable, serviceUrls } from "../support/services.js"
import { pollUntil } from "./Poll.js"

const table = uniqueName("refresh_items")

class Item extends Schema.Class<Item>("Item")(
  { id: Schema.Number, name: Schema.String },
  Entity.table(table)
) {}

const C = Expr.columns(Item)

/** Counts the loads that reached the database. */
class Loads extends Effect.Service<Loads>()("test/RefreshAhead/Loads", { effect: Ref.make(0) }) {}

class Items extends ReadThrough.Tag("test/RefreshAhead/Items")<
  Items,
  unknown,
  SelectError,
  Executor | Loads
>() {}

const loader = (key: string) =>
  Effect.flatMap(Loads, (loads) =>
    Ref.update(loads, (n) => n + 1).pipe(
      Effect.zipRight(
        Select.from(Item)
          .where(C("id").eq(Number(key)))
          .getMulti()
      ),
      Effect.map((rows) => Option.map(Arr.head(rows), (item) => item.name))
    )
  )

const database = (url: string) =>
  Layer.provideMerge(
    ChangeCapture.layer,
    Layer.provideMerge(ChangeFeed.layer, Layer.orDie(Database.layer({ url })))
  )

const fixtures = Layer.effectDiscard(
  Effect.flatMap(SqlClient.SqlClient, (sql) =>
    Effect.zipRight(
      sql.unsafe(`CREATE TABLE ${table} (id INTEGER PRIMARY KEY, name TEXT NOT NULL)`),
      sql.unsafe(`INSERT INTO ${table} (id, name) VALUES (1, 'v1'), (2, 'w1')`)
    )
  ).pipe(Effect.orDie)
)

/** One instance of the program over the database at `url`; `setup` runs once it is connected. */
const instance = (
  url: string,
  options: Omit<RefreshAhead.Options, "table" | "key"> = {},
  setup: Layer.Layer<never, never, SqlClient.SqlClient> = Layer.empty
) =>
  RefreshAhead.layer(Items, { table, key: (pk) => String(pk.id), ...options }).pipe(
    Layer.provide(
      ReadThrough.layer(Items, Cache.Cache, {
        loader,
        ttl: "1 hour",
        negative: { ttl: "1 hour" }
      })
    ),
    Layer.provideMerge(MemoryCache.layer()),
    Layer.provideMerge(Loads.Default),
    Layer.provideMerge(setup),
    Layer.provideMerge(database(url))
  )

const stack = (url: string, options: Omit<RefreshAhead.Options, "table" | "key"> = {}) =>
  instance(url, options, fixtures)

const loads = Effect.flatMap(Loads, Ref.get)
const get = (id: number) => Effect.flatMap(Items, (rt) => rt.get(String(id)))

describe("RefreshAhead in one process", () => {
  it.scoped("an UPDATE through the library invalidates the cached entity; the next get reloads it", () =>
    Effect.gen(function* () {
      assert.deepStrictEqual(yield* get(1), Option.some("v1"))
      assert.deepStrictEqual(yield* get(1), Option.some("v1"))
      assert.strictEqual(yield* loads, 1)
      yield* Update.table(Item).set({ name: "v2" }).where(C("id").eq(1)).exec()
      assert.deepStrictEqual(yield* get(1), Option.some("v2"))
      assert.strictEqual(yield* loads, 2)
      assert.deepStrictEqual(yield* get(2), Option.some("w1"))
      assert.strictEqual(yield* loads, 3)
    }).pipe(Effect.provide(stack("sqlite::memory:")))
  )

  it.scoped("an INSERT clears a remembered absence; a rolled-back write changes nothing", () =>
    Effect.gen(function* () {
      assert.deepStrictEqual(yield* get(3), Option.none())
      assert.deepStrictEqual(yield* get(3), Option.none())
      assert.strictEqual(yield* loads, 1)
      yield* Effect.flip(
        Update.table(Item)
          .set({ name: "never" })
          .where(C("id").eq(1))
          .exec()
          .pipe(Effect.zipRight(Effect.fail("abort")), Tx.run())
      )
      yield* get(1)
      yield* get(1)
      assert.strictEqual(yield* loads, 2)
      yield* Insert.into(Item)
        .values(new Item({ id: 3, name: "x1" }))
        .exec()
      assert.deepStrictEqual(yield* get(3), Option.some("x1"))
      assert.strictEqual(yield* loads, 3)
    }).pipe(Effect.provide(stack("sqlite::memory:")))
  )

  it.scoped("a change whose rows are unknown invalidates every key stored here", () =>
    Effect.gen(function* () {
      yield* get(1)
      yield* get(2)
      assert.strictEqual(yield* loads, 2)
      yield* Update.table(Item).set({ name: "all" }).where(C("name").neq("none")).exec()
      assert.deepStrictEqual([yield* get(1), yield* get(2)], [Option.some("all"), Option.some("all")])
      assert.strictEqual(yield* loads, 4)
    }).pipe(Effect.provide(stack("sqlite::memory:")))
  )

  it.live("reload: the new value is in the cache before anyone asks", () =>
    Effect.gen(function* () {
      yield* get(1)
      const cache = yield* Cache.Cache
      yield* Update.table(Item).set({ name: "v2" }).where(C("id").eq(1)).exec()
      // Polled (real time) with a 10 s deadline: the reload runs on the background pool.
      const cached = yield* Effect.repeat(Effect.zipRight(Effect.sleep("20 millis"), cache.get("1")), {
        until: (v) => Option.getOrUndefined(v) === "v2",
        times: 500
      })
      assert.deepStrictEqual(cached, Option.some("v2"))
      assert.strictEqual(yield* loads, 2)
      assert.deepStrictEqual(yield* get(1), Option.some("v2"))
      assert.strictEqual(yield* loads, 2)
    }).pipe(Effect.provide(stack("sqlite::memory:", { action: "reload", drainInterval: "10 millis" })))
  )
})

/** A child process running RefreshAhead.child.ts; `ask` sends one line and reads one answer. */
const child = (args: ReadonlyArray<string>) =>
  Effect.gen(function* () {
    const lines = yield* Queue.unbounded<string>()
    const proc: ChildProcess = yield* Effect.acquireRelease(
      Effect.sync(() =>
        spawn(
          process.execPath,
          ["--import", "tsx", join(import.meta.dirname, "RefreshAhead.child.ts"), ...args],
          {
            stdio: ["pipe", "pipe", "inherit"]
          }
        )
      ),
      (p) => Effect.sync(() => p.kill())
    )
    if (proc.stdout === null || proc.stdin === null) return yield* Effect.dieMessage("child without pipes")
    const stdin = proc.stdin
    createInterface({ input: proc.stdout }).on("line", (line) => lines.unsafeOffer(line))
    const ready = yield* Effect.timeout(Queue.take(lines), "30 seconds")
    assert.strictEqual(ready, "ready")
    return {
      ask: (line: string) =>
        Effect.zipRight(
          Effect.sync(() => stdin.write(`${line}\n`)),
          Effect.map(Effect.timeout(Queue.take(lines), "10 seconds"), (answer) => {
            const parsed: { readonly value: string | null; readonly loads: number } = JSON.parse(answer)
            return parsed
          })
        )
    }
  })

describe.skipIf(!serviceAvailable("redis"))("RefreshAhead across processes", () => {
  it.live(
    "an UPDATE in this process invalidates the entity cached by a second process, through Redis",
    () => {
      const dir = mkdtempSync(join(tmpdir(), "refresh-ahead-"))
      const url = `sqlite:${join(dir, "shared.sqlite")}`
      const channel = `refresh-ahead:${randomUUID()}`
      return Effect.gen(function* () {
        assert.deepStrictEqual(yield* get(1), Option.some("v1"))
        const second = yield* child([url, serviceUrls.redis, channel, table])
        assert.deepStrictEqual(yield* second.ask("get 1"), { value: "v1", loads: 1 })
        assert.deepStrictEqual(yield* second.ask("get 1"), { value: "v1", loads: 1 })
        yield* Update.table(Item).set({ name: "v2" }).where(C("id").eq(1)).exec()
        assert.deepStrictEqual(yield* get(1), Option.some("v2"))
        // The message crosses Redis asynchronously: ask until the second process has applied it.
        let answer = yield* second.ask("get 1")
        for (let i = 0; i < 100 && answer.value !== "v2"; i++) {
          yield* Effect.sleep("50 millis")
          answer = yield* second.ask("get 1")
        }
        assert.deepStrictEqual(answer, { value: "v2", loads: 2 })
      }).pipe(
        Effect.provide(stack(url, { redis: { url: serviceUrls.redis, channel } })),
        Effect.scoped,
        Effect.ensuring(Effect.sync(() => rmSync(dir, { recursive: true, force: true })))
      )
    },
    60_000
  )
})

describe("RefreshAhead across a Redis outage", () => {
  it.scopedLive(
    "an invalidation published while Redis was down is lost; the subscriber invalidates everything when it is back",
    () =>
      Effect.gen(function* () {
        const server = yield* Effect.acquireRelease(
          Effect.promise(() => startRedisServer()),
          (s) => Effect.promise(() => s.stop())
        )
        const dir = yield* Effect.acquireRelease(
          Effect.sync(() => mkdtempSync(join(tmpdir(), "refresh-ahead-"))),
          (d) => Effect.sync(() => rmSync(d, { recursive: true, force: true }))
        )
        const url = `sqlite:${join(dir, "shared.sqlite")}`
        const redis = { url: server.url, channel: "items" }
        const a = yield* Layer.build(stack(url, { redis }))
        const b = yield* Layer.build(instance(url, { redis }))
        assert.deepStrictEqual(yield* Effect.provide(get(1), b), Option.some("v1"))
        yield* Effect.promise(() => server.kill())
        yield* Update.table(Item).set({ name: "v2" }).where(C("id").eq(1)).exec().pipe(Effect.provide(a))
        // b never heard of it: its cached value is stale (TTL 1 hour).
        assert.deepStrictEqual(yield* Effect.provide(get(1), b), Option.some("v1"))
        yield* Effect.promise(() => server.restart())
        yield* pollUntil(
          "b to invalidate after reconnecting",
          20_000,
          Effect.map(Effect.provide(get(1), b), (v) => Option.getOrNull(v) === "v2")
        )
        const seen = yield* Effect.provide(get(1), b)
        assert.deepStrictEqual(seen, Option.some("v2"))
      }).pipe(Logger.withMinimumLogLevel(LogLevel.Error)),
    60_000
  )
})
