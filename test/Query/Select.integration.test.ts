/**
 * One integration suite, run on SQLite, MariaDB and PostgreSQL: real tables, real rows.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import { describe, expect, layer } from "@effect/vitest"
import { Chunk, Effect, Layer, Runtime, Schema, Stream } from "effect"
import * as fc from "fast-check"
import type { Executor } from "../../src/Query/Executor.js"
import * as Expr from "../../src/Query/Expr.js"
import * as Select from "../../src/Query/Select.js"
import * as Entity from "../../src/Schema/Entity.js"
import { autoIdColumn, testDatabases, uniqueName } from "../support/databases.js"

const usersTable = uniqueName("select_users")
const textsTable = uniqueName("select_texts")

class User extends Schema.Class<User>("User")(
  {
    id: Schema.Number.pipe(Entity.generated),
    firstName: Schema.String,
    lastName: Schema.String,
    email: Schema.NullOr(Schema.String),
    age: Schema.Number
  },
  Entity.table(usersTable)
) {}

/** The same table, read with a schema that disagrees with it: age is not a string. */
const Misread = Schema.Struct({ id: Schema.Number, age: Schema.String }).annotations({
  identifier: "Misread",
  ...Entity.table(usersTable)
})

const Text = Schema.Struct({ id: Schema.Number, body: Schema.String }).annotations({
  identifier: "Text",
  ...Entity.table(textsTable)
})

const C = Expr.columns(User)

