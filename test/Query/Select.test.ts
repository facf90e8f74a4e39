import { describe, expect, it } from "@effect/vitest"
import { Schema } from "effect"
import * as Dialect from "../../src/Query/Dialect.js"
import * as Expr from "../../src/Query/Expr.js"
import * as Select from "../../src/Query/Select.js"
import * as EntityRegistry from "../../src/Schema/EntityRegistry.js"
import { compileError, expectSql, portable } from "../support/compile.js"

class User extends Schema.Class<User>("User")({
  id: Schema.Number,
  firstName: Schema.String,
  lastName: Schema.String,
  email: Schema.NullOr(Schema.String),
  age: Schema.Number,
  createdAt: Schema.Date
}) {}

const C = Expr.columns(User)
const ALL = `"id", "first_name", "last_name", "email", "age", "created_at"`
const base = `SELECT ${ALL} FROM "user"`
const where = (predicate: Expr.Predicate) => Select.from(User).where(predicate)

describe("Select compiles to exact SQL and parameters on every dialect", () => {
  it("every mapped column in metadata order, never *", () => {
    expectSql(Select.from(User), portable(base, []))
  })

  it.each([
    ["eq", C("age").eq(18), `"age" = ?`, [18]],
    ["neq", C("age").neq(18), `"age" <> ?`, [18]],
    ["lt", C("age").lt(18), `"age" < ?`, [18]],
    ["lte", C("age").lte(18), `"age" <= ?`, [18]],
    ["gt", C("age").gt(18), `"age" > ?`, [18]],
    ["gte", C("age").gte(18), `"age" >= ?`, [18]],
    ["like", C("firstName").like("A%"), `"first_name" LIKE ?`, ["A%"]],
    ["notLike", C("firstName").notLike("%z"), `"first_name" NOT LIKE ?`, ["%z"]],
    ["in", C("id").in([1, 2, 3]), `"id" IN (?, ?, ?)`, [1, 2, 3]],
    ["notIn", C("id").notIn([4, 5]), `"id" NOT IN (?, ?)`, [4, 5]],
    ["isNull", C("email").isNull(), `"email" IS NULL`, []],
    ["isNotNull", C("email").isNotNull(), `"email" IS NOT NULL`, []],
    ["eq null renders IS NULL", C("email").eq(null), `"email" IS NULL`, []],
    ["neq null renders IS NOT NULL", C("email").neq(null), `"email" IS NOT NULL`, []],
    ["between", C("age").between(18, 65), `"age" BETWEEN ? AND ?`, [18, 65]],
    [
      "and",
      Expr.and(C("age").gt(18), C("firstName").eq("Ann")),
      `"age" > ? AND "first_name" = ?`,
      [18, "Ann"]
    ],
    ["or", Expr.or(C("age").lt(18), C("age").gt(65)), `"age" < ? OR "age" > ?`, [18, 65]],
    ["not", Expr.not(C("age").eq(1)), `NOT ("age" = ?)`, [1]],
    [
      "nested or inside and gets parentheses",
      Expr.and(C("age").gt(1), Expr.or(C("id").eq(2), C("id").eq(3))),
      `"age" > ? AND ("id" = ? OR "id" = ?)`,
      [1, 2, 3]
    ],
    [
      "raw with bound arguments",
      Expr.raw<boolean>("LOWER(email) = ?", "a@b.c"),
      `(LOWER(email) = ?)`,
      ["a@b.c"]
    ],
    ["empty in is false", C("id").in([]), `1=0`, []],
    ["empty notIn is true", C("id").notIn([]), `1=1`, []],
    ["empty or is false", Expr.or(), `1=0`, []],
    ["empty and is true", Expr.and(), `1=1`, []],
    ["column compared with column", C("firstName").eq(C("lastName")), `"first_name" = "last_name"`, []],
    ["arithmetic", C("age").add(1).gt(20), `("age" + ?) > ?`, [1, 20]]
  ] as const)("%s", (_name, predicate, sql, params) => {
    expectSql(where(predicate), portable(`${base} WHERE ${sql}`, params))
  })

  it("values compared with a column are encoded through the field's schema", () => {
    const at = new Date("2026-01-02T03:04:05.000Z")
    expectSql(
      where(C("createdAt").gt(at)),
      portable(`${base} WHERE "created_at" > ?`, ["2026-01-02T03:04:05.000Z"])
    )
  })

  it("several where calls are joined with AND; the typed column callback works like C()", () => {
    const q = Select.from(User)
      .where((u) => u.age.gt(18))
      .where((u) => u.lastName.eq("Lee"))
    expectSql(q, portable(`${base} WHERE "age" > ? AND "last_name" = ?`, [18, "Lee"]))
  })

  it("chosen columns", () => {
    expectSql(
      Select.from(User).columns("id", "firstName"),
      portable(`SELECT "id", "first_name" FROM "user"`, [])
    )
  })

  it("aggregates with aliases", () => {
    const q = Select.from(User).select(
      (u) => ({
        n: Expr.count(),
        emails: Expr.count(u.email),
        ages: Expr.countDistinct(u.age),
        total: Expr.sum(u.age),
        mean: Expr.avg(u.age),
        youngest: Expr.min(u.age),
        oldest: Expr.max(u.age)
      }),
      Schema.Struct({})
    )
    expectSql(
      q,
      portable(
        `SELECT COUNT(*) AS "n", COUNT("email") AS "emails", COUNT(DISTINCT "age") AS "ages", SUM("age") AS "total", ` +
          `AVG("age") AS "mean", MIN("age") AS "youngest", MAX("age") AS "oldest" FROM "user"`,
        []
      )
    )
  })

  it("distinct", () => {
    expectSql(
      Select.from(User).columns("lastName").distinct(),
      portable(`SELECT DISTINCT "last_name" FROM "user"`, [])
    )
  })

  it("group by + having, clauses in the order every dialect requires", () => {
    const q = Select.from(User)
      .select(
        (u) => ({ age: u.age, n: Expr.count() }),
        Schema.Struct({ age: Schema.Number, n: Schema.Number })
      )
      .where((u) => u.age.gt(10))
      .orderBy((u) => u.age.desc())
      .having(Expr.count().gt(1))
      .groupBy("age")
      .limit(5)
      .offset(10)
    const mysql =
      "SELECT `age` AS `age`, COUNT(*) AS `n` FROM `user` WHERE `age` > ? GROUP BY `age` HAVING COUNT(*) > ? ORDER BY `age` DESC LIMIT ? OFFSET ?"
    const sqlite = `SELECT "age" AS "age", COUNT(*) AS "n" FROM "user" WHERE "age" > ? GROUP BY "age" HAVING COUNT(*) > ? ORDER BY "age" DESC LIMIT ? OFFSET ?`
    expectSql(q, {
      mysql: [mysql, [10, 1, 5, 10]],
      pg: [
        `SELECT "age" AS "age", COUNT(*) AS "n" FROM "user" WHERE "age" > $1 GROUP BY "age" HAVING COUNT(*) > $2 ORDER BY "age" DESC LIMIT $3 OFFSET $4`,
        [10, 1, 5, 10]
      ],
      sqlite: [sqlite, [10, 1, 5, 10]]
    })
  })

  it("order by several terms, by name and by expression", () => {
    const q = Select.from(User).orderBy("lastName").orderBy("age", "desc").orderBy(C("id").asc())
    expectSql(q, portable(`${base} ORDER BY "last_name" ASC, "age" DESC, "id" ASC`, []))
  })

  it("limit alone", () => {
    expectSql(Select.from(User).limit(3), portable(`${base} LIMIT ?`, [3]))
  })

  it("offset alone: MySQL needs a LIMIT, SQLite LIMIT -1, PostgreSQL neither", () => {
    expectSql(Select.from(User).offset(7), {
      mysql: [
        `SELECT ${ALL.replace(/"/g, "`")} FROM \`user\` LIMIT ? OFFSET ?`,
        [18_446_744_073_709_551_615n, 7]
      ],
      pg: [`${base} OFFSET $1`, [7]],
      sqlite: [`${base} LIMIT ? OFFSET ?`, [-1, 7]]
    })
  })

  it("raw expressions in the select list bind their arguments", () => {
    const q = Select.from(User).select(
      { tag: Expr.raw<string>("COALESCE(email, ?)", "none") },
      Schema.Struct({})
    )
    expectSql(q, portable(`SELECT COALESCE(email, ?) AS "tag" FROM "user"`, ["none"]))
  })

  it("an aliased table qualifies its columns", () => {
    const q = Select.from(User, "u")
      .columns("id")
      .where((u) => u.age.gt(1))
    expectSql(q, portable(`SELECT "u"."id" FROM "user" AS "u" WHERE "u"."age" > ?`, [1]))
  })

  it("SQLite binds booleans as 0/1; the others bind them as given", () => {
    const q = where(Expr.raw<boolean>("flag = ?", true))
    expectSql(q, {
      ...portable(`${base} WHERE (flag = ?)`, [true]),
      sqlite: [`${base} WHERE (flag = ?)`, [1]]
    })
  })

  it("identifiers are escaped by the dialect, values never reach the SQL text", () => {
    const Odd = Schema.Struct({ id: Schema.Number, 'we"ird`name': Schema.String }).annotations({
      identifier: "Odd"
    })
    const q = Select.from(Odd).where(Expr.columns(Odd)('we"ird`name').eq("'; DROP TABLE x; --"))
    expectSql(q, {
      mysql: ['SELECT `id`, `we"ird``name` FROM `odd` WHERE `we"ird``name` = ?', ["'; DROP TABLE x; --"]],
      pg: [`SELECT "id", "we""ird\`name" FROM "odd" WHERE "we""ird\`name" = $1`, ["'; DROP TABLE x; --"]],
      sqlite: [`SELECT "id", "we""ird\`name" FROM "odd" WHERE "we""ird\`name" = ?`, ["'; DROP TABLE x; --"]]
    })
  })

  it("a registry's overrides rename the table and columns", () => {
    const registry = EntityRegistry.make()
    registry.override(User, { table: "people", columns: { firstName: "given_name" } })
    const compiled = Select.from(User).columns("firstName").compile(Dialect.pg, registry)
    expect(compiled).toStrictEqual(
      expect.objectContaining({ right: { sql: `SELECT "given_name" FROM "people"`, params: [] } })
    )
  })
})

