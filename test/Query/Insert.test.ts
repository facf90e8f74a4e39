import { describe, expect, it } from "@effect/vitest"
import { Either, Schema } from "effect"
import * as Dialect from "../../src/Query/Dialect.js"
import * as Expr from "../../src/Query/Expr.js"
import * as Insert from "../../src/Query/Insert.js"
import * as Select from "../../src/Query/Select.js"
import { serverInfoOf } from "../../src/Query/Session.js"
import * as Entity from "../../src/Schema/Entity.js"
import * as EntityRegistry from "../../src/Schema/EntityRegistry.js"
import { compileError, expectSql, portable } from "../support/compile.js"

/** A natural key: no generated column, so every dialect writes the same statement. */
class Tag extends Schema.Class<Tag>("Tag")({
  name: Schema.String.pipe(Entity.primaryKey),
  uses: Schema.Number,
  createdAt: Schema.Date,
  note: Schema.optional(Schema.String),
  secret: Schema.String.pipe(Entity.sensitive),
  cached: Schema.optional(Schema.String).pipe(Entity.ignore)
}) {}

class User extends Schema.Class<User>("User")({
  id: Schema.Number.pipe(Entity.generated),
  email: Schema.String,
  age: Schema.Number,
  visits: Schema.Number
}) {}

const at = new Date(Date.UTC(2024, 0, 2, 3, 4, 5))
const iso = "2024-01-02T03:04:05.000Z"
const tag = (name: string, extra: Partial<Tag> = {}) =>
  new Tag({ name, uses: 1, createdAt: at, secret: "s", ...extra })
const user = (email: string, extra: Partial<User> = {}) =>
  new User({ id: 0, email, age: 30, visits: 1, ...extra })

const TAG_COLUMNS = `"name", "uses", "created_at", "secret"`

