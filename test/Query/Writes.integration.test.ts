/**
 * One integration suite for writes, raw SQL, joins and subqueries, run on SQLite, MariaDB and
 * PostgreSQL: real tables, real rows, the counts and ids each database reports.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import { describe, expect, layer } from "@effect/vitest"
import { Effect, Either, FiberRef, Layer, Option, Schema } from "effect"
import * as Batch from "../../src/Query/Batch.js"
import * as Delete from "../../src/Query/Delete.js"
import * as Executor from "../../src/Query/Executor.js"
import * as Expr from "../../src/Query/Expr.js"
import * as Insert from "../../src/Query/Insert.js"
import * as Raw from "../../src/Query/Raw.js"
import * as Select from "../../src/Query/Select.js"
import * as Update from "../../src/Query/Update.js"
import * as Entity from "../../src/Schema/Entity.js"
import { autoIdColumn, testDatabases, uniqueName } from "../support/databases.js"

const usersTable = uniqueName("writes_users")
const postsTable = uniqueName("writes_posts")
const itemsTable = uniqueName("writes_items")

class User extends Schema.Class<User>("User")(
  {
    id: Schema.Number.pipe(Entity.generated),
    email: Schema.String,
    name: Schema.String,
    age: Schema.Number,
    /** Stored as text: inserts and updates must bind the encoded (ISO) form. */
    joinedAt: Schema.Date,
    nick: Schema.optional(Schema.String)
  },
  Entity.table(usersTable)
) {}

class Post extends Schema.Class<Post>("Post")(
  {
    id: Schema.Number.pipe(Entity.generated),
    userId: Schema.Number,
    title: Schema.String,
    likes: Schema.Number
  },
  Entity.table(postsTable)
) {}

/** Five inserted columns per row, and a unique code to make a row fail on purpose. */
class Item extends Schema.Class<Item>("Item")(
  {
    id: Schema.Number.pipe(Entity.generated),
    code: Schema.String,
    a: Schema.Number,
    b: Schema.Number,
    c: Schema.String,
    /** Stored as INT on MariaDB and SQLite (read back as 0/1), BOOLEAN on PostgreSQL. */
    d: Schema.BooleanFromUnknown
  },
  Entity.table(itemsTable)
) {}

const user = (email: string, age: number, extra: Partial<User> = {}) =>
  new User({
    id: 0,
    email,
    name: email.split("@")[0] ?? email,
    age,
    joinedAt: new Date(Date.UTC(2024, 0, age)),
    ...extra
  })

const item = (i: number) => new Item({ id: 0, code: `c${i}`, a: i, b: i * 2, c: `row ${i}`, d: i % 2 === 0 })

const countItems = Select.from(Item)
  .select({ n: Expr.count() }, Schema.Struct({ n: Schema.Number }))
  .get()
  .pipe(Effect.map((r) => r.n))

const session = Effect.map(Executor.Executor, (ex) => ex.session)