describe("a raw fragment is one operand wherever it is used", () => {
  const C = Expr.columns(User)
  it.each([
    [
      "beside another condition",
      Expr.and(Expr.raw("age = ? OR age = ?", 20, 40), C("firstName").eq("x")),
      `(age = ? OR age = ?) AND "first_name" = ?`,
      [20, 40, "x"]
    ],
    [
      "in arithmetic",
      C("age")
        .mul(Expr.raw("? + ?", 1, 1))
        .gt(3),
      `("age" * (? + ?)) > ?`,
      [1, 1, 3]
    ],
    ["negated", Expr.not(Expr.raw("a OR b")), `NOT ((a OR b))`, []],
    ["an atomic name stays bare", C("age").eq(Expr.raw("u.age")), `"age" = u.age`, []],
    ["a function call stays bare", C("email").eq(Expr.raw("LOWER(?)", "A")), `"email" = LOWER(?)`, ["A"]],
    [
      "a comparison as an operand",
      C("age")
        .gt(1)
        .eq(Expr.raw("?", true) as Expr.Expr<boolean>),
      `("age" > ?) = ?`,
      [1, true]
    ]
  ] as const)("%s", (_name, predicate, sql, params) => {
    const expected = portable(`${base} WHERE ${sql}`, params)
    // SQLite binds booleans as 0/1.
    expectSql(where(predicate as Expr.Predicate), {
      ...expected,
      sqlite: [expected.sqlite[0], params.map((p) => (p === true ? 1 : p))]
    })
  })
})