describe("Insert compiles to exact SQL and parameters on every dialect", () => {
  it("one row: every persisted field, encoded through the schema (a Date binds as ISO text)", () => {
    expectSql(
      Insert.into(Tag).values(tag("a")),
      portable(`INSERT INTO "tag" (${TAG_COLUMNS}) VALUES (?, ?, ?, ?)`, ["a", 1, iso, "s"])
    )
  })

  it("many rows in one statement; ignored fields are never written", () => {
    expectSql(
      Insert.into(Tag).values([tag("a", { cached: "x" }), tag("b")]),
      portable(`INSERT INTO "tag" (${TAG_COLUMNS}) VALUES (?, ?, ?, ?), (?, ?, ?, ?)`, [
        "a",
        1,
        iso,
        "s",
        "b",
        1,
        iso,
        "s"
      ])
    )
  })

  it("values calls accumulate rows", () => {
    const twice = Insert.into(Tag)
      .values(tag("a"))
      .values([tag("b")])
    expect(
      Either.getOrThrow(twice.compile(Dialect.sqlite)).params.filter((p) => p === "a" || p === "b")
    ).toEqual(["a", "b"])
  })

  it("a subset of columns", () => {
    expectSql(
      Insert.into(Tag)
        .values(tag("a", { note: "n" }))
        .columns("name", "note"),
      portable(`INSERT INTO "tag" ("name", "note") VALUES (?, ?)`, ["a", "n"])
    )
  })

  it("the generated key is left out; PostgreSQL returns it for lastInsertId", () => {
    expectSql(Insert.into(User).values([user("a"), user("b")]), {
      mysql: [
        "INSERT INTO `user` (`email`, `age`, `visits`) VALUES (?, ?, ?), (?, ?, ?)",
        ["a", 30, 1, "b", 30, 1]
      ],
      pg: [
        `INSERT INTO "user" ("email", "age", "visits") VALUES ($1, $2, $3), ($4, $5, $6) RETURNING "id"`,
        ["a", 30, 1, "b", 30, 1]
      ],
      sqlite: [
        `INSERT INTO "user" ("email", "age", "visits") VALUES (?, ?, ?), (?, ?, ?)`,
        ["a", 30, 1, "b", 30, 1]
      ]
    })
  })

  it("a generated key that is given (not null or 0) is written and nothing is returned", () => {
    expectSql(
      Insert.into(User).values(user("a", { id: 7 })),
      portable(`INSERT INTO "user" ("id", "email", "age", "visits") VALUES (?, ?, ?, ?)`, [7, "a", 30, 1])
    )
  })

  it("rows giving different fields run as consecutive statements, in row order", () => {
    const mixed = Insert.into(Tag).values([
      tag("a"),
      tag("b", { note: "n" }),
      tag("c", { note: "m" }),
      tag("d")
    ])
    const statements = Either.getOrThrow(mixed.compileAll(Dialect.sqlite))
    expect(statements.map((s) => [s.sql, s.params[0]])).toEqual([
      [`INSERT INTO "tag" (${TAG_COLUMNS}) VALUES (?, ?, ?, ?)`, "a"],
      [
        `INSERT INTO "tag" ("name", "uses", "created_at", "note", "secret") VALUES (?, ?, ?, ?, ?), (?, ?, ?, ?, ?)`,
        "b"
      ],
      [`INSERT INTO "tag" (${TAG_COLUMNS}) VALUES (?, ?, ?, ?)`, "d"]
    ])
    expect(compileError(mixed)).toMatchObject({ _tag: "QueryBuildError" })
    expect(compileError(mixed).message).toContain("compileAll")
  })

  it("20,000 rows x 5 columns split under each dialect's parameter limit, nothing lost", () => {
    class Item extends Schema.Class<Item>("Item")({
      id: Schema.Number.pipe(Entity.generated),
      a: Schema.Number,
      b: Schema.Number,
      c: Schema.Number,
      d: Schema.Number,
      e: Schema.Number
    }) {}
    const rows = Array.from({ length: 20_000 }, (_, i) => new Item({ id: 0, a: i, b: i, c: i, d: i, e: i }))
    const batch = Insert.into(Item).values(rows)
    const sizes = (d: Dialect.Dialect) =>
      Either.getOrThrow(batch.compileAll(d)).map((s) => s.params.length / 5)
    expect(sizes(Dialect.mysql)).toEqual([13_107, 6_893])
    expect(sizes(Dialect.pg)).toEqual([13_107, 6_893])
    expect(sizes(Dialect.sqlite)).toEqual([6_553, 6_553, 6_553, 341])
    const last = Either.getOrThrow(batch.compileAll(Dialect.pg)).at(-1)
    expect(last?.sql.endsWith(`($34461, $34462, $34463, $34464, $34465) RETURNING "id"`)).toBe(true)
    expect(last?.params.at(-1)).toBe(19_999)
  })

  it("parameters bound by an upsert's update list count against the limit", () => {
    class Wide extends Schema.Class<Wide>("Wide")({ id: Schema.Number, n: Schema.Number }) {}
    const rows = Array.from({ length: 32_768 }, (_, i) => new Wide({ id: i + 1, n: i }))
    const upsert = Insert.into(Wide)
      .values(rows)
      .onConflictDoUpdate({ set: { n: 0 } })
    const statements = Either.getOrThrow(upsert.compileAll(Dialect.mysql))
    // (65,535 - 1) / 2 = 32,767 rows fit the first statement, with the update list's one value.
    expect(statements.map((s) => s.params.length)).toEqual([65_535, 3])
  })

  it("the fields each parameter is bound to are recorded, so middleware can redact sensitive ones", () => {
    const statement = Either.getOrThrow(Insert.into(Tag).values(tag("a")).compile(Dialect.sqlite))
    expect(statement.paramFields?.map((f) => f?.field)).toEqual(["name", "uses", "createdAt", "secret"])
    expect(statement.paramFields?.map((f) => f?.sensitive)).toEqual([false, false, false, true])
  })

  it("registry overrides rename the table and columns", () => {
    const registry = EntityRegistry.make()
    registry.override(Tag, { table: "labels", columns: { uses: "use_count" } })
    const statement = Either.getOrThrow(Insert.into(Tag).values(tag("a")).compile(Dialect.pg, registry))
    expect(statement.sql).toBe(
      `INSERT INTO "labels" ("name", "use_count", "created_at", "secret") VALUES ($1, $2, $3, $4)`
    )
  })

  it("a row with nothing to write inserts the defaults (one statement a row where VALUES cannot be empty)", () => {
    class Counter extends Schema.Class<Counter>("Counter")({ id: Schema.Number.pipe(Entity.generated) }) {}
    const one = Insert.into(Counter).values(new Counter({ id: 0 }))
    expectSql(one, {
      mysql: ["INSERT INTO `counter` () VALUES ()", []],
      pg: [`INSERT INTO "counter" DEFAULT VALUES RETURNING "id"`, []],
      sqlite: [`INSERT INTO "counter" DEFAULT VALUES`, []]
    })
    const two = one.values(new Counter({ id: 0 }))
    expect(Either.getOrThrow(two.compileAll(Dialect.mysql)).map((s) => s.sql)).toEqual([
      "INSERT INTO `counter` () VALUES (), ()"
    ])
    expect(Either.getOrThrow(two.compileAll(Dialect.sqlite)).length).toBe(2)
  })
})

