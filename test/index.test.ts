/**
 * The README's examples, through the public barrel (`src/index.ts`), on an in-memory SQLite.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer, Schema } from "effect"
import {
  Database,
  Delete,
  Entity,
  Executor,
  Expr,
  Insert,
  Metrics,
  Raw,
  SafeDml,
  Select,
  Tx,
  Update
} from "../src/index.js"

class User extends Schema.Class<User>("User")(
  {
    id: Schema.Number.pipe(Entity.generated),
    firstName: Schema.String,
    email: Schema.String.pipe(Entity.sensitive),
    age: Schema.Number
  },
  Entity.table("users")
) {}

const DatabaseLive = Layer.provide(
  Executor.layerMiddleware(Metrics.make, SafeDml.make),
  Database.layer({ url: "sqlite::memory:" })
)

const createTable = Raw.query(
  "CREATE TABLE users (id INTEGER PRIMARY KEY AUTOINCREMENT, first_name TEXT, email TEXT, age INTEGER)"
).exec()

describe("the README's examples", () => {
  it.effect("first screen: the adults query", () =>
    Effect.gen(function* () {
      yield* createTable
      yield* Insert.into(User)
        .values([
          new User({ id: 0, firstName: "Ann", email: "ann@example.com", age: 30 }),
          new User({ id: 0, firstName: "Bob", email: "bob@example.com", age: 12 }),
          new User({ id: 0, firstName: "Cid", email: "cid@elsewhere.org", age: 50 }),
          new User({ id: 0, firstName: "Dee", email: "dee@example.com", age: 70 })
        ])
        .exec()
      const adults = yield* Select.from(User)
        .where((u) => Expr.and(u.age.gte(18), u.email.like("%@example.com")))
        .orderBy("age", "desc")
        .limit(10)
        .getMulti()
      expect(adults.map((u) => u.firstName)).toEqual(["Dee", "Ann"])
    }).pipe(Effect.provide(DatabaseLive))
  )

  it.effect(
    "the tour: insert, a transaction, a grouped projection, and SafeDml refusing a DELETE without WHERE",
    () =>
      Effect.gen(function* () {
        yield* createTable
        const { lastInsertId } = yield* Insert.into(User)
          .values(new User({ id: 0, firstName: "Ann", email: "a@x.io", age: 30 }))
          .exec()
        yield* Insert.into(User)
          .values([
            new User({ id: 0, firstName: "Bob", email: "b@x.io", age: 31 }),
            new User({ id: 0, firstName: "Old", email: "o@x.io", age: 121 })
          ])
          .exec()
        yield* Tx.run(
          Effect.gen(function* () {
            yield* Update.table(User)
              .set((u) => ({ age: u.age.add(1) }))
              .where((u) => u.id.eq(Number(lastInsertId)))
              .exec()
            yield* Delete.from(User)
              .where((u) => u.age.gt(120))
              .exec()
          })
        )
        const groups = yield* Select.from(User)
          .select(
            (u) => ({ age: u.age, n: Expr.count() }),
            Schema.Struct({ age: Schema.Number, n: Schema.Number })
          )
          .groupBy("age")
          .having(Expr.count().gt(1))
          .getMulti()
        expect(groups).toEqual([{ age: 31, n: 2 }])
        const refused = yield* Effect.flip(Delete.from(User).exec())
        expect(refused).toMatchObject({ _tag: "UnsafeDmlError", type: "DELETE" })
        expect(yield* Select.from(User).getMulti()).toHaveLength(2)
      }).pipe(Effect.provide(DatabaseLive))
  )
})
