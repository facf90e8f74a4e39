/**
 * The `effect-dal` command line end to end, as a user runs it (`node bin/effect-dal.js ...` with
 * DATABASE_URL), on SQLite and MariaDB: generate, status, up, the refusal to generate over pending
 * migrations or destructive steps, and the migrations then being ordinary Migrator migrations.
 */
import { execFile } from "node:child_process"
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { afterAll, describe, expect, it } from "vitest"
import { uniqueName } from "../support/databases.js"
import { serviceAvailable, serviceUrls } from "../support/services.js"

const root = fileURLToPath(new URL("../..", import.meta.url))
const bin = join(root, "bin", "effect-dal.js")
/** Inside the package (git-ignored), so the generated files resolve `effect` and `@effect/sql`. */
const work = join(root, ".tmp", uniqueName("cli"))

afterAll(() => rmSync(work, { recursive: true, force: true }))

interface Result {
  readonly code: number
  readonly output: string
}

const cli = (cwd: string, url: string, ...args: ReadonlyArray<string>): Promise<Result> =>
  new Promise((resolve) => {
    execFile(
      process.execPath,
      [bin, ...args],
      { cwd, env: { ...process.env, DATABASE_URL: url }, timeout: 120_000 },
      // runMain logs a failure through Effect's logger (stdout): tests read both streams as one.
      (error, stdout, stderr) =>
        resolve({ code: error === null ? 0 : Number(error.code ?? 1), output: `${stdout}${stderr}` })
    )
  })

const entities = (table: string, fields: string) => `import { Schema } from "effect"
import * as Entity from ${JSON.stringify(join(root, "src", "Schema", "Entity.js"))}

export class Note extends Schema.Class<Note>("Note")(
  { id: Schema.Number.pipe(Entity.generated), ${fields} },
  Entity.table(${JSON.stringify(table)})
) {}
`

const cases = [
  { label: "SQLite", available: true, url: (dir: string) => `sqlite:${join(dir, "app.db")}` },
  { label: "MariaDB", available: serviceAvailable("mysql"), url: () => serviceUrls.mysql }
]

for (const c of cases) {
  describe.skipIf(!c.available)(`${c.label}: effect-dal migrate`, () => {
    it("generate → status → up → generate again after an entity change; refuses pending and destructive", async () => {
      const dir = join(work, c.label)
      mkdirSync(dir, { recursive: true })
      const url = c.url(dir)
      const table = uniqueName("cli_notes")
      const migrationsTable = uniqueName("cli_migrations")
      const run = (...args: ReadonlyArray<string>) => cli(dir, url, ...args, "--table", migrationsTable)
      writeFileSync(join(dir, "entities.ts"), entities(table, "body: Schema.String"))

      const init = await run(
        "migrate",
        "generate",
        "init",
        "--entities",
        "entities.ts",
        "--dir",
        "migrations"
      )
      expect(init.code).toBe(0)
      expect(init.output).toContain("Wrote migrations/1_init.ts")
      expect(readFileSync(join(dir, "migrations", "1_init.ts"), "utf8")).toContain(`CREATE TABLE`)

      const pending = await run("migrate", "status", "--dir", "migrations")
      expect(pending.output).toMatch(/1_init {2}pending/)

      // A second generate before `up` would repeat the first: refused, nothing written.
      const twice = await run(
        "migrate",
        "generate",
        "again",
        "--entities",
        "entities.ts",
        "--dir",
        "migrations"
      )
      expect(twice.code).not.toBe(0)
      expect(twice.output).toContain("are not applied")
      expect(readdirSync(join(dir, "migrations"))).toEqual(["1_init.ts"])

      const up = await run("migrate", "up", "--dir", "migrations")
      expect(up.output).toContain("applied 1_init")
      expect((await run("migrate", "diff", "--entities", "entities.ts")).output).toContain("no changes")

      writeFileSync(
        join(dir, "entities.ts"),
        entities(table, "body: Schema.String, tag: Schema.NullOr(Schema.String)")
      )
      const diff = await run("migrate", "diff", "--entities", "entities.ts")
      expect(diff.output).toContain("ADD COLUMN")
      const second = await run(
        "migrate",
        "generate",
        "add tag",
        "--entities",
        "entities.ts",
        "--dir",
        "migrations"
      )
      expect(second.output).toContain("Wrote migrations/2_add_tag.ts")
      expect((await run("migrate", "up", "--dir", "migrations")).output).toContain("applied 2_add_tag")
      const status = await run("migrate", "status", "--dir", "migrations")
      expect(status.output).toMatch(/1_init {2}applied \d{4}-/)
      expect(status.output).toMatch(/2_add_tag {2}applied \d{4}-/)

      // Dropping a column is destructive: refused, then written with a warning when allowed.
      writeFileSync(join(dir, "entities.ts"), entities(table, "tag: Schema.NullOr(Schema.String)"))
      const refused = await run(
        "migrate",
        "generate",
        "drop body",
        "--entities",
        "entities.ts",
        "--dir",
        "migrations"
      )
      expect(refused.code).not.toBe(0)
      expect(refused.output).toContain("its data is lost")
      expect(existsSync(join(dir, "migrations", "3_drop_body.ts"))).toBe(false)
      const allowed = await run(
        "migrate",
        "generate",
        "drop body",
        "--entities",
        "entities.ts",
        "--dir",
        "migrations",
        "--allow-destructive"
      )
      expect(allowed.output).toContain("Wrote migrations/3_drop_body.ts")
      expect(readFileSync(join(dir, "migrations", "3_drop_body.ts"), "utf8")).toContain("// DESTRUCTIVE:")
      expect((await run("migrate", "up", "--dir", "migrations")).output).toContain("applied 3_drop_body")
      expect((await run("migrate", "diff", "--entities", "entities.ts")).output).toContain("no changes")
    }, 600_000)
  })
}
