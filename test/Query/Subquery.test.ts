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
  likes: Schema.Number
}) {}

const u = Expr.table(User, "u")
const p = Expr.table(Post, "p")
const postAuthors = Select.from(Post).columns("userId")

describe("Subqueries compile to exact SQL on every dialect", () => {
  it("IN and NOT IN a one-column subquery", () => {
    expectSql(
      Select.from(User).where((x) => x.id.in(postAuthors.where((post) => post.likes.gt(5)))),
      portable(
        `SELECT "id", "name", "age" FROM "user" WHERE "id" IN (SELECT "user_id" FROM "post" WHERE "likes" > ?)`,
        [5]
      )
    )
    expectSql(
      Select.from(User).where((x) => x.id.notIn(postAuthors)),
      portable(`SELECT "id", "name", "age" FROM "user" WHERE "id" NOT IN (SELECT "user_id" FROM "post")`, [])
    )
  })

  it("a subquery used as a value must select one column", () => {
    expect(compileError(Select.from(User).where((x) => x.id.in(Select.from(Post))))).toMatchObject({
      _tag: "QueryBuildError"
    })
  })

  it("correlated EXISTS and NOT EXISTS reference the outer alias, qualified", () => {
    expectSql(
      Select.from(User, "u").where(
        Expr.exists(
          Select.from(Post)
            .columns("id")
            .where((post) => post.userId.eq(u.id))
        )
      ),
      portable(
        `SELECT "u"."id", "u"."name", "u"."age" FROM "user" AS "u" WHERE EXISTS (SELECT "id" FROM "post" WHERE "user_id" = "u"."id")`,
        []
      )
    )
    expectSql(
      Select.from(User, "u").where(Expr.notExists(Select.from(Post, "p").where(p.userId.eq(u.id)))),
      portable(
        `SELECT "u"."id", "u"."name", "u"."age" FROM "user" AS "u" WHERE NOT EXISTS (SELECT "p"."id", "p"."user_id", "p"."likes" FROM "post" AS "p" WHERE "p"."user_id" = "u"."id")`,
        []
      )
    )
  })

  it("ANY and ALL on the right of a comparison (PostgreSQL, MySQL/MariaDB)", () => {
    const all = Select.from(User).where((x) =>
      x.age.gt(
        Expr.all(
          Select.from(User, "o")
            .columns("age")
            .where((o) => o.id.lt(9))
        )
      )
    )
    const sql = `SELECT "id", "name", "age" FROM "user" WHERE "age" > ALL (SELECT "o"."age" FROM "user" AS "o" WHERE "o"."id" < ?)`
    const expected = portable(sql, [9])
    expect(Either.getOrThrow(all.compile(Dialect.mysql))).toMatchObject({
      sql: expected.mysql[0],
      params: [9]
    })
    expect(Either.getOrThrow(all.compile(Dialect.pg))).toMatchObject({ sql: expected.pg[0], params: [9] })
    const any = Select.from(User).where((x) => x.id.eq(Expr.any(postAuthors)))
    expect(Either.getOrThrow(any.compile(Dialect.pg)).sql).toBe(
      `SELECT "id", "name", "age" FROM "user" WHERE "id" = ANY (SELECT "user_id" FROM "post")`
    )
  })

  it("ANY/ALL is a QueryBuildError on SQLite and anywhere but the right of a comparison", () => {
    expect(
      compileError(
        Select.from(User).where((x) => x.id.eq(Expr.any(postAuthors))),
        Dialect.sqlite
      )
    ).toMatchObject({
      _tag: "QueryBuildError"
    })
    expect(
      compileError(
        Select.from(User).where((x) => x.id.add(Expr.any(postAuthors)).eq(1)),
        Dialect.pg
      )
    ).toMatchObject({ _tag: "QueryBuildError" })
  })

  it("a scalar subquery in the select list", () => {
    const q = Select.from(User, "u").select(
      {
        name: u.name,
        posts: Expr.scalar(
          Select.from(Post, "p")
            .select({ n: Expr.count() }, Schema.Struct({ n: Schema.Number }))
            .where(p.userId.eq(u.id))
        )
      },
      Schema.Struct({ name: Schema.String, posts: Schema.Number })
    )
    expectSql(
      q,
      portable(
        `SELECT "u"."name" AS "name", (SELECT COUNT(*) AS "n" FROM "post" AS "p" WHERE "p"."user_id" = "u"."id") AS "posts" FROM "user" AS "u"`,
        []
      )
    )
  })

  it("a derived table: its columns are named by the subquery, parameters in text order", () => {
    const totals = Select.from(Post)
      .select(
        (post) => ({ uid: post.userId, total: Expr.sum(post.likes) }),
        Schema.Struct({ uid: Schema.Number, total: Schema.Number })
      )
      .where((post) => post.likes.gt(1))
      .groupBy("userId")
      .as("t")
    const t = totals.columns
    const ok = Select.from(User, "u")
      .select(
        {
          name: u.name,
          total: t.total,
          top: Expr.scalar(
            Select.from(Post, "p")
              .select({ m: Expr.max(p.likes) }, Schema.Struct({ m: Schema.Number }))
              .where(p.id.gt(2))
          )
        },
        Schema.Struct({ name: Schema.String, total: Schema.Number, top: Schema.Number })
      )
      .join(totals, (tt, user) => tt.uid.eq(user.id))
      .where(t.total.gt(3))
    expectSql(
      ok,
      portable(
        `SELECT "u"."name" AS "name", "t"."total" AS "total", (SELECT MAX("p"."likes") AS "m" FROM "post" AS "p" WHERE "p"."id" > ?) AS "top" ` +
          `FROM "user" AS "u" INNER JOIN (SELECT "user_id" AS "uid", SUM("likes") AS "total" FROM "post" WHERE "likes" > ? GROUP BY "user_id") AS "t" ` +
          `ON "t"."uid" = "u"."id" WHERE "t"."total" > ?`,
        [2, 1, 3]
      )
    )
  })

  it("select from a derived table; entity columns keep their column names", () => {
    const adults = Select.from(User)
      .columns("id", "age")
      .where((x) => x.age.gte(18))
      .as("a")
    expectSql(
      Select.from(adults)
        .where((a) => a.age.lt(65))
        .orderBy("age"),
      portable(
        `SELECT "a"."id", "a"."age" FROM (SELECT "id", "age" FROM "user" WHERE "age" >= ?) AS "a" WHERE "a"."age" < ? ORDER BY "a"."age" ASC`,
        [18, 65]
      )
    )
  })

  it("a derived table whose columns are not all named is refused", () => {
    const unnamed = new Select.SelectBuilder(
      { ...Select.from(Post).node, selection: [{ expr: Expr.count().node, alias: undefined }] },
      Select.from(Post).decoder
    ).as("x")
    expect(compileError(Select.from(unnamed))).toMatchObject({ _tag: "QueryBuildError" })
  })
})
