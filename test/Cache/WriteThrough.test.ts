import * as SqlClient from "@effect/sql/SqlClient"
import { assert, describe, it, layer } from "@effect/vitest"
import { Deferred, Effect, Layer, Metric, Option, Ref, Schema } from "effect"
import * as Cache from "../../src/Cache/Cache.js"
import { CacheError } from "../../src/Cache/CacheError.js"
import * as M from "../../src/Cache/internal/patternMetrics.js"
import * as WriteThrough from "../../src/Cache/WriteThrough.js"
import type { Executor } from "../../src/Query/Executor.js"
import * as Entity from "../../src/Schema/Entity.js"
import { testDatabases, uniqueName } from "../support/databases.js"

class StoreDown extends Error {
  readonly _tag = "StoreDown"
}

/** An in-memory store; `failing` makes every call fail with `StoreDown`. */
const memoryStore = Effect.gen(function* () {
  const rows = yield* Ref.make(new Map<string, unknown>())
  const failing = yield* Ref.make(false)
  const guard = Effect.flatMap(Ref.get(failing), (down) =>
    down ? Effect.fail(new StoreDown()) : Effect.void
  )
  const store: WriteThrough.Store<unknown, StoreDown> = {
    write: (entries) =>
      Effect.zipRight(
        guard,
        Ref.update(rows, (m) => new Map([...m, ...entries.map((e) => [e.key, e.value] as const)]))
      ),
    delete: (keys) =>
      Effect.zipRight(
        guard,
        Ref.update(rows, (m) => new Map([...m].filter(([k]) => !keys.includes(k))))
      )
  }
  return { rows, failing, store }
})

describe("WriteThrough", () => {
  it.scoped(
    "storeFirst: a write reaches the store and the cache; a failed store leaves the cache as it was",
    () =>
      Effect.gen(function* () {
        const cache = yield* Cache.makeTest
        const { rows, failing, store } = yield* memoryStore
        const wt = yield* WriteThrough.make(cache, { store, name: "wt-store-first" })
        yield* wt.set("a", 1)
        assert.strictEqual((yield* Ref.get(rows)).get("a"), 1)
        assert.deepStrictEqual(yield* cache.get("a"), Option.some(1))
        yield* Ref.set(failing, true)
        assert.instanceOf(yield* Effect.flip(wt.set("a", 2)), StoreDown)
        assert.deepStrictEqual(yield* cache.get("a"), Option.some(1))
        assert.instanceOf(yield* Effect.flip(wt.delete("a")), StoreDown)
        assert.deepStrictEqual(yield* cache.get("a"), Option.some(1))
        yield* Ref.set(failing, false)
        yield* wt.delete("a")
        assert.isFalse((yield* Ref.get(rows)).has("a"))
        assert.isFalse(yield* cache.has("a"))
        const failures = yield* Metric.value(Metric.tagged(M.storeFailures, "cache", "wt-store-first"))
        assert.strictEqual(failures.count, 2)
      })
  )

  it.scoped("cacheFirst: a failed store puts back the previous value, or removes a new key", () =>
    Effect.gen(function* () {
      const cache = yield* Cache.makeTest
      const { rows, failing, store } = yield* memoryStore
      const wt = yield* WriteThrough.make(cache, { store, order: "cacheFirst" })
      yield* wt.set("a", 1)
      yield* Ref.set(failing, true)
      yield* Effect.flip(wt.set("a", 2))
      assert.deepStrictEqual(yield* cache.get("a"), Option.some(1))
      yield* Effect.flip(wt.set("new", 1))
      assert.isFalse(yield* cache.has("new"))
      yield* Effect.flip(wt.delete("a"))
      assert.deepStrictEqual(yield* cache.get("a"), Option.some(1))
      assert.deepStrictEqual([...(yield* Ref.get(rows))], [["a", 1]])
    })
  )

  it.scoped("a cache write failing after a good store: the write succeeds and no stale value stays", () =>
    Effect.gen(function* () {
      const inner = yield* Cache.makeTest
      yield* inner.set("a", "old")
      const broken = Cache.make<unknown>({
        ...inner,
        set: (key) => Effect.fail(new CacheError({ reason: "connection", operation: "set", key }))
      })
      const { rows, store } = yield* memoryStore
      const wt = yield* WriteThrough.make(broken, { store, name: "wt-cache-down" })
      yield* wt.set("a", "new")
      assert.strictEqual((yield* Ref.get(rows)).get("a"), "new")
      assert.isFalse(yield* inner.has("a"))
    })
  )

  it.scoped("async: set returns before the store has the value; closing the scope waits for it", () =>
    Effect.gen(function* () {
      const cache = yield* Cache.makeTest
      const { rows, store } = yield* memoryStore
      const gate = yield* Deferred.make<void>()
      const slow: WriteThrough.Store<unknown, StoreDown> = {
        ...store,
        write: (entries) => Effect.zipRight(Deferred.await(gate), store.write(entries))
      }
      yield* Effect.scoped(
        Effect.gen(function* () {
          const wt = yield* WriteThrough.make(cache, { store: slow, mode: "async" })
          yield* wt.set("a", 1)
          assert.isFalse((yield* Ref.get(rows)).has("a"))
          yield* Deferred.succeed(gate, undefined)
        })
      )
      assert.strictEqual((yield* Ref.get(rows)).get("a"), 1)
      assert.deepStrictEqual(yield* cache.get("a"), Option.some(1))
    })
  )

  it.scoped("the layer's default TTL applies when set is given none", () =>
    Effect.gen(function* () {
      const seen = yield* Ref.make<unknown>(undefined)
      const inner = yield* Cache.makeTest
      const recording = Cache.make<unknown>({
        ...inner,
        set: (key, value, ttl) => Effect.zipRight(Ref.set(seen, ttl), inner.set(key, value, ttl))
      })
      const { store } = yield* memoryStore
      const wt = yield* WriteThrough.make(recording, { store, ttl: "5 minutes" })
      yield* wt.set("a", 1)
      assert.strictEqual(yield* Ref.get(seen), "5 minutes")
      yield* wt.set("b", 1, "1 second")
      assert.strictEqual(yield* Ref.get(seen), "1 second")
    })
  )
})

