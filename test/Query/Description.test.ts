import { describe, expect, it } from "@effect/vitest"
import * as Description from "../../src/Query/Description.js"
import * as Dialect from "../../src/Query/Dialect.js"

const all = [Dialect.mysql, Dialect.pg, Dialect.sqlite] as const

const writesOf = (sql: string, dialect: Dialect.Dialect = Dialect.pg) =>
  Description.describeRaw(sql, dialect).writes

describe("describeRaw reads what raw SQL text writes, past comments, strings and WITH", () => {
  it.each([
    ["/* tag */ DELETE FROM users WHERE id = 1", "DELETE"],
    ["-- sqlcommenter\nDELETE FROM users WHERE id = 1", "DELETE"],
    ["/* a */ /* b */\n\n  delete\tfrom\nusers where id = 1", "DELETE"],
    [
      "WITH gone AS (SELECT id FROM users WHERE age > 1) DELETE FROM users WHERE id IN (SELECT id FROM gone)",
      "DELETE"
    ],
    [
      "WITH RECURSIVE t(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM t WHERE n < 3) UPDATE users SET age = 1 WHERE id IN (SELECT n FROM t)",
      "UPDATE"
    ],
    ["((SELECT 1))", "SELECT"],
    ["SELECT 'DELETE FROM users' AS text", "SELECT"]
  ])("%s → operation %s", (sql, operation) => {
    for (const dialect of all) expect(Description.describeRaw(sql, dialect).operation).toBe(operation)
  })

  it("finds the table written after comments and CTEs, on every dialect", () => {
    for (const dialect of all) {
      expect(writesOf("/* x */ DELETE FROM users WHERE id = ?", dialect)).toEqual([
        { table: "users", type: "DELETE", unconditional: false }
      ])
      expect(writesOf("WITH t AS (SELECT 1) DELETE FROM users", dialect)).toEqual([
        { table: "users", type: "DELETE", unconditional: true }
      ])
      expect(writesOf("INSERT INTO audit (a) SELECT a FROM users", dialect)).toEqual([
        { table: "audit", type: "INSERT", unconditional: false }
      ])
      expect(writesOf("UPDATE users SET a = 1 WHERE (b = 2)", dialect)).toEqual([
        { table: "users", type: "UPDATE", unconditional: false }
      ])
    }
  })

  it("a write inside a CTE (PostgreSQL) is a write of the statement", () => {
    expect(writesOf("WITH d AS (DELETE FROM users WHERE id = 1 RETURNING *) SELECT * FROM d")).toEqual([
      { table: "users", type: "DELETE", unconditional: false }
    ])
    expect(writesOf("WITH d AS (DELETE FROM users RETURNING *) SELECT * FROM d")).toEqual([
      { table: "users", type: "DELETE", unconditional: true }
    ])
  })

  it("keywords inside strings, comments and quoted identifiers are not statements", () => {
    for (const dialect of all) {
      expect(writesOf("SELECT 'DELETE FROM users' AS a /* UPDATE users SET a = 1 */", dialect)).toEqual([])
      expect(writesOf('SELECT "delete" FROM t -- DELETE FROM users', dialect)).toEqual([])
      expect(writesOf("SELECT 'it''s; DROP TABLE users' AS a", dialect)).toEqual([])
    }
    expect(writesOf("SELECT $$ DELETE FROM users $$ AS a", Dialect.pg)).toEqual([])
    expect(writesOf("SELECT $tag$ it's; DELETE FROM users $tag$ AS a", Dialect.pg)).toEqual([])
    expect(writesOf("SELECT E'\\' DELETE FROM users' AS a", Dialect.pg)).toEqual([])
    expect(writesOf("SELECT 1 # DELETE FROM users", Dialect.mysql)).toEqual([])
    expect(writesOf("SELECT [DELETE] FROM t", Dialect.sqlite)).toEqual([])
  })

  it("PostgreSQL block comments nest; a MySQL executable comment is code", () => {
    expect(writesOf("/* outer /* inner */ DELETE FROM users */ SELECT 1", Dialect.pg)).toEqual([])
    expect(writesOf("/*! DELETE FROM users */", Dialect.mysql)).toEqual([
      { table: "users", type: "DELETE", unconditional: true }
    ])
    expect(writesOf("/*M!100500 DELETE FROM users WHERE id = 1 */", Dialect.mysql)).toEqual([
      { table: "users", type: "DELETE", unconditional: false }
    ])
  })

  it("UPDATE and DELETE that are clauses, functions or actions are not writes", () => {
    expect(writesOf("SELECT * FROM users WHERE id = 1 FOR UPDATE", Dialect.mysql)).toEqual([])
    expect(writesOf("SELECT REPLACE(name, 'a', 'b') FROM users", Dialect.mysql)).toEqual([])
    expect(
      writesOf("INSERT INTO users (id) VALUES (1) ON DUPLICATE KEY UPDATE id = id", Dialect.mysql)
    ).toEqual([{ table: "users", type: "INSERT", unconditional: false }])
    expect(writesOf("INSERT INTO users (id) VALUES (1) ON CONFLICT (id) DO UPDATE SET a = 1")).toEqual([
      { table: "users", type: "INSERT", unconditional: false }
    ])
    expect(writesOf("REPLACE INTO users (id) VALUES (1)", Dialect.mysql)).toEqual([
      { table: "users", type: "INSERT", unconditional: false }
    ])
    expect(writesOf("INSERT OR REPLACE INTO users (id) VALUES (1)", Dialect.sqlite)).toEqual([
      { table: "users", type: "INSERT", unconditional: false }
    ])
  })

  it("TRUNCATE is a whole-table delete of each table it names", () => {
    expect(writesOf("TRUNCATE TABLE a, b")).toEqual([
      { table: "a", type: "DELETE", unconditional: true },
      { table: "b", type: "DELETE", unconditional: true }
    ])
  })

  it("writes that cannot be named are unknown (undefined)", () => {
    for (const sql of [
      "DROP TABLE users",
      "CALL purge()",
      "ALTER TABLE users ADD COLUMN x INT",
      "UPDATE users u JOIN orders o ON o.user_id = u.id SET u.a = 1",
      "DELETE u, o FROM users u JOIN orders o ON o.user_id = u.id",
      "SELECT * INTO backup FROM users",
      "DO $$ BEGIN DELETE FROM users; END $$",
      "SOMETHING NEW"
    ]) {
      expect(writesOf(sql, sql.startsWith("DO") ? Dialect.pg : Dialect.mysql), sql).toBeUndefined()
    }
  })

  it("table names are folded where the dialect folds unquoted identifiers; quoted ones are kept", () => {
    expect(writesOf('DELETE FROM "Users" WHERE id = 1', Dialect.pg)?.[0]?.table).toBe("Users")
    expect(writesOf("DELETE FROM Users WHERE id = 1", Dialect.pg)?.[0]?.table).toBe("users")
    expect(writesOf("DELETE FROM app.Users WHERE id = 1", Dialect.mysql)?.[0]?.table).toBe("Users")
    expect(writesOf("DELETE FROM `app`.`users` WHERE id = 1", Dialect.mysql)?.[0]?.table).toBe("users")
  })

  it("counts statements at top-level semicolons, not inside strings or comments", () => {
    for (const dialect of all) {
      expect(Description.describeRaw("SELECT 1;", dialect).statements).toBe(1)
      expect(Description.describeRaw("SELECT ';' -- ;\n", dialect).statements).toBe(1)
      expect(Description.describeRaw("SELECT 1; DELETE FROM users", dialect).statements).toBe(2)
    }
  })

  it("on MySQL, a backslash that reads differently under NO_BACKSLASH_ESCAPES makes the writes unknown", () => {
    // Default mode: one string; NO_BACKSLASH_ESCAPES: the string ends at \' and DELETE is code.
    const sql = "SELECT 'a\\' , 1 FROM t WHERE x = 'b' OR 1 = 1; DELETE FROM users -- '"
    expect(writesOf(sql, Dialect.mysql)).toBeUndefined()
  })

  it("unterminated strings and comments are refused", () => {
    for (const dialect of all) {
      expect(() => Description.describeRaw("SELECT 'abc", dialect)).toThrow(/unterminated/)
      expect(() => Description.describeRaw("SELECT 1 /* x", dialect)).toThrow(/unterminated/)
    }
  })
})