for (const db of testDatabases()) {
  const fixtures = Layer.scopedDiscard(
    Effect.acquireRelease(
      Effect.gen(function* () {
        const sql = yield* SqlClient.SqlClient
        const bool = db.dialect === "pg" ? "BOOLEAN" : "INT"
        yield* sql.unsafe(
          `CREATE TABLE ${usersTable} (id ${autoIdColumn(db.dialect)}, email VARCHAR(100) NOT NULL UNIQUE, ` +
            `name VARCHAR(50) NOT NULL, age INT NOT NULL, joined_at VARCHAR(40) NOT NULL, nick VARCHAR(50) DEFAULT 'anon')`
        )
        yield* sql.unsafe(
          `CREATE TABLE ${postsTable} (id ${autoIdColumn(db.dialect)}, user_id INT NOT NULL, ` +
            `title VARCHAR(100) NOT NULL, likes INT NOT NULL)`
        )
        yield* sql.unsafe(
          `CREATE TABLE ${itemsTable} (id ${autoIdColumn(db.dialect)}, code VARCHAR(20) NOT NULL UNIQUE, ` +
            `a INT NOT NULL, b INT NOT NULL, c VARCHAR(40) NOT NULL, d ${bool} NOT NULL)`
        )
      }),
      () =>
        Effect.flatMap(SqlClient.SqlClient, (sql) =>
          Effect.all([usersTable, postsTable, itemsTable].map((t) => sql.unsafe(`DROP TABLE ${t}`)))
        ).pipe(Effect.orDie)
    )
  )

  const reset = Effect.all([Delete.from(User).exec(), Delete.from(Post).exec(), Delete.from(Item).exec()])

  describe.skipIf(!db.available)(`${db.label}: writes`, () => {
    layer(Layer.provideMerge(fixtures, db.layer), { timeout: "120 seconds" })((it) => {
      it.effect("insert one reports one row and the generated id; a Date field round-trips as text", () =>
        Effect.gen(function* () {
          yield* reset
          const result = yield* Insert.into(User).values(user("ann@x.io", 30)).exec()
          const ann = yield* Select.from(User)
            .where((u) => u.email.eq("ann@x.io"))
            .get()
          expect(result).toEqual({ rowsAffected: 1, lastInsertId: ann.id })
          expect(ann.joinedAt).toEqual(new Date(Date.UTC(2024, 0, 30)))
          // The column's default applies because the row left `nick` out.
          expect(ann.nick).toBe("anon")
        })
      )

      it.effect("insert many reports every row and the id of the first one", () =>
        Effect.gen(function* () {
          yield* reset
          const result = yield* Insert.into(User)
            .values([user("a@x.io", 1), user("b@x.io", 2), user("c@x.io", 3)])
            .exec()
          const rows = yield* Select.from(User).orderBy("id").getMulti()
          expect(rows.map((u) => u.email)).toEqual(["a@x.io", "b@x.io", "c@x.io"])
          expect(result).toEqual({ rowsAffected: 3, lastInsertId: rows[0]?.id })
        })
      )

      it.effect("rows that give an optional field and rows that do not are both written as given", () =>
        Effect.gen(function* () {
          yield* reset
          const result = yield* Insert.into(User)
            .values([user("a@x.io", 1), user("b@x.io", 2, { nick: "bee" }), user("c@x.io", 3)])
            .exec()
          const rows = yield* Select.from(User).orderBy("id").getMulti()
          expect(rows.map((u) => u.nick)).toEqual(["anon", "bee", "anon"])
          expect(result).toEqual({ rowsAffected: 3, lastInsertId: rows[0]?.id })
        })
      )

      it.effect("a row that gives its generated key keeps it, and no id is reported", () =>
        Effect.gen(function* () {
          yield* reset
          const result = yield* Insert.into(User)
            .values(user("k@x.io", 5, { id: 9001 }))
            .exec()
          expect(result).toEqual({ rowsAffected: 1, lastInsertId: undefined })
          const k = yield* Select.from(User)
            .where((u) => u.id.eq(9001))
            .get()
          expect(k.email).toBe("k@x.io")
        })
      )

      it.effect(
        "a batch of 20,000 rows x 5 columns is split under the parameter limit and fully written",
        () =>
          Effect.gen(function* () {
            yield* reset
            const batch = Insert.into(Item).values(Array.from({ length: 20_000 }, (_, i) => item(i)))
            const statements = Either.getOrThrow(batch.compileAll((yield* session).dialect))
            expect(statements.length).toBe(db.dialect === "sqlite" ? 4 : 2)
            const seen: Array<string> = []
            const result = yield* batch.exec().pipe(
              Executor.withMiddleware(
                (next) => (ctx) =>
                  Effect.zipRight(
                    Effect.sync(() => seen.push(ctx.type)),
                    next(ctx)
                  )
              )
            )
            expect(seen).toEqual(statements.map(() => "INSERT"))
            const first = yield* Select.from(Item).orderBy("id").get()
            expect(result).toEqual({ rowsAffected: 20_000, lastInsertId: first.id })
            expect(yield* countItems).toBe(20_000)
            const last = yield* Select.from(Item)
              .where((i) => i.code.eq("c19999"))
              .get()
            expect(last).toMatchObject({ a: 19_999, b: 39_998, c: "row 19999", d: false })
          })
      )

      it.effect("a failing row in the middle of a split batch leaves no row of that batch behind", () =>
        Effect.gen(function* () {
          yield* reset
          yield* Insert.into(Item).values(item(-1)).exec()
          // Row 15,000 repeats the code of the row already there: a unique violation in a later statement.
          const rows = Array.from({ length: 20_000 }, (_, i) => (i === 15_000 ? item(-1) : item(i)))
          const error = yield* Effect.flip(Insert.into(Item).values(rows).exec())
          expect(error).toMatchObject({ _tag: "DatabaseError", reason: "unique" })
          expect(yield* countItems).toBe(1)
        })
      )

      it.effect("a split batch inside the caller's transaction joins it and rolls back with it", () =>
        Effect.gen(function* () {
          yield* reset
          const s = yield* session
          const work = Effect.zipRight(
            Insert.into(Item)
              .values(Array.from({ length: 20_000 }, (_, i) => item(i)))
              .exec(),
            Effect.fail("caller gives up" as const)
          )
          const error = yield* Effect.flip(Batch.transaction(s, work))
          expect(error).toBe("caller gives up")
          expect(yield* countItems).toBe(0)
        })
      )

      it.effect("after-commit hooks of a batch transaction run once it committed, on the pool", () =>
        Effect.gen(function* () {
          yield* reset
          const s = yield* session
          const ex = yield* Executor.Executor
          const seen: Array<number> = []
          yield* Batch.transaction(
            s,
            Effect.gen(function* () {
              yield* Insert.into(Item).values(item(1)).exec()
              const state = yield* FiberRef.get(s.transaction)
              if (Option.isSome(state)) {
                const count = Effect.flatMap(countItems, (n) => Effect.sync(() => seen.push(n))).pipe(
                  Effect.provideService(Executor.Executor, ex)
                )
                yield* state.value.afterCommit(Effect.orDie(Effect.asVoid(count)))
              }
              expect(seen).toEqual([])
            })
          )
          expect(seen).toEqual([1])
        })
      )

      it.effect("upsert takes chosen columns from the new row, or expressions of both rows", () =>
        Effect.gen(function* () {
          yield* reset
          yield* Insert.into(User)
            .values([user("a@x.io", 10), user("b@x.io", 20)])
            .exec()
          yield* Insert.into(User)
            .values([user("a@x.io", 11, { name: "Ann" }), user("n@x.io", 1)])
            .onConflictDoUpdate({ target: ["email"], set: ["name"] })
            .exec()
          yield* Insert.into(User)
            .values(user("b@x.io", 5))
            .onConflictDoUpdate({
              target: ["email"],
              set: (excluded, current) => ({ age: current.age.add(excluded.age) })
            })
            .exec()
          const rows = yield* Select.from(User).orderBy("email").getMulti()
          expect(rows.map((u) => [u.email, u.name, u.age])).toEqual([
            ["a@x.io", "Ann", 10],
            ["b@x.io", "b", 25],
            ["n@x.io", "n", 1]
          ])
        })
      )

      it.effect("upsert without a set updates every inserted column but the key and the target", () =>
        Effect.gen(function* () {
          yield* reset
          yield* Insert.into(User).values(user("a@x.io", 10)).exec()
          const before = yield* Select.from(User).get()
          yield* Insert.into(User)
            .values(user("a@x.io", 44, { name: "Changed" }))
            .onConflictDoUpdate({ target: ["email"] })
            .exec()
          const after = yield* Select.from(User).get()
          expect([after.id, after.name, after.age]).toEqual([before.id, "Changed", 44])
        })
      )

      it.effect("do-nothing skips colliding rows; the counts are the documented ones", () =>
        Effect.gen(function* () {
          yield* reset
          yield* Insert.into(User).values(user("a@x.io", 10)).exec()
          const result = yield* Insert.into(User)
            .values([user("a@x.io", 99), user("z@x.io", 2)])
            .onConflictDoNothing()
            .exec()
          // MySQL/MariaDB (FOUND_ROWS) count the untouched duplicate too.
          expect(result).toEqual({ rowsAffected: db.dialect === "mysql" ? 2 : 1, lastInsertId: undefined })
          const rows = yield* Select.from(User).orderBy("email").getMulti()
          expect(rows.map((u) => [u.email, u.age])).toEqual([
            ["a@x.io", 10],
            ["z@x.io", 2]
          ])
        })
      )

      it.effect("do-nothing with RETURNING returns only the rows it inserted, never a conflicting one", () =>
        Effect.gen(function* () {
          yield* reset
          yield* Insert.into(User).values(user("a@x.io", 10)).exec()
          const rows = yield* Insert.into(User)
            .values([user("b@x.io", 1), user("a@x.io", 99), user("c@x.io", 3), user("a@x.io", 98)])
            .onConflictDoNothing()
            .returning("email", "age")
            .getMulti()
          expect(rows.map((u) => [u.email, u.age])).toEqual([
            ["b@x.io", 1],
            ["c@x.io", 3]
          ])
          const none = yield* Effect.flip(
            Insert.into(User).values(user("a@x.io", 7)).onConflictDoNothing().returning().get()
          )
          expect(none).toMatchObject({ _tag: "NoRowsError" })
          const stored = yield* Select.from(User).orderBy("email").getMulti()
          expect(stored.map((u) => [u.email, u.age])).toEqual([
            ["a@x.io", 10],
            ["b@x.io", 1],
            ["c@x.io", 3]
          ])
        })
      )

      it.effect("insert returning yields the written rows with their generated keys", () =>
        Effect.gen(function* () {
          yield* reset
          const rows = yield* Insert.into(User)
            .values([user("a@x.io", 1), user("b@x.io", 2)])
            .returning()
            .getMulti()
          const stored = yield* Select.from(User).orderBy("id").getMulti()
          expect(rows.map((u) => [u.id, u.email, u.joinedAt])).toEqual(
            stored.map((u) => [u.id, u.email, u.joinedAt])
          )
          expect(rows[0]).toBeInstanceOf(User)
          const picked = yield* Insert.into(User).values(user("c@x.io", 3)).returning("email").get()
          expect(picked).toEqual({ email: "c@x.io" })
          const exec = yield* Insert.into(User).values(user("d@x.io", 4)).returning("email").exec()
          const d = yield* Select.from(User)
            .where((u) => u.email.eq("d@x.io"))
            .get()
          expect(exec).toEqual({ rowsAffected: 1, lastInsertId: d.id })
        })
      )

      it.effect("update by expression counts the matched rows", () =>
        Effect.gen(function* () {
          yield* reset
          yield* Insert.into(User)
            .values([user("a@x.io", 10), user("b@x.io", 20), user("c@x.io", 30)])
            .exec()
          const result = yield* Update.table(User)
            .set((u) => ({ age: u.age.add(1) }))
            .where((u) => u.age.lt(25))
            .exec()
          expect(result).toEqual({ rowsAffected: 2, lastInsertId: undefined })
          // Matched but unchanged rows count too, on every dialect.
          const same = yield* Update.table(User)
            .set({ name: "c" })
            .where((u) => u.email.eq("c@x.io"))
            .exec()
          expect(same.rowsAffected).toBe(1)
          const rows = yield* Select.from(User).orderBy("email").columns("age").getMulti()
          expect(rows.map((r) => r.age)).toEqual([11, 21, 30])
        })
      )

      it.effect("partial update skips undefined, writes null as NULL and encodes dates", () =>
        Effect.gen(function* () {
          yield* reset
          yield* Insert.into(User)
            .values(user("a@x.io", 10, { nick: "ace" }))
            .exec()
          const a = yield* Select.from(User).get()
          const patch: Update.Patch<User> = {
            id: a.id,
            name: "Ann",
            age: undefined,
            joinedAt: new Date(Date.UTC(2030, 5, 1))
          }
          yield* Update.table(User)
            .setPartial(patch)
            .where((u) => u.id.eq(a.id))
            .exec()
          yield* Update.table(User)
            .setPartial({ nick: null })
            .where((u) => u.id.eq(a.id))
            .exec()
          const after = yield* Select.from(User).get()
          expect(after).toMatchObject({
            id: a.id,
            name: "Ann",
            age: 10,
            joinedAt: new Date(Date.UTC(2030, 5, 1))
          })
          expect(after.nick).toBeUndefined()
        })
      )

      it.effect("delete counts the deleted rows; returning yields them where the database has it", () =>
        Effect.gen(function* () {
          yield* reset
          yield* Insert.into(User)
            .values([user("a@x.io", 10), user("b@x.io", 20), user("c@x.io", 30)])
            .exec()
          const result = yield* Delete.from(User)
            .where((u) => u.age.gte(20))
            .exec()
          expect(result).toEqual({ rowsAffected: 2, lastInsertId: undefined })
          const gone = yield* Delete.from(User).returning("email").getMulti()
          expect(gone).toEqual([{ email: "a@x.io" }])
          expect(yield* Select.from(User).getMulti()).toEqual([])
        })
      )

      it.effect(
        "update returning yields the updated rows (MySQL/MariaDB: a typed error, nothing written)",
        () =>
          Effect.gen(function* () {
            yield* reset
            yield* Insert.into(User)
              .values([user("a@x.io", 10), user("b@x.io", 20)])
              .exec()
            const returning = Update.table(User)
              .set((u) => ({ age: u.age.mul(2) }))
              .where((u) => u.email.eq("b@x.io"))
              .returning("email", "age")
              .getMulti()
            if (db.dialect === "mysql") {
              expect(yield* Effect.flip(returning)).toMatchObject({ _tag: "QueryBuildError" })
              const ages = yield* Select.from(User).columns("age").orderBy("age").getMulti()
              expect(ages).toEqual([{ age: 10 }, { age: 20 }])
            } else {
              expect(yield* returning).toEqual([{ email: "b@x.io", age: 40 }])
            }
          })
      )

      it.effect(
        "raw get, getMulti and exec go through the Executor as RAW and decode through the schema",
        () =>
          Effect.gen(function* () {
            yield* reset
            yield* Insert.into(User)
              .values([user("a@x.io", 10), user("b@x.io", 20)])
              .exec()
            const types: Array<string> = []
            const spy = Executor.withMiddleware(
              (next) => (ctx) =>
                Effect.zipRight(
                  Effect.sync(() => types.push(ctx.type)),
                  next(ctx)
                )
            )
            const all = yield* Raw.query(
              User,
              `SELECT * FROM ${usersTable} WHERE age >= ? ORDER BY age`,
              [10]
            )
              .getMulti()
              .pipe(spy)
            expect(all.map((u) => u.email)).toEqual(["a@x.io", "b@x.io"])
            expect(all[0]).toBeInstanceOf(User)
            const b = yield* Raw.sql(
              User
            )`SELECT * FROM ${Raw.identifier(usersTable)} WHERE email = ${"b@x.io"}`
              .get()
              .pipe(spy)
            expect(b.joinedAt).toEqual(new Date(Date.UTC(2024, 0, 20)))
            // SUM is DECIMAL text on MariaDB, BIGINT text on PostgreSQL and a number on SQLite.
            const Total = Schema.Struct({ total: Schema.Union(Schema.Number, Schema.NumberFromString) })
            const total = yield* Raw.query(Total, `SELECT SUM(age) AS total FROM ${usersTable}`).get()
            expect(total).toEqual({ total: 30 })
            const exec =
              yield* Raw.sql`UPDATE ${Raw.identifier(usersTable)} SET age = age + ${1} WHERE age < ${15}`
                .exec()
                .pipe(spy)
            expect(exec.rowsAffected).toBe(1)
            const none = yield* Effect.flip(
              Raw.query(User, `SELECT * FROM ${usersTable} WHERE age > ?`, [99]).get()
            )
            expect(none).toMatchObject({ _tag: "NoRowsError", table: usersTable })
            expect(types).toEqual(["RAW", "RAW", "RAW"])
          })
      )

      it.effect("a hostile value stays a value", () =>
        Effect.gen(function* () {
          yield* reset
          const evil = `x'); DROP TABLE ${usersTable}; --`
          yield* Insert.into(User)
            .values(user("e@x.io", 1, { name: evil }))
            .exec()
          const back = yield* Raw.sql(
            User
          )`SELECT * FROM ${Raw.identifier(usersTable)} WHERE name = ${evil}`.get()
          expect(back.name).toBe(evil)
        })
      )

      describe("joins and subqueries", () => {
        const u = Expr.table(User, "u")
        const p = Expr.table(Post, "p")
        const seed = Effect.gen(function* () {
          yield* reset
          yield* Insert.into(User)
            .values([user("a@x.io", 10), user("b@x.io", 20), user("c@x.io", 30)])
            .exec()
          const ids = new Map((yield* Select.from(User).getMulti()).map((x) => [x.email, x.id]))
          const id = (email: string) => ids.get(email) ?? -1
          yield* Insert.into(Post)
            .values([
              new Post({ id: 0, userId: id("a@x.io"), title: "a1", likes: 5 }),
              new Post({ id: 0, userId: id("a@x.io"), title: "a2", likes: 7 }),
              new Post({ id: 0, userId: id("b@x.io"), title: "b1", likes: 1 })
            ])
            .exec()
        })

        it.effect("inner and left joins decode into a projection over both tables", () =>
          Effect.gen(function* () {
            yield* seed
            const Row = Schema.Struct({ email: Schema.String, title: Schema.NullOr(Schema.String) })
            const inner = yield* Select.from(User, "u")
              .join(Post, "p", p.userId.eq(u.id))
              .select({ email: u.email, title: p.title }, Row)
              .orderBy(() => p.title)
              .getMulti()
            expect(inner).toEqual([
              { email: "a@x.io", title: "a1" },
              { email: "a@x.io", title: "a2" },
              { email: "b@x.io", title: "b1" }
            ])
            const left = yield* Select.from(User, "u")
              .leftJoin(Post, "p", (post, usr) => post.userId.eq(usr.id))
              .where(p.title.isNull())
              .select({ email: u.email, title: p.title }, Row)
              .getMulti()
            expect(left).toEqual([{ email: "c@x.io", title: null }])
          })
        )

        it.effect("a join with group by, having, order by, limit and offset in the right order", () =>
          Effect.gen(function* () {
            yield* seed
            const rows = yield* Select.from(User, "u")
              .join(Post, "p", p.userId.eq(u.id))
              .select(
                { email: u.email, n: Expr.count(), likes: Expr.sum(p.likes) },
                Schema.Struct({ email: Schema.String, n: Schema.Number, likes: Schema.Number })
              )
              .groupBy(() => u.email)
              .having(Expr.count().gte(1))
              .orderBy(() => u.email, "desc")
              .limit(1)
              .offset(1)
              .getMulti()
            expect(rows).toEqual([{ email: "a@x.io", n: 2, likes: 12 }])
          })
        )

        it.effect("in(subquery), exists and a scalar count subquery", () =>
          Effect.gen(function* () {
            yield* seed
            const posters = yield* Select.from(User)
              .where((x) =>
                x.id.in(
                  Select.from(Post)
                    .columns("userId")
                    .where((post) => post.likes.gt(3))
                )
              )
              .columns("email")
              .getMulti()
            expect(posters).toEqual([{ email: "a@x.io" }])
            const silent = yield* Select.from(User, "u")
              .where(Expr.notExists(Select.from(Post, "p").where(p.userId.eq(u.id))))
              .columns("email")
              .getMulti()
            expect(silent).toEqual([{ email: "c@x.io" }])
            const counts = yield* Select.from(User, "u")
              .select(
                {
                  email: u.email,
                  posts: Expr.scalar(
                    Select.from(Post, "p")
                      .select({ n: Expr.count() }, Schema.Struct({ n: Schema.Number }))
                      .where(p.userId.eq(u.id))
                  )
                },
                Schema.Struct({ email: Schema.String, posts: Schema.Number })
              )
              .orderBy("email")
              .getMulti()
            expect(counts.map((r) => r.posts)).toEqual([2, 1, 0])
          })
        )

        it.effect("a derived table, read on its own and joined", () =>
          Effect.gen(function* () {
            yield* seed
            const totals = Select.from(Post)
              .select(
                (post) => ({ uid: post.userId, total: Expr.sum(post.likes) }),
                Schema.Struct({ uid: Schema.Number, total: Schema.Number })
              )
              .groupBy("userId")
              .as("t")
            const big = yield* Select.from(totals)
              .where((t) => t.total.gt(5))
              .getMulti()
            expect(big.map((r) => r.total)).toEqual([12])
            const t = totals.columns
            const named = yield* Select.from(User, "u")
              .join(totals, (tt) => tt.uid.eq(u.id))
              .select({ email: u.email }, Schema.Struct({ email: Schema.String }))
              .orderBy(() => t.total, "desc")
              .getMulti()
            expect(named).toEqual([{ email: "a@x.io" }, { email: "b@x.io" }])
          })
        )

        it.effect(
          db.dialect === "sqlite" ? "ANY/ALL fail with QueryBuildError on SQLite" : "ANY and ALL subqueries",
          () =>
            Effect.gen(function* () {
              yield* seed
              const ages = Select.from(User, "x")
                .columns("age")
                .where((x) => x.email.neq("c@x.io"))
              const older = Select.from(User)
                .where((x) => x.age.gt(Expr.all(ages)))
                .columns("email")
              const some = Select.from(User)
                .where((x) => x.age.gt(Expr.any(ages)))
                .columns("email")
                .orderBy("email")
              if (db.dialect === "sqlite") {
                expect(yield* Effect.flip(older.getMulti())).toMatchObject({ _tag: "QueryBuildError" })
                return
              }
              expect(yield* older.getMulti()).toEqual([{ email: "c@x.io" }])
              expect(yield* some.getMulti()).toEqual([{ email: "b@x.io" }, { email: "c@x.io" }])
            })
        )
      })
    })
  })
}