const table = uniqueName("wt_users")

class User extends Schema.Class<User>("User")(
  { id: Schema.Number, name: Schema.String, age: Schema.Number },
  Entity.table(table)
) {}

class UserCache extends Cache.Tag("test/WriteThrough/UserCache")<UserCache, User>() {}
class UserWrites extends WriteThrough.Tag("test/WriteThrough/UserWrites")<
  UserWrites,
  User,
  WriteThrough.EntityStoreError,
  Executor
>() {}

for (const db of testDatabases()) {
  const fixtures = Layer.scopedDiscard(
    Effect.acquireRelease(
      Effect.flatMap(SqlClient.SqlClient, (sql) =>
        sql.unsafe(
          `CREATE TABLE ${table} (id INT PRIMARY KEY, name VARCHAR(50) NOT NULL UNIQUE, age INT NOT NULL)`
        )
      ),
      () => Effect.orDie(Effect.flatMap(SqlClient.SqlClient, (sql) => sql.unsafe(`DROP TABLE ${table}`)))
    )
  )
  const stack = WriteThrough.layer(UserWrites, UserCache, { store: WriteThrough.entityStore(User) }).pipe(
    Layer.provideMerge(Cache.layerSchema(UserCache, User)),
    Layer.provide(Cache.layerTest),
    Layer.provideMerge(Layer.provideMerge(fixtures, db.layer))
  )

  describe.skipIf(!db.available)(`${db.label}: WriteThrough.entityStore`, () => {
    layer(stack, { timeout: "30 seconds" })((it) => {
      it.effect("writes upsert the entity, deletes remove it by primary key", () =>
        Effect.gen(function* () {
          const wt = yield* UserWrites
          const sql = yield* SqlClient.SqlClient
          const rows = () =>
            sql.unsafe<{ id: number; name: string; age: number }>(
              `SELECT id, name, age FROM ${table} ORDER BY id`
            )
          yield* wt.set("1", new User({ id: 1, name: "Ann", age: 30 }))
          yield* wt.set("2", new User({ id: 2, name: "Bob", age: 20 }))
          yield* wt.set("1", new User({ id: 1, name: "Ann", age: 31 }))
          assert.deepStrictEqual(
            (yield* rows()).map((r) => [Number(r.id), r.name, Number(r.age)]),
            [
              [1, "Ann", 31],
              [2, "Bob", 20]
            ]
          )
          assert.strictEqual(Option.map(yield* wt.get("1"), (u) => u.age).pipe(Option.getOrUndefined), 31)
          yield* wt.delete("2")
          assert.deepStrictEqual(
            (yield* rows()).map((r) => Number(r.id)),
            [1]
          )
          assert.isTrue(Option.isNone(yield* wt.get("2")))
        })
      )

      it.effect(
        "a value colliding on another unique key is refused, never merged into the other row; a batch mixing new and existing rows lands",
        () =>
          Effect.gen(function* () {
            const wt = yield* UserWrites
            const sql = yield* SqlClient.SqlClient
            const rows = () =>
              Effect.map(
                sql.unsafe<{ id: number; name: string; age: number }>(
                  `SELECT id, name, age FROM ${table} ORDER BY id`
                ),
                (all) => all.map((r) => [Number(r.id), r.name, Number(r.age)])
              )
            const before = yield* rows()
            // "Ann" is user 1's: MySQL's ON DUPLICATE KEY UPDATE would have updated user 1 and dropped user 3.
            const error = yield* Effect.flip(wt.set("3", new User({ id: 3, name: "Ann", age: 5 })))
            assert.strictEqual(error._tag, "DatabaseError")
            assert.strictEqual(error._tag === "DatabaseError" ? error.reason : "", "unique")
            assert.deepStrictEqual(yield* rows(), before)
            assert.isTrue(Option.isNone(yield* wt.get("3")))
            yield* WriteThrough.entityStore(User).write([
              { key: "1", value: new User({ id: 1, name: "Ann", age: 40 }) },
              { key: "4", value: new User({ id: 4, name: "Dan", age: 4 }) }
            ])
            assert.deepStrictEqual(yield* rows(), [
              [1, "Ann", 40],
              [4, "Dan", 4]
            ])
          })
      )
    })
  })
}
