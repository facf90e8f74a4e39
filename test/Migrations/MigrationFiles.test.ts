/**
 * MigrationFiles in process, per dialect: generate writes a Migrator file, @effect/sql's Migrator
 * runs it (recorded in its table), status reports it; a file for several dialects runs the list of
 * the database it meets and fails on one it was not generated for.
 */
import { rmSync } from "node:fs"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { NodeContext } from "@effect/platform-node"
import { describe, expect, it, layer } from "@effect/vitest"
import { Effect, Either, Layer, Option, Schema } from "effect"
import { register } from "tsx/esm/api"
import { afterAll } from "vitest"
import * as Diff from "../../src/Migrations/Diff.js"
import * as MigrationFiles from "../../src/Migrations/MigrationFiles.js"
import * as Migrations from "../../src/Migrations/Migrations.js"
import * as TableSpec from "../../src/Migrations/TableSpec.js"
import * as Dialect from "../../src/Query/Dialect.js"
import * as Entity from "../../src/Schema/Entity.js"
import * as EntityModel from "../../src/Schema/EntityModel.js"
import { testDatabases, uniqueName } from "../support/databases.js"

// The Migrator imports the generated .ts files with Node's own import(): let tsx load them, as the CLI does.
register()

/** Inside the package (git-ignored), so the generated files resolve `effect` and `@effect/sql`. */
const work = join(fileURLToPath(new URL("../..", import.meta.url)), ".tmp", uniqueName("migration_files"))
afterAll(() => rmSync(work, { recursive: true, force: true }))

describe("render", () => {
  it("hostile names stay inside string literals and one-line comments", () => {
    const evil = 't"\n*/ process.exit(1) //\u2028x'
    const text = MigrationFiles.render(`x */ ${evil}`, {
      sqlite: [{ sql: `DROP TABLE "${evil}"`, description: "drop", destructive: `${evil}: lost` }]
    })
    const lines = text.split(/\r\n|\n|\r|\u2028|\u2029/)
    expect(lines.filter((l) => l.includes("process.exit"))).toEqual([
      `    // DESTRUCTIVE: t" */ process.exit(1) // x: lost`,
      `    ${JSON.stringify(`DROP TABLE "${evil}"`).replace("\u2028", "\\u2028")}`
    ])
    expect(text).toContain('Migration "x_t_process_exit_1_x"')
  })
})

for (const db of testDatabases()) {
  describe.skipIf(!db.available)(`${db.label}: migration files`, () => {
    layer(Layer.merge(db.layer, NodeContext.layer), { timeout: "120 seconds" })((it) => {
      it.effect("generate → Migrator run → status; nothing to generate afterwards", () =>
        Effect.gen(function* () {
          const directory = join(work, db.label)
          const table = uniqueName("mf_items")
          const migrations = uniqueName("mf_migrations")
          class Item extends Schema.Class<Item>("Item")(
            { id: Schema.Number.pipe(Entity.generated), name: Schema.String.pipe(Entity.unique) },
            Entity.table(table)
          ) {}
          const file = yield* MigrationFiles.generate([Item], {
            directory,
            name: "Create items",
            table: migrations
          })
          expect(Option.map(file, (f) => f.endsWith("1_create_items.ts"))).toEqual(Option.some(true))
          expect(
            (yield* MigrationFiles.status(directory, { table: migrations })).map((m) => [m.id, m.applied])
          ).toEqual([[1, false]])
          expect(yield* MigrationFiles.run(directory, { table: migrations })).toEqual([[1, "create_items"]])
          const status = yield* MigrationFiles.status(directory, { table: migrations })
          expect(status.map((m) => [m.id, m.name, m.applied, m.inFolder])).toEqual([
            [1, "create_items", true, true]
          ])
          expect(status[0]?.appliedAt).toBeInstanceOf(Date)
          expect(yield* Migrations.diff([Item])).toEqual([])
          expect(
            yield* MigrationFiles.generate([Item], { directory, name: "again", table: migrations })
          ).toEqual(Option.none())
        })
      )

      it.effect(
        "a file generated for other dialects fails here, naming them; the Migrator records nothing",
        () =>
          Effect.gen(function* () {
            const directory = join(work, `${db.label}-foreign`)
            const migrations = uniqueName("mf_migrations")
            const other = db.dialect === "sqlite" ? "pg" : "sqlite"
            const schema = Schema.Struct({ id: Schema.Number }).annotations({
              [Entity.TableId]: uniqueName("mf_x")
            })
            const spec = Either.getOrThrow(
              TableSpec.fromModel(Either.getOrThrow(EntityModel.make(schema)), other, () =>
                Either.left(undefined as never)
              )
            )
            yield* MigrationFiles.write(directory, "elsewhere", {
              [other]: Diff.createTables(Dialect.byName[other], [spec])
            })
            const error = yield* Effect.flip(MigrationFiles.run(directory, { table: migrations }))
            expect(error.message).toBe('Migration "1_elsewhere" failed')
            expect(String(error.cause)).toContain(`generated for ${other}`)
            expect(
              (yield* MigrationFiles.status(directory, { table: migrations })).map((m) => m.applied)
            ).toEqual([false])
          })
      )
    })
  })
}