describe("splitStatements", () => {
  it("splits at top-level semicolons only and drops empty statements", () => {
    expect(
      Description.splitStatements("SELECT ';'; -- x; y\n UPDATE t SET a = 1;; /* ; */", Dialect.pg)
    ).toEqual(["SELECT ';'", "-- x; y\n UPDATE t SET a = 1"])
  })
})

describe("withoutLiterals", () => {
  it("replaces strings and numbers, not names, placeholders or PostgreSQL parameters", () => {
    expect(
      Description.withoutLiterals("SELECT a1 FROM t WHERE e = 'x''y' AND n = 42 AND p = ?", Dialect.mysql)
    ).toBe("SELECT a1 FROM t WHERE e = ? AND n = ? AND p = ?")
    expect(Description.withoutLiterals("SELECT $$ s $$, E'\\'', $1 FROM t", Dialect.pg)).toBe(
      "SELECT ?, ?, $1 FROM t"
    )
  })
})

describe("placeholders and atomic operands", () => {
  it("finds ? outside strings and comments only", () => {
    for (const dialect of all) {
      expect(Description.placeholders("SELECT '?', ? /* ? */ -- ?\n, ?", dialect)).toEqual([12, 29])
    }
  })

  it.each([
    ["?", true],
    ["42", true],
    ["u.email", true],
    ["COALESCE(email, ?)", true],
    ["LOWER(a) || LOWER(b)", false],
    ["a = ? OR a = ?", false],
    ["? + ?", false],
    ["NOT(a)", false],
    ["(a) + (b)", false],
    ["f(a) + g(b)", false],
    ["-1", false]
  ])("%s → atomic %s", (sql, atomic) => {
    expect(Description.isAtomic(sql, Dialect.pg)).toBe(atomic)
  })
})
