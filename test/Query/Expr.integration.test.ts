/**
 * Raw fragments as operands and numbers that stay exact, on SQLite, MariaDB and PostgreSQL.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import { describe, expect, layer } from "@effect/vitest"
import { Effect, Layer, Schema } from "effect"
import * as Expr from "../../src/Query/Expr.js"
import * as Raw from "../../src/Query/Raw.js"
import * as Select from "../../src/Query/Select.js"
import * as Update from "../../src/Query/Update.js"
import * as Entity from "../../src/Schema/Entity.js"
import { testDatabases, uniqueName } from "../support/databases.js"

const people = uniqueName("expr_people")
const big = uniqueName("expr_big")

class Person extends Schema.Class<Person>("Person")(
  { id: Schema.Number, name: Schema.String, age: Schema.Number, visits: Schema.Number },
  Entity.table(people)
) {}

/** A BIGINT read on every dialect: digits (PostgreSQL always, the others past 2^53) or a safe number. */
const BigIntColumn = Schema.Union(Schema.BigInt, Schema.BigIntFromNumber)

const Big = Schema.Struct({ id: Schema.Number, n: BigIntColumn }).annotations({
  identifier: "Big",
  ...Entity.table(big)
})
const BigAsNumber = Schema.Struct({ id: Schema.Number, n: Schema.Number }).annotations({
  identifier: "BigAsNumber",
  ...Entity.table(big)
})

const P = Expr.columns(Person)
const overSafe = "9007199254740993" // 2^53 + 1

for (const db of testDatabases()) {
  const fixtures = Layer.scopedDiscard(
    Effect.acquireRelease(
      Effect.gen(function* () {
        const sql = yield* SqlClient.SqlClient
        yield* sql.unsafe(
          `CREATE TABLE ${people} (id INT PRIMARY KEY, name VARCHAR(20) NOT NULL, age INT NOT NULL, visits INT NOT NULL)`
        )
        yield* sql.unsafe(
          `INSERT INTO ${people} VALUES (1, 'ann', 20, 1), (2, 'bob', 40, 2), (3, 'cid', 40, 3), (4, 'dee', 30, 4)`
        )
        yield* sql.unsafe(`CREATE TABLE ${big} (id INT PRIMARY KEY, n BIGINT NOT NULL)`)
        yield* sql.unsafe(`INSERT INTO ${big} VALUES (1, 9007199254740992), (2, 1), (3, ${overSafe})`)
      }),
      () =>
        Effect.orDie(
          Effect.flatMap(SqlClient.SqlClient, (sql) =>
            Effect.all([sql.unsafe(`DROP TABLE ${people}`), sql.unsafe(`DROP TABLE ${big}`)])
          )
        )
    )
  )

  describe.skipIf(!db.available)(`${db.label}: raw operands and exact numbers`, () => {
    layer(Layer.provideMerge(fixtures, db.layer), { timeout: "30 seconds" })((it) => {
      it.effect("a raw OR beside another where keeps its meaning", () =>
        Effect.gen(function* () {
          const rows = yield* Select.from(Person)
            .where(Expr.raw("age = ? OR age = ?", 20, 40))
            .where(P("name").neq("bob"))
            .orderBy("id")
            .getMulti()
          expect(rows.map((p) => p.name)).toEqual(["ann", "cid"])
          const negated = yield* Select.from(Person)
            .where(Expr.not(Expr.raw("age = ? OR age = ?", 20, 40)))
            .getMulti()
          expect(negated.map((p) => p.name)).toEqual(["dee"])
        })
      )

      it.effect("raw arithmetic is one operand: visits * (1 + 1), not visits * 1 + 1", () =>
        Effect.gen(function* () {
          yield* Update.table(Person)
            // PostgreSQL cannot type `$1 + $2` alone: the fragment casts there.
            .set((p) => ({
              visits: p.visits.mul(Expr.raw(db.dialect === "pg" ? "?::int + ?::int" : "? + ?", 1, 1))
            }))
            .where((p) => p.id.eq(4))
            .exec()
          const dee = yield* Select.from(Person).where(P("id").eq(4)).get()
          expect(dee.visits).toBe(8)
          yield* Update.table(Person)
            .set({ visits: 4 })
            .where((p) => p.id.eq(4))
            .exec()
          const doubled = yield* Select.from(Person)
            .select(
              { v: Expr.raw<number>(db.dialect === "pg" ? "?::int - ?::int" : "? - ?", 10, 4).mul(2) },
              Schema.Struct({ v: Schema.Number })
            )
            .where(P("id").eq(1))
            .get()
          expect(doubled.v).toBe(12)
        })
      )

      it.effect("an aggregate read through a derived table, at any depth, decodes as a number", () =>
        Effect.gen(function* () {
          const totals = Select.from(Person)
            .groupBy("age")
            .select(
              (p) => ({ age: p.age, total: Expr.sum(p.visits), people: Expr.count() }),
              Schema.Struct({ age: Schema.Number, total: Schema.Number, people: Schema.Number })
            )
            .as("t")
          const t = totals.columns
          const outer = yield* Select.from(totals)
            .select(
              { age: t.age, total: t.total, more: t.total.add(1) },
              Schema.Struct({ age: Schema.Number, total: Schema.Number, more: Schema.Number })
            )
            .orderBy(t.age.asc())
            .getMulti()
          expect(outer).toEqual([
            { age: 20, total: 1, more: 2 },
            { age: 30, total: 4, more: 5 },
            { age: 40, total: 5, more: 6 }
          ])
          const picked = yield* Select.from(totals)
            .columns("total", "people")
            .orderBy(t.total.asc())
            .getMulti()
          expect(picked).toEqual([
            { total: 1, people: 1 },
            { total: 4, people: 1 },
            { total: 5, people: 2 }
          ])
          const u = Select.from(totals)
            .select({ total: t.total }, Schema.Struct({ total: Schema.Number }))
            .as("u")
          const deeper = yield* Select.from(u)
            .select({ top: Expr.max(u.columns.total) }, Schema.Struct({ top: Schema.Number }))
            .get()
          expect(deeper.top).toBe(5)
        })
      )

      it.effect("integers past 2^53 come back exact as bigint, or fail with DecodeError; never rounded", () =>
        Effect.gen(function* () {
          const rows = yield* Select.from(Big).orderBy("id").getMulti()
          expect(rows.map((r) => r.n)).toEqual([9007199254740992n, 1n, 9007199254740993n])
          const asNumber = yield* Effect.flip(
            Select.from(BigAsNumber).where(Expr.column("id").eq(3)).getMulti()
          )
          expect(asNumber).toMatchObject({ _tag: "DecodeError", column: "n" })
          const sum = yield* Effect.flip(
            Select.from(Big)
              .where((b) => b.id.in([1, 2]))
              .select((b) => ({ total: Expr.sum(b.n) }), Schema.Struct({ total: Schema.Number }))
              .get()
          )
          expect(sum).toMatchObject({ _tag: "DecodeError", column: "total" })
          const raw = yield* Raw.query(
            Schema.Struct({ n: BigIntColumn }),
            `SELECT n FROM ${big} WHERE id = ?`,
            [3]
          ).get()
          expect(raw.n).toBe(9007199254740993n)
        })
      )
    })
  })
}