describe("Upserts", () => {
  it("do nothing: ON CONFLICT DO NOTHING, or a no-op ON DUPLICATE KEY UPDATE on MySQL", () => {
    expectSql(Insert.into(Tag).values(tag("a")).onConflictDoNothing(), {
      mysql: [
        "INSERT INTO `tag` (`name`, `uses`, `created_at`, `secret`) VALUES (?, ?, ?, ?) ON DUPLICATE KEY UPDATE `name` = `name`",
        ["a", 1, iso, "s"]
      ],
      pg: [
        `INSERT INTO "tag" (${TAG_COLUMNS}) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING`,
        ["a", 1, iso, "s"]
      ],
      sqlite: [
        `INSERT INTO "tag" (${TAG_COLUMNS}) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING`,
        ["a", 1, iso, "s"]
      ]
    })
    const targeted = Insert.into(User)
      .values(user("a"))
      .onConflictDoNothing({ target: ["email"] })
    expect(Either.getOrThrow(targeted.compile(Dialect.sqlite)).sql).toBe(
      `INSERT INTO "user" ("email", "age", "visits") VALUES (?, ?, ?) ON CONFLICT ("email") DO NOTHING`
    )
  })

  it("update chosen columns from the new row", () => {
    expectSql(
      Insert.into(User)
        .values(user("a"))
        .onConflictDoUpdate({ target: ["email"], set: ["age"] }),
      {
        mysql: [
          "INSERT INTO `user` (`email`, `age`, `visits`) VALUES (?, ?, ?) ON DUPLICATE KEY UPDATE `age` = VALUES(`age`)",
          ["a", 30, 1]
        ],
        pg: [
          `INSERT INTO "user" ("email", "age", "visits") VALUES ($1, $2, $3) ON CONFLICT ("email") DO UPDATE SET "age" = excluded."age"`,
          ["a", 30, 1]
        ],
        sqlite: [
          `INSERT INTO "user" ("email", "age", "visits") VALUES (?, ?, ?) ON CONFLICT ("email") DO UPDATE SET "age" = excluded."age"`,
          ["a", 30, 1]
        ]
      }
    )
  })

  it("update to expressions of the existing and the new row, and to bound values", () => {
    const upsert = Insert.into(User)
      .values(user("a"))
      .onConflictDoUpdate({
        target: ["email"],
        set: (excluded, current) => ({ visits: current.visits.add(excluded.visits), age: 99 })
      })
    expectSql(upsert, {
      mysql: [
        "INSERT INTO `user` (`email`, `age`, `visits`) VALUES (?, ?, ?) ON DUPLICATE KEY UPDATE `visits` = (`user`.`visits` + VALUES(`visits`)), `age` = ?",
        ["a", 30, 1, 99]
      ],
      pg: [
        `INSERT INTO "user" ("email", "age", "visits") VALUES ($1, $2, $3) ON CONFLICT ("email") DO UPDATE SET "visits" = ("user"."visits" + excluded."visits"), "age" = $4`,
        ["a", 30, 1, 99]
      ],
      sqlite: [
        `INSERT INTO "user" ("email", "age", "visits") VALUES (?, ?, ?) ON CONFLICT ("email") DO UPDATE SET "visits" = ("user"."visits" + excluded."visits"), "age" = ?`,
        ["a", 30, 1, 99]
      ]
    })
  })

  it("by default every inserted column but the target and the primary key, on the primary key", () => {
    const upsert = Insert.into(Tag).values(tag("a")).onConflictDoUpdate()
    expect(Either.getOrThrow(upsert.compile(Dialect.pg)).sql).toBe(
      `INSERT INTO "tag" (${TAG_COLUMNS}) VALUES ($1, $2, $3, $4) ON CONFLICT ("name") DO UPDATE SET ` +
        `"uses" = excluded."uses", "created_at" = excluded."created_at", "secret" = excluded."secret"`
    )
  })

  it("an upsert with nothing left to update is refused", () => {
    const keyOnly = Insert.into(Tag).values(tag("a")).columns("name").onConflictDoUpdate()
    expect(compileError(keyOnly)).toMatchObject({ _tag: "QueryBuildError" })
  })

  it("lastInsertId is not asked for on upserts: no implicit RETURNING on PostgreSQL", () => {
    const upsert = Insert.into(User).values(user("a")).onConflictDoNothing()
    expect(Either.getOrThrow(upsert.compile(Dialect.pg)).sql).not.toContain("RETURNING")
  })
})

