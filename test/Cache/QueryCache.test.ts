import { randomUUID } from "node:crypto"
import * as SqlClient from "@effect/sql/SqlClient"
import { assert, describe, layer } from "@effect/vitest"
import { Effect, Layer, Metric, Ref, Schema } from "effect"
import * as Cache from "../../src/Cache/Cache.js"
import * as M from "../../src/Cache/internal/patternMetrics.js"
import * as QueryCache from "../../src/Cache/QueryCache.js"
import * as RedisCache from "../../src/Cache/RedisCache.js"
import * as ChangeCapture from "../../src/Middleware/ChangeCapture.js"
import * as ChangeFeed from "../../src/Query/ChangeFeed.js"
import * as Executor from "../../src/Query/Executor.js"
import * as Expr from "../../src/Query/Expr.js"
import * as Insert from "../../src/Query/Insert.js"
import * as Raw from "../../src/Query/Raw.js"
import * as Select from "../../src/Query/Select.js"
import * as Update from "../../src/Query/Update.js"
import * as Entity from "../../src/Schema/Entity.js"
import * as Tx from "../../src/Tx/Tx.js"
import { testDatabases, uniqueName } from "../support/databases.js"
import { serviceAvailable, serviceUrls } from "../support/services.js"

const users = uniqueName("qc_users")
const posts = uniqueName("qc_posts")
const events = uniqueName("qc_events")

class User extends Schema.Class<User>("User")(
  { id: Schema.Number, name: Schema.String, age: Schema.Number },
  Entity.table(users)
) {}
/** Read only, from a DATETIME column on MariaDB: the driver's rows hold `Date` objects. */
class Event extends Schema.Class<Event>("Event")(
  { id: Schema.Number, at: Schema.DateFromSelf },
  Entity.table(events)
) {}
class Post extends Schema.Class<Post>("Post")(
  { id: Schema.Number, userId: Schema.Number, title: Schema.String },
  Entity.table(posts)
) {}

const U = Expr.columns(User)
const u = Expr.table(User, "u")
const p = Expr.table(Post, "p")

/** The SELECTs that reached the database (below the query cache). */
class DatabaseSelects extends Effect.Service<DatabaseSelects>()("test/QueryCache/DatabaseSelects", {
  effect: Ref.make(0)
}) {}

const countSelects = Layer.unwrapEffect(
  Effect.map(DatabaseSelects, (count) =>
    Executor.layerMiddleware(
      (next) => (ctx) =>
        ctx.type === "SELECT"
          ? Effect.zipRight(
              Ref.update(count, (n) => n + 1),
              next(ctx)
            )
          : next(ctx)
    )
  )
)

const selects = Effect.flatMap(DatabaseSelects, Ref.get)

const adults = Select.from(User).where(U("age").gte(18)).orderBy("id")

const withPosts = Select.from(User, "u")
  .join(Post, "p", p.userId.eq(u.id))
  .orderBy(p.title)
  .select({ name: u.name, title: p.title }, Schema.Struct({ name: Schema.String, title: Schema.String }))