it("a ? in a raw fragment's string or comment is not a placeholder", () => {
  const q = where(Expr.raw("'?' = ? /* ? */", "?"))
  expectSql(q, {
    mysql: [`${base.replace(/"/g, "`")} WHERE ('?' = ? /* ? */)`, ["?"]],
    pg: [`${base} WHERE ('?' = $1 /* ? */)`, ["?"]],
    sqlite: [`${base} WHERE ('?' = ? /* ? */)`, ["?"]]
  })
})

describe("Select refuses bad input with a typed error", () => {
  it("a field name given at run time that the entity lacks", () => {
    const error = compileError(where(C.field("agee").eq(1)))
    expect(error._tag).toBe("UnknownFieldError")
    expect(error.message).toBe(`Unknown field "agee" on entity User`)
  })

  it("raw SQL whose placeholders do not match its arguments", () => {
    expect(compileError(where(Expr.raw("a = ? AND b = ?", 1))).message).toContain(
      "2 placeholder(s) but 1 argument(s)"
    )
  })

  it("a negative or fractional limit", () => {
    expect(compileError(Select.from(User).limit(-1)).message).toBe(
      "limit must be a non-negative integer, got -1"
    )
    expect(compileError(Select.from(User).offset(1.5)).message).toBe(
      "offset must be a non-negative integer, got 1.5"
    )
  })

  it("a value that does not encode through the field schema", () => {
    const error = compileError(where(C("createdAt").gt(new Date("invalid"))))
    expect(error._tag).toBe("QueryBuildError")
  })

  it("a schema that is not an entity", () => {
    const NoKey = Schema.Struct({ name: Schema.String }).annotations({ identifier: "NoKey" })
    expect(compileError(Select.from(NoKey))._tag).toBe("InvalidEntityError")
  })
})
