/**
 * The package as a user gets it: `npm pack`, installed with its peers into a fresh project, once with
 * the lowest and once with the newest effect 3.x the peer ranges allow. There a program is type-checked
 * under strict compiler flags (NodeNext and Bundler resolution), run with plain `node` against SQLite,
 * and bundled with esbuild, whose output must carry the SQLite driver and no MySQL, PostgreSQL or Redis
 * code. The project gets the SQLite driver, ioredis and bloom-filters, but neither MySQL nor PostgreSQL
 * driver: the root module must load without them.
 *
 * Packages come from the npm cache when they are there (`--prefer-offline`), else from the registry.
 * Install scripts are skipped; better-sqlite3's native addon is copied from this repository's install.
 */
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { dirname, join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { bin, cleanEnv, type Ran, repoRoot, run } from "./support/run.js"

const manifest = JSON.parse(readFileSync(join(repoRoot, "package.json"), "utf8")) as {
  readonly exports: Record<string, unknown>
  readonly peerDependencies: Record<string, string>
  readonly files: ReadonlyArray<string>
}
const peers = manifest.peerDependencies
const lowest = (range: string) => range.replace(/^\^/, "")

const ok = (ran: Ran, what: string) => {
  if (ran.code !== 0) throw new Error(`${what} failed (${ran.code}):\n${ran.stdout}\n${ran.stderr}`)
  return ran
}

const work = mkdtempSync(join(tmpdir(), "effect-dal-pack-"))
let tarball = ""

beforeAll(async () => {
  // The library's build from a clean dist/ (what `prepare` does, without rebuilding the plugin).
  ok(await run("npm", ["run", "build:lib"], { env: cleanEnv() }), "npm run build:lib")
  const packed = ok(
    await run("npm", ["pack", "--ignore-scripts", "--json", "--pack-destination", work], { env: cleanEnv() }),
    "npm pack"
  )
  const [info] = JSON.parse(packed.stdout.slice(packed.stdout.indexOf("["))) as Array<{
    readonly filename: string
    readonly files: ReadonlyArray<{ readonly path: string }>
  }>
  if (info === undefined) throw new Error(`npm pack printed no package:\n${packed.stdout}`)
  tarball = join(work, info.filename)
  writeFileSync(join(work, "files.json"), JSON.stringify(info.files.map((f) => f.path)))
}, 180_000)

afterAll(() => rmSync(work, { recursive: true, force: true }))

describe("the packed tarball", () => {
  it("holds the build, the library's sources for the declaration maps, README, LICENSE and nothing else", () => {
    const files = JSON.parse(readFileSync(join(work, "files.json"), "utf8")) as ReadonlyArray<string>
    expect(files).toEqual(expect.arrayContaining(["LICENSE", "README.md", "package.json", "dist/index.js"]))
    expect(files).toEqual(expect.arrayContaining(["dist/index.d.ts", "dist/index.d.ts.map", "src/index.ts"]))
    const outside = files.filter(
      (f) =>
        !/^(dist|src)\//.test(f) && !["LICENSE", "README.md", "package.json", "bin/effect-dal.js"].includes(f)
    )
    expect(outside).toEqual([])
    expect(files.filter((f) => /(^|\/)(Demo|Codegen|Program)\b|test|bench|\.ci/.test(f))).toEqual([])
  })

  it("exports every module of dist/ that is not internal, each as effect-dal/<name>", () => {
    const modules = (dir: string): ReadonlyArray<string> =>
      readdirSync(join(repoRoot, "dist", dir), { withFileTypes: true }).flatMap((entry) =>
        entry.isDirectory()
          ? entry.name === "internal"
            ? []
            : modules(join(dir, entry.name))
          : entry.name.endsWith(".js")
            ? [join(dir, entry.name)]
            : []
      )
    const built = modules("")
      // Not modules of their own: the migrations command's implementation (the bin's), and the
      // transaction error that effect-dal/TxError re-exports.
      .filter((f) => !["index.js", join("Migrations", "Cli.js"), join("Query", "TxError.js")].includes(f))
      .map((f) => ({ [`./${f.replace(/^.*\//, "").replace(/\.js$/, "")}`]: f }))
    const expected = Object.fromEntries(built.flatMap((entry) => Object.entries(entry)))
    const subpaths = Object.entries(manifest.exports).filter(
      ([key]) => key !== "." && key !== "./package.json"
    )
    expect(Object.fromEntries(subpaths)).toEqual(
      Object.fromEntries(
        Object.entries(expected).map(([key, file]) => [
          key,
          { types: `./dist/${file.replace(/\.js$/, ".d.ts")}`, import: `./dist/${file}` }
        ])
      )
    )
  })
})

/** A program over the public API: creates a table, inserts, selects, and shows a missing driver's error. */
const program = `import * as SqlClient from "@effect/sql/SqlClient"
import { Effect, Schema } from "effect"
import { Database, Dialect, Entity, Expr, Insert } from "effect-dal"
import * as Select from "effect-dal/Select"
import type { Compiled } from "effect-dal/Compiler"

class User extends Schema.Class<User>("User")(
  {
    id: Schema.Number.pipe(Entity.generated),
    firstName: Schema.String,
    age: Schema.Number
  },
  Entity.table("users")
) {}

const adults = Select.from(User).where((u) => Expr.and(u.age.gte(18), u.firstName.like("A%")))
// @ts-expect-error: no such field
Select.from(User).where((u) => u.agee.gte(18))
// @ts-expect-error: age is a number
Select.from(User).where((u) => u.age.eq("18"))

const main = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  yield* sql\`CREATE TABLE users (id INTEGER PRIMARY KEY AUTOINCREMENT, first_name TEXT NOT NULL, age INTEGER NOT NULL)\`
  yield* Insert.into(User).values(new User({ id: 0, firstName: "Ann", age: 30 })).exec()
  const { lastInsertId } = yield* Insert.into(User).values(new User({ id: 0, firstName: "Bob", age: 12 })).exec()
  const rows = yield* adults.getMulti()
  const compiled: Compiled = yield* adults.compile(Dialect.byName.sqlite)
  const noDriver = yield* Effect.flip(
    Effect.provide(adults.getMulti(), Database.layer({ url: "mysql://127.0.0.1:1/none" }))
  )
  console.log(JSON.stringify({
    lastInsertId: Number(lastInsertId),
    rows: rows.map((u) => [u instanceof User, u.id, u.firstName, u.age]),
    sql: compiled.sql,
    noDriver: { tag: noDriver._tag, message: noDriver.message }
  }))
})

Effect.runPromise(main.pipe(Effect.provide(Database.layer({ url: "sqlite::memory:" })))).catch((error) => {
  console.error(error)
  process.exitCode = 1
})
`

/** The same over a bundle: the driver is passed in, so esbuild sees exactly the one the program uses. */
const bundled = `import * as SqlClient from "@effect/sql/SqlClient"
import { Effect, Schema } from "effect"
import { Database, Entity, Insert, Select } from "effect-dal"
import * as SqliteDriver from "effect-dal/SqliteDriver"

class Note extends Schema.Class<Note>("Note")(
  { id: Schema.Number.pipe(Entity.generated), body: Schema.String },
  Entity.table("notes")
) {}

const main = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  yield* sql\`CREATE TABLE notes (id INTEGER PRIMARY KEY AUTOINCREMENT, body TEXT NOT NULL)\`
  yield* Insert.into(Note).values(new Note({ id: 0, body: "bundled" })).exec()
  const notes = yield* Select.from(Note).getMulti()
  console.log(JSON.stringify(notes.map((n) => n.body)))
})

Effect.runPromise(
  main.pipe(Effect.provide(Database.layer({ url: "sqlite::memory:", drivers: [SqliteDriver.driver] })))
).catch((error) => {
  console.error(error)
  process.exitCode = 1
})
`

const strict = {
  target: "ES2022",
  lib: ["ES2023"],
  types: ["node"],
  strict: true,
  exactOptionalPropertyTypes: true,
  noUncheckedIndexedAccess: true,
  noPropertyAccessFromIndexSignature: true,
  erasableSyntaxOnly: true,
  verbatimModuleSyntax: true,
  isolatedModules: true,
  noImplicitOverride: true,
  noUnusedLocals: true,
  skipLibCheck: false
}

const tsconfigs = {
  "tsconfig.json": {
    compilerOptions: { ...strict, module: "NodeNext", moduleResolution: "NodeNext", outDir: "out" }
  },
  "tsconfig.bundler.json": {
    compilerOptions: { ...strict, module: "Preserve", moduleResolution: "Bundler", noEmit: true }
  }
}

const consumer = (label: string, versions: Record<string, string>) =>
  describe(`a fresh project with ${label} effect`, () => {
    const dir = join(work, label)
    let versionsFound: Record<string, string> = {}

    beforeAll(async () => {
      mkdirSync(join(dir, "src"), { recursive: true })
      writeFileSync(
        join(dir, "package.json"),
        JSON.stringify({ name: "consumer", private: true, type: "module" })
      )
      for (const [name, config] of Object.entries(tsconfigs)) {
        writeFileSync(join(dir, name), JSON.stringify({ ...config, include: ["src"] }))
      }
      writeFileSync(join(dir, "src", "main.ts"), program)
      writeFileSync(join(dir, "src", "bundled.ts"), bundled)
      const specs = [tarball, ...Object.entries(versions).map(([name, version]) => `${name}@${version}`)]
      ok(
        await run(
          "npm",
          [
            "install",
            "--prefer-offline",
            "--ignore-scripts",
            "--no-audit",
            "--no-fund",
            "--save-exact",
            ...specs
          ],
          { cwd: dir, env: cleanEnv() }
        ),
        "npm install"
      )
      // The native addon, from this repository's install (its build downloads or compiles).
      const addon = "better-sqlite3/build/Release/better_sqlite3.node"
      const repoSqlite = JSON.parse(
        readFileSync(join(repoRoot, "node_modules/better-sqlite3/package.json"), "utf8")
      )
      const theirSqlite = JSON.parse(
        readFileSync(join(dir, "node_modules/better-sqlite3/package.json"), "utf8")
      )
      if (repoSqlite.version !== theirSqlite.version) {
        rmSync(join(dir, "node_modules/better-sqlite3"), { recursive: true })
        cpSync(join(repoRoot, "node_modules/better-sqlite3"), join(dir, "node_modules/better-sqlite3"), {
          recursive: true
        })
      } else {
        mkdirSync(dirname(join(dir, "node_modules", addon)), { recursive: true })
        cpSync(join(repoRoot, "node_modules", addon), join(dir, "node_modules", addon))
      }
      versionsFound = Object.fromEntries(
        ["effect", "@effect/sql", "@effect/platform", "@effect/sql-sqlite-node", "effect-dal"].map((name) => [
          name,
          (
            JSON.parse(readFileSync(join(dir, "node_modules", name, "package.json"), "utf8")) as {
              version: string
            }
          ).version
        ])
      )
    }, 300_000)

    it("installs one copy of effect, at the version asked for, and neither MySQL nor PostgreSQL driver", () => {
      if (versions.effect !== undefined && !versions.effect.startsWith("^")) {
        expect(versionsFound.effect).toBe(versions.effect)
      }
      expect(versionsFound.effect).toMatch(/^3\./)
      const nested = readdirSync(join(dir, "node_modules/effect-dal"))
      expect(nested).not.toContain("node_modules")
      const top = readdirSync(join(dir, "node_modules"))
      expect(top).not.toContain("mysql2")
      expect(top).not.toContain("pg")
    })

    it("type-checks under strict flags with NodeNext and with Bundler resolution", async () => {
      const tsc = bin("tsc")
      const [nodeNext, bundler] = await Promise.all([
        run(tsc, ["-p", "tsconfig.json"], { cwd: dir }),
        run(tsc, ["-p", "tsconfig.bundler.json"], { cwd: dir })
      ])
      expect(nodeNext.stdout + nodeNext.stderr).toBe("")
      expect(bundler.stdout + bundler.stderr).toBe("")
      expect(nodeNext.code + bundler.code).toBe(0)
    }, 120_000)

    it("runs with plain node against SQLite: inserts, selects, and names the missing MySQL driver", async () => {
      const ran = ok(await run(process.execPath, ["out/main.js"], { cwd: dir }), "node out/main.js")
      expect(ran.stderr).toBe("")
      expect(JSON.parse(ran.stdout)).toEqual({
        lastInsertId: 2,
        rows: [[true, 1, "Ann", 30]],
        sql: expect.stringContaining('FROM "users"'),
        noDriver: {
          tag: "DatabaseDriverError",
          message:
            "No mysql driver: install @effect/sql-mysql2 (npm install @effect/sql-mysql2), or pass its driver in `drivers` when bundling"
        }
      })
    }, 60_000)

    it("imports every subpath with plain node; only the modules of absent optional peers fail, naming their package", async () => {
      const subpaths = Object.keys(manifest.exports)
        .filter((key) => key !== "./package.json")
        .map((key) => key.replace(/^\./, "effect-dal"))
      const script = `for (const name of ${JSON.stringify(subpaths)}) {
        try { await import(name); console.log(name + " ok") }
        catch (error) { console.log(name + " " + error.code + " " + /'([^']+)'/.exec(error.message)?.[1]) }
      }`
      const ran = ok(
        await run(process.execPath, ["--input-type=module", "-e", script], { cwd: dir }),
        "imports"
      )
      const failed = ran.stdout.split("\n").filter((line) => line !== "" && !line.endsWith(" ok"))
      expect(failed.sort()).toEqual([
        "effect-dal/MariaDbBinlog ERR_MODULE_NOT_FOUND @vlasky/zongji",
        "effect-dal/MysqlDriver ERR_MODULE_NOT_FOUND @effect/sql-mysql2",
        "effect-dal/PgDriver ERR_MODULE_NOT_FOUND @effect/sql-pg",
        "effect-dal/PostgresLogical ERR_MODULE_NOT_FOUND pg"
      ])
      expect(ran.stdout).toContain("effect-dal/RedisCache ok")
      expect(ran.stdout.split("\n").filter((line) => line.endsWith(" ok"))).toHaveLength(subpaths.length - 4)
    }, 60_000)

    it("bundles a SQLite-only program with esbuild into code with the SQLite driver and no MySQL, PostgreSQL or Redis", async () => {
      ok(
        await run(
          bin("esbuild"),
          [
            "out/bundled.js",
            "--bundle",
            "--platform=node",
            "--format=esm",
            "--external:better-sqlite3",
            "--outfile=bundle/app.mjs"
          ],
          { cwd: dir }
        ),
        "esbuild"
      )
      const code = readFileSync(join(dir, "bundle/app.mjs"), "utf8")
      expect(code).toContain("node_modules/@effect/sql-sqlite-node/")
      expect(code).toContain("node_modules/effect-dal/dist/Layers/SqliteDriver.js")
      for (const absent of [
        "mysql2",
        "@effect/sql-mysql2",
        "pg",
        "pg-pool",
        "@effect/sql-pg",
        "ioredis",
        "bloom-filters"
      ]) {
        expect(code).not.toContain(`node_modules/${absent}/`)
      }
      expect(code).not.toMatch(/from ["'](mysql2|pg|ioredis)["']|require\(["'](mysql2|pg|ioredis)["']\)/)
      const ran = ok(await run(process.execPath, ["bundle/app.mjs"], { cwd: dir }), "node bundle/app.mjs")
      expect(ran.stdout.trim()).toBe('["bundled"]')
    }, 120_000)
  })

/** The peers a SQLite program installs (no MySQL or PostgreSQL driver), and @types/node. */
const installed = [
  "effect",
  "@effect/sql",
  "@effect/platform",
  "@effect/experimental",
  "@effect/sql-sqlite-node",
  "ioredis",
  "bloom-filters"
]
const versionsAt = (pick: (range: string) => string) => ({
  ...Object.fromEntries(installed.map((name) => [name, pick(peers[name] ?? "")])),
  "@types/node": "20"
})

consumer("the lowest", versionsAt(lowest))
consumer(
  "the newest",
  versionsAt((range) => range)
)