describe("Insert returning", () => {
  it("named fields plus the generated key, on every dialect (MariaDB checks the server at run time)", () => {
    const returning = Insert.into(User).values(user("a")).returning("email")
    expectSql(
      returning,
      portable(`INSERT INTO "user" ("email", "age", "visits") VALUES (?, ?, ?) RETURNING "email", "id"`, [
        "a",
        30,
        1
      ])
    )
  })

  it("every field, written out", () => {
    expectSql(
      Insert.into(Tag).values(tag("a")).returning(),
      portable(
        `INSERT INTO "tag" (${TAG_COLUMNS}) VALUES (?, ?, ?, ?) RETURNING "name", "uses", "created_at", "note", "secret"`,
        ["a", 1, iso, "s"]
      )
    )
  })
})

describe("RETURNING on the mysql dialect is allowed for MariaDB 10.5+ only (checked once per session)", () => {
  it.each([
    ["10.11.19-MariaDB-0+deb12u1", true],
    ["10.5.0-MariaDB", true],
    ["11.4.2-MariaDB-ubu2404", true],
    ["10.4.34-MariaDB", false],
    ["8.0.36", false],
    ["8.4.0-commercial", false]
  ])("%s: %s", (version, expected) => {
    expect(serverInfoOf(Dialect.mysql, version).returning).toBe(expected)
  })
})

describe("Insert errors are typed, never a crash or a partial statement", () => {
  it("no rows", () => {
    expect(compileError(Insert.into(Tag))).toMatchObject({ _tag: "QueryBuildError" })
  })

  it("a row that is not a valid entity names the row", () => {
    const bad = { ...tag("a"), uses: "many" } as unknown as Tag
    const error = compileError(Insert.into(Tag).values([tag("ok"), bad]))
    expect(error).toMatchObject({ _tag: "QueryBuildError" })
    expect(error.message).toContain("Row 1")
  })

  it("refinements of a field are checked, and a Date that cannot encode is refused", () => {
    class Scored extends Schema.Class<Scored>("Scored")({
      id: Schema.Number,
      score: Schema.Int,
      at: Schema.Date
    }) {}
    const fraction = { id: 1, score: 1.5, at } as unknown as Scored
    expect(compileError(Insert.into(Scored).values(fraction)).message).toContain("score")
    const invalid = { id: 1, score: 1, at: new Date(Number.NaN) } as unknown as Scored
    expect(compileError(Insert.into(Scored).values(invalid)).message).toContain("at")
  })

  it("a column the entity does not have", () => {
    const typo = Insert.into(Tag)
      .values(tag("a"))
      .columns("nmae" as "name")
    expect(compileError(typo)).toMatchObject({ _tag: "UnknownFieldError", field: "nmae" })
  })

  it("proposed (excluded) values outside an upsert", () => {
    const excluded = Expr.excludedProxy<User>()
    const select = Select.from(User).where(excluded.age.gt(1))
    expect(compileError(select)).toMatchObject({ _tag: "QueryBuildError" })
  })
})
