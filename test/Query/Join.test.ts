import { describe, expect, it } from "@effect/vitest"
import { Either, Schema } from "effect"
import * as Dialect from "../../src/Query/Dialect.js"
import * as Expr from "../../src/Query/Expr.js"
import * as Select from "../../src/Query/Select.js"
import { compileError, expectSql, portable } from "../support/compile.js"

class User extends Schema.Class<User>("User")({
  id: Schema.Number,
  name: Schema.String,
  age: Schema.Number
}) {}
class Post extends Schema.Class<Post>("Post")({
  id: Schema.Number,
  userId: Schema.Number,
  title: Schema.String,
  likes: Schema.Number
}) {}

const u = Expr.table(User, "u")
const p = Expr.table(Post, "p")
const Row = Schema.Struct({ name: Schema.String, title: Schema.String })

describe("Joins compile to exact SQL on every dialect", () => {
  it("inner join ON a predicate; columns qualified by alias; a projection over both tables", () => {
    expectSql(
      Select.from(User, "u")
        .join(Post, "p", p.userId.eq(u.id))
        .where(p.likes.gt(10))
        .select({ name: u.name, title: p.title }, Row),
      portable(
        `SELECT "u"."name" AS "name", "p"."title" AS "title" FROM "user" AS "u" INNER JOIN "post" AS "p" ON "p"."user_id" = "u"."id" WHERE "p"."likes" > ?`,
        [10]
      )
    )
  })

  it("left and right joins with ON as a function of the joined and the root columns", () => {
    expectSql(
      Select.from(User).leftJoin(Post, "p", (post, user) => post.userId.eq(user.id)),
      portable(
        `SELECT "user"."id", "user"."name", "user"."age" FROM "user" LEFT JOIN "post" AS "p" ON "p"."user_id" = "user"."id"`,
        []
      )
    )
    expectSql(
      Select.from(User, "u").rightJoin(Post, "p", (post, user) => post.userId.eq(user.id)),
      portable(
        `SELECT "u"."id", "u"."name", "u"."age" FROM "user" AS "u" RIGHT JOIN "post" AS "p" ON "p"."user_id" = "u"."id"`,
        []
      )
    )
  })

  it("USING names fields of the joined table", () => {
    expectSql(
      Select.from(Post, "a").join(Post, "b", Select.using("userId", "title")),
      portable(
        `SELECT "a"."id", "a"."user_id", "a"."title", "a"."likes" FROM "post" AS "a" INNER JOIN "post" AS "b" USING ("user_id", "title")`,
        []
      )
    )
  })

  it("a self join with two aliases", () => {
    const boss = Expr.table(User, "boss")
    const worker = Expr.table(User, "worker")
    expectSql(
      Select.from(User, "worker")
        .join(User, "boss", boss.id.eq(worker.age))
        .select({ name: worker.name, title: boss.name }, Row),
      portable(
        `SELECT "worker"."name" AS "name", "boss"."name" AS "title" FROM "user" AS "worker" INNER JOIN "user" AS "boss" ON "boss"."id" = "worker"."age"`,
        []
      )
    )
  })

  it("clauses in the right order with joins: WHERE, GROUP BY, HAVING, ORDER BY, LIMIT, OFFSET", () => {
    const q = Select.from(User, "u")
      .join(Post, "p", p.userId.eq(u.id))
      .select({ name: u.name, n: Expr.count() }, Schema.Struct({ name: Schema.String, n: Schema.Number }))
      .where(p.likes.gt(1))
      .groupBy(() => u.name)
      .having(Expr.count().gt(2))
      .orderBy(() => u.name, "desc")
      .limit(10)
      .offset(20)
    const sql = `SELECT "u"."name" AS "name", COUNT(*) AS "n" FROM "user" AS "u" INNER JOIN "post" AS "p" ON "p"."user_id" = "u"."id" WHERE "p"."likes" > ? GROUP BY "u"."name" HAVING COUNT(*) > ? ORDER BY "u"."name" DESC LIMIT ? OFFSET ?`
    expectSql(q, portable(sql, [1, 2, 10, 20]))
  })

  it("a table joined twice without its own alias is refused", () => {
    expect(compileError(Select.from(User).join(User, "user", Select.using("id")))).toMatchObject({
      _tag: "QueryBuildError"
    })
  })

  it("an alias that is not in the query is refused", () => {
    const ghost = Expr.table(User, "ghost")
    expect(compileError(Select.from(User, "u").where(ghost.id.eq(1)))).toMatchObject({
      _tag: "QueryBuildError"
    })
  })

  it("an unknown field of a joined table is an UnknownFieldError", () => {
    const q = Select.from(User, "u").join(Post, "p", Expr.column("nope", "p").eq(u.id))
    expect(compileError(q)).toMatchObject({ _tag: "UnknownFieldError", field: "nope" })
  })

  it("queries on one table without alias stay unqualified", () => {
    expect(
      Either.getOrThrow(
        Select.from(User)
          .where((x) => x.age.gt(1))
          .compile(Dialect.sqlite)
      ).sql
    ).toBe(`SELECT "id", "name", "age" FROM "user" WHERE "age" > ?`)
  })
})