for (const db of testDatabases().filter((d) => d.dialect !== "pg")) {
  const fixtures = Layer.scopedDiscard(
    Effect.acquireRelease(
      Effect.flatMap(SqlClient.SqlClient, (sql) =>
        Effect.all([
          sql.unsafe(
            `CREATE TABLE ${users} (id INT PRIMARY KEY, name VARCHAR(50) NOT NULL, age INT NOT NULL)`
          ),
          sql.unsafe(
            `CREATE TABLE ${posts} (id INT PRIMARY KEY, user_id INT NOT NULL, title VARCHAR(50) NOT NULL)`
          ),
          sql.unsafe(
            `CREATE TABLE ${events} (id INT PRIMARY KEY, at ${db.dialect === "mysql" ? "DATETIME(3)" : "TEXT"} NOT NULL)`
          ),
          sql.unsafe(`INSERT INTO ${events} (id, at) VALUES (1, '2024-05-06 07:08:09.123')`)
        ])
      ),
      () =>
        Effect.orDie(
          Effect.flatMap(SqlClient.SqlClient, (sql) =>
            Effect.all([
              sql.unsafe(`DROP TABLE ${users}`),
              sql.unsafe(`DROP TABLE ${posts}`),
              sql.unsafe(`DROP TABLE ${events}`)
            ])
          )
        )
    )
  )
  const base = Layer.provideMerge(
    ChangeCapture.layer,
    Layer.provideMerge(ChangeFeed.layer, Layer.provideMerge(fixtures, db.layer))
  )
  const counted = Layer.provideMerge(countSelects, Layer.merge(base, DatabaseSelects.Default))
  const backing: ReadonlyArray<readonly [string, Layer.Layer<Cache.Cache, unknown>, boolean]> = [
    ["memory", Cache.layerTest, true],
    [
      "Redis",
      RedisCache.layer({ url: serviceUrls.redis, keyPrefix: `querycache:${randomUUID()}:` }),
      serviceAvailable("redis")
    ]
  ]

  for (const [backend, cacheLayer, available] of backing) {
    const stack = Layer.provideMerge(
      QueryCache.layer(Cache.Cache, { ttl: "1 minute" }),
      Layer.merge(counted, cacheLayer)
    )

    describe.skipIf(!db.available || !available)(`${db.label}, ${backend} cache: QueryCache`, () => {
      layer(stack, { timeout: "30 seconds" })((it) => {
        it.effect("a cached SELECT is served without a database round trip, with the same entities", () =>
          Effect.gen(function* () {
            yield* Insert.into(User)
              .values([new User({ id: 1, name: "Ann", age: 30 }), new User({ id: 2, name: "Bob", age: 12 })])
              .exec()
            const before = yield* selects
            const first = yield* adults.getMulti()
            const second = yield* adults.getMulti()
            assert.strictEqual((yield* selects) - before, 1)
            assert.deepStrictEqual(second, first)
            assert.strictEqual(second[0]?.name, "Ann")
          })
        )

        it.effect("an INSERT into its table makes the next SELECT go to the database", () =>
          Effect.gen(function* () {
            yield* adults.getMulti()
            const before = yield* selects
            yield* Insert.into(User)
              .values(new User({ id: 3, name: "Cid", age: 40 }))
              .exec()
            const after = yield* adults.getMulti()
            assert.strictEqual((yield* selects) - before, 1)
            assert.deepStrictEqual(
              after.map((x) => x.name),
              ["Ann", "Cid"]
            )
            yield* adults.getMulti()
            assert.strictEqual((yield* selects) - before, 1)
          })
        )

        it.effect("other parameters are other entries", () =>
          Effect.gen(function* () {
            const before = yield* selects
            const a = yield* Select.from(User).where(U("age").gte(35)).getMulti()
            const b = yield* Select.from(User).where(U("age").gte(5)).getMulti()
            assert.strictEqual((yield* selects) - before, 2)
            assert.deepStrictEqual([a.length, b.length], [1, 3])
          })
        )

        it.effect("a join is invalidated by a write to either table", () =>
          Effect.gen(function* () {
            yield* Insert.into(Post)
              .values(new Post({ id: 1, userId: 1, title: "a" }))
              .exec()
            const before = yield* selects
            yield* withPosts.getMulti()
            yield* withPosts.getMulti()
            assert.strictEqual((yield* selects) - before, 1)
            yield* Insert.into(Post)
              .values(new Post({ id: 2, userId: 3, title: "b" }))
              .exec()
            const rows = yield* withPosts.getMulti()
            assert.deepStrictEqual(rows, [
              { name: "Ann", title: "a" },
              { name: "Cid", title: "b" }
            ])
            yield* Update.table(User).set({ name: "Ann2" }).where(U("id").eq(1)).exec()
            const renamed = yield* withPosts.getMulti()
            assert.strictEqual(renamed[0]?.name, "Ann2")
            assert.strictEqual((yield* selects) - before, 3)
          })
        )

        it.effect("inside a transaction the cache is bypassed; the commit invalidates", () =>
          Effect.gen(function* () {
            yield* adults.getMulti()
            const before = yield* selects
            const inside = yield* Effect.gen(function* () {
              yield* Update.table(User).set({ age: 50 }).where(U("id").eq(2)).exec()
              const a = yield* adults.getMulti()
              const b = yield* adults.getMulti()
              return [a, b] as const
            }).pipe(Tx.run())
            assert.strictEqual((yield* selects) - before, 2)
            assert.strictEqual(inside[0].length, 3)
            const after = yield* adults.getMulti()
            assert.strictEqual(after.length, 3)
            assert.strictEqual((yield* selects) - before, 3)
          })
        )

        it.effect("a SELECT with a raw SQL fragment is not cached (its tables are unknown)", () =>
          Effect.gen(function* () {
            const before = yield* selects
            const raw = Select.from(User).where(Expr.raw<boolean>("age > ?", 1))
            yield* raw.getMulti()
            yield* raw.getMulti()
            assert.strictEqual((yield* selects) - before, 2)
          })
        )

        // Only MariaDB hands back a driver-made Date for a DATETIME column.
        if (db.dialect === "mysql") {
          it.effect("driver values (a DATETIME's Date) come back as they were", () =>
            Effect.gen(function* () {
              const before = yield* selects
              const first = yield* Select.from(Event).getMulti()
              const second = yield* Select.from(Event).getMulti()
              assert.strictEqual((yield* selects) - before, 1)
              assert.instanceOf(second[0]?.at, Date)
              assert.strictEqual(second[0]?.at.getTime(), first[0]?.at.getTime())
            })
          )
        }

        it.effect("a raw write whose tables cannot be named invalidates the whole database", () =>
          Effect.gen(function* () {
            yield* adults.getMulti()
            const before = yield* selects
            yield* Raw.query(`/* cleanup */ DROP TABLE IF EXISTS ${posts}_never_created`).exec()
            yield* adults.getMulti()
            assert.strictEqual((yield* selects) - before, 1)
          })
        )

        it.effect("a change event from elsewhere (the ChangeFeed alone) invalidates too", () =>
          Effect.gen(function* () {
            yield* adults.getMulti()
            const before = yield* selects
            const ex = yield* Executor.Executor
            const feed = yield* ChangeFeed.ChangeFeed
            yield* feed.publish({
              database: ex.session.label,
              table: users,
              type: "UPDATE",
              primaryKeys: undefined,
              rowsAffected: 1
            })
            yield* Effect.repeat(adults.getMulti(), {
              until: () => Effect.map(selects, (n) => n > before),
              times: 1000
            })
            assert.strictEqual((yield* selects) - before, 1)
            const hits = yield* Metric.value(Metric.tagged(M.hits, "cache", "query"))
            assert.isAtLeast(hits.count, 1)
          })
        )
      })
    })
  }
}