for (const db of testDatabases()) {
  const text = db.dialect === "mysql" ? "TEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin" : "TEXT"
  const fixtures = Layer.scopedDiscard(
    Effect.acquireRelease(
      Effect.gen(function* () {
        const sql = yield* SqlClient.SqlClient
        yield* sql.unsafe(
          `CREATE TABLE ${usersTable} (id ${autoIdColumn(db.dialect)}, first_name VARCHAR(50) NOT NULL, ` +
            `last_name VARCHAR(50) NOT NULL, email VARCHAR(100), age INT NOT NULL)`
        )
        yield* sql.unsafe(`CREATE TABLE ${textsTable} (id INT PRIMARY KEY, body ${text} NOT NULL)`)
        yield* sql.unsafe(
          `INSERT INTO ${usersTable} (first_name, last_name, email, age) VALUES ` +
            `('Ann', 'Lee', 'ann@example.com', 30), ('Bob', 'Lee', NULL, 20), ` +
            `('Cid', 'Moe', 'cid@example.com', 40), ('Dee', 'Moe', NULL, 40)`
        )
      }),
      () =>
        Effect.flatMap(SqlClient.SqlClient, (sql) =>
          Effect.all([sql.unsafe(`DROP TABLE ${usersTable}`), sql.unsafe(`DROP TABLE ${textsTable}`)])
        ).pipe(Effect.orDie)
    )
  )

  describe.skipIf(!db.available)(`${db.label}: Select`, () => {
    layer(Layer.provideMerge(fixtures, db.layer), { timeout: "30 seconds" })((it) => {
      it.effect("get returns the first row decoded into the entity class", () =>
        Effect.gen(function* () {
          const ann = yield* Select.from(User).where(C("firstName").eq("Ann")).get()
          expect(ann).toBeInstanceOf(User)
          expect(ann).toMatchObject({ firstName: "Ann", lastName: "Lee", email: "ann@example.com", age: 30 })
        })
      )

      it.effect("getMulti returns every matching row in order", () =>
        Effect.gen(function* () {
          const rows = yield* Select.from(User)
            .where((u) => Expr.or(u.age.gte(40), u.email.isNull()))
            .orderBy("firstName", "desc")
            .getMulti()
          expect(rows.map((u) => u.firstName)).toEqual(["Dee", "Cid", "Bob"])
        })
      )

      it.effect("get with no row fails with NoRowsError naming the table", () =>
        Effect.gen(function* () {
          const error = yield* Effect.flip(Select.from(User).where(C("age").gt(100)).get())
          expect(error).toMatchObject({ _tag: "NoRowsError", table: usersTable })
        })
      )

      it.effect("aggregates with group by and having decode as numbers on every dialect", () =>
        Effect.gen(function* () {
          const rows = yield* Select.from(User)
            .select(
              (u) => ({
                lastName: u.lastName,
                n: Expr.count(),
                emails: Expr.count(u.email),
                ages: Expr.countDistinct(u.age),
                total: Expr.sum(u.age),
                mean: Expr.avg(u.age),
                youngest: Expr.min(u.age),
                oldest: Expr.max(u.age)
              }),
              Schema.Struct({
                lastName: Schema.String,
                n: Schema.Number,
                emails: Schema.Number,
                ages: Schema.Number,
                total: Schema.Number,
                mean: Schema.Number,
                youngest: Schema.Number,
                oldest: Schema.Number
              })
            )
            .groupBy("lastName")
            .having(Expr.count().gt(1))
            .orderBy("lastName")
            .getMulti()
          expect(rows).toEqual([
            { lastName: "Lee", n: 2, emails: 1, ages: 2, total: 50, mean: 25, youngest: 20, oldest: 30 },
            { lastName: "Moe", n: 2, emails: 1, ages: 1, total: 80, mean: 40, youngest: 40, oldest: 40 }
          ])
        })
      )

      it.effect("order, limit and offset page through the rows", () =>
        Effect.gen(function* () {
          const page = (offset: number) =>
            Select.from(User)
              .columns("firstName")
              .orderBy("age")
              .orderBy("firstName")
              .limit(2)
              .offset(offset)
              .getMulti()
          expect(yield* page(0)).toEqual([{ firstName: "Bob" }, { firstName: "Ann" }])
          expect(yield* page(2)).toEqual([{ firstName: "Cid" }, { firstName: "Dee" }])
          expect(yield* page(4)).toEqual([])
          const skipped = yield* Select.from(User)
            .columns("firstName")
            .orderBy("firstName")
            .offset(3)
            .getMulti()
          expect(skipped).toEqual([{ firstName: "Dee" }])
        })
      )

      it.effect("distinct values", () =>
        Effect.gen(function* () {
          const names = yield* Select.from(User).columns("lastName").distinct().orderBy("lastName").getMulti()
          expect(names).toEqual([{ lastName: "Lee" }, { lastName: "Moe" }])
        })
      )

      it.effect("an unknown field named at run time fails with UnknownFieldError before any query", () =>
        Effect.gen(function* () {
          const error = yield* Effect.flip(Select.from(User).orderBy(C.field("shoeSize")).getMulti())
          expect(error).toMatchObject({ _tag: "UnknownFieldError", entity: "User", field: "shoeSize" })
        })
      )

      it.effect("a row that does not decode fails with DecodeError naming table and column", () =>
        Effect.gen(function* () {
          const error = yield* Effect.flip(Select.from(Misread).getMulti())
          expect(error).toMatchObject({ _tag: "DecodeError", table: usersTable, column: "age" })
        })
      )

      it.effect("stream yields every row", () =>
        Effect.gen(function* () {
          const ids = yield* Select.from(User)
            .orderBy("id")
            .stream()
            .pipe(
              Stream.map((u) => u.firstName),
              Stream.runCollect
            )
          expect(Chunk.toReadonlyArray(ids)).toEqual(["Ann", "Bob", "Cid", "Dee"])
        })
      )

      it.effect("arbitrary strings round-trip unchanged as bound values", () =>
        Effect.gen(function* () {
          const sql = yield* SqlClient.SqlClient
          const runtime = yield* Effect.runtime<Executor | SqlClient.SqlClient>()
          const hostile = fc.constantFrom(
            "'; DROP TABLE x; --",
            "\\",
            "\\'",
            "'",
            '"',
            "`",
            "?",
            "$1",
            "%_",
            "é漢字🙂"
          )
          // PostgreSQL text cannot hold NUL, so no dialect is asked to.
          const value = fc
            .oneof(hostile, fc.string({ unit: "grapheme", maxLength: 40 }))
            .filter((s) => !s.includes("\0"))
          let id = 0
          yield* Effect.promise(() =>
            fc.assert(
              fc.asyncProperty(value, (body) =>
                Runtime.runPromise(runtime)(
                  Effect.gen(function* () {
                    id++
                    const placeholders = db.dialect === "pg" ? "$1, $2" : "?, ?"
                    yield* sql.unsafe(`INSERT INTO ${textsTable} (id, body) VALUES (${placeholders})`, [
                      id,
                      body
                    ])
                    const byId = yield* Select.from(Text)
                      .where((t) => t.id.eq(id))
                      .get()
                    expect(byId.body).toBe(body)
                    const byValue = yield* Select.from(Text)
                      .where((t) => t.body.eq(body))
                      .columns("id")
                      .getMulti()
                    expect(byValue.map((r) => r.id)).toContain(id)
                  })
                )
              ),
              { numRuns: 150 }
            )
          )
        })
      )
    })
  })
}
