/**
 * Generated migrations as ordinary @effect/sql Migrator migrations: one `<id>_<name>.ts` file per
 * migration in a folder you name, whose default export runs the statements of the database's
 * dialect. They are loaded with the Migrator's own `fromFileSystem` loader, recorded in its table
 * (`effect_sql_migrations`), and run in its transaction.
 *
 * @example
 * // generate from the entities against the development database, then apply it anywhere:
 * const file = yield* MigrationFiles.generate([User, Post], { directory: "migrations", name: "add_posts" })
 * yield* MigrationFiles.run("migrations")
 * @since 0.1.0
 */

import * as path from "node:path"
import { FileSystem } from "@effect/platform/FileSystem"
import * as Migrator from "@effect/sql/Migrator"
import { fromFileSystem } from "@effect/sql/Migrator/FileSystem"
import * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError as DriverSqlError } from "@effect/sql/SqlError"
import { Effect, Option } from "effect"
import type { DialectName } from "../Query/Dialect.js"
import { Executor } from "../Query/Executor.js"
import type { DatabaseError } from "../Query/QueryError.js"
import type { InvalidEntityError } from "../Schema/EntityError.js"
import type { Step } from "./Diff.js"
import { DestructiveChangeError, MigrationFileError, type UnsupportedChangeError } from "./MigrationError.js"
import * as Migrations from "./Migrations.js"

/** The Migrator's default table. @since 0.1.0 @category constants */
export const defaultTable = "effect_sql_migrations"

/** One migration file and whether the database has run it. @since 0.1.0 @category models */
export interface MigrationStatus {
  readonly id: number
  readonly name: string
  readonly applied: boolean
  /** When it ran (absent when pending). */
  readonly appliedAt: Date | undefined
  /** False for a migration the database ran whose file is no longer in the folder. */
  readonly inFolder: boolean
}

const absolute = (directory: string) => path.resolve(directory)

/**
 * The Migrator loader of `directory` (@effect/sql's own `fromFileSystem`, given an absolute path so
 * the files import from anywhere).
 *
 * @since 0.1.0 @category loaders
 */
export const loader = (directory: string): Migrator.Loader<FileSystem> => fromFileSystem(absolute(directory))

/**
 * Runs the migrations of `directory` that the database has not run, in id order, through
 * @effect/sql's Migrator. Returns the ones it ran. A failing migration is rolled back and fails with
 * the Migrator's `MigrationError` (whose `cause` is the migration's error), not a defect.
 *
 * @since 0.1.0 @category running
 */
export const run = (
  directory: string,
  options: { readonly table?: string } = {}
): Effect.Effect<
  ReadonlyArray<readonly [id: number, name: string]>,
  Migrator.MigrationError | DriverSqlError,
  SqlClient.SqlClient | FileSystem
> =>
  // The Migrator dies with a MigrationError when a migration fails: turn that back into a typed failure.
  Effect.catchSomeDefect(
    Migrator.make({})({ loader: loader(directory), table: options.table ?? defaultTable }),
    (defect) => (defect instanceof Migrator.MigrationError ? Option.some(Effect.fail(defect)) : Option.none())
  )

/** Whether `table` exists in the current database (schema). */
const tableExists = (sql: SqlClient.SqlClient, table: string) =>
  Effect.map(
    sql.onDialectOrElse({
      mysql: () =>
        sql.unsafe(
          "SELECT 1 AS present FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?",
          [table]
        ).withoutTransform,
      pg: () =>
        sql.unsafe(
          "SELECT 1 AS present FROM pg_tables WHERE schemaname = current_schema() AND tablename = $1",
          [table]
        ).withoutTransform,
      orElse: () =>
        sql.unsafe("SELECT 1 AS present FROM sqlite_master WHERE type = 'table' AND name = ?", [table])
          .withoutTransform
    }),
    (rows) => rows.length > 0
  )

/** A Date from the driver, or SQLite's `YYYY-MM-DD HH:MM:SS` text (UTC). */
const timestamp = (value: unknown): Date | undefined =>
  value instanceof Date
    ? value
    : typeof value === "string"
      ? new Date(/[zZ]|[+-]\d\d:?\d\d$/.test(value) ? value : `${value.replace(" ", "T")}Z`)
      : undefined

/**
 * Every migration in `directory` (none when the folder does not exist) or in the database's table,
 * by id: applied or pending.
 *
 * @since 0.1.0 @category status
 */
export const status = (
  directory: string,
  options: { readonly table?: string } = {}
): Effect.Effect<
  ReadonlyArray<MigrationStatus>,
  Migrator.MigrationError | DriverSqlError,
  SqlClient.SqlClient | FileSystem
> =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const table = options.table ?? defaultTable
    const fs = yield* FileSystem
    // A folder that does not exist yet holds no migrations (generate creates it).
    const files = (yield* Effect.orElseSucceed(fs.exists(absolute(directory)), () => false))
      ? yield* loader(directory)
      : []
    const applied = (yield* tableExists(sql, table))
      ? yield* sql<{
          migration_id: number
          name: string
          created_at: unknown
        }>`SELECT migration_id, name, created_at FROM ${sql(table)} ORDER BY migration_id`.withoutTransform
      : []
    const byId = new Map(applied.map((row) => [Number(row.migration_id), row]))
    const fromFiles = files.map(([id, name]): MigrationStatus => {
      const row = byId.get(id)
      return {
        id,
        name,
        applied: row !== undefined,
        appliedAt: row === undefined ? undefined : timestamp(row.created_at),
        inFolder: true
      }
    })
    const gone = applied
      .filter((row) => !files.some(([id]) => id === Number(row.migration_id)))
      .map(
        (row): MigrationStatus => ({
          id: Number(row.migration_id),
          name: row.name,
          applied: true,
          appliedAt: timestamp(row.created_at),
          inFolder: false
        })
      )
    return [...fromFiles, ...gone].sort((a, b) => a.id - b.id)
  })

/** `Add Posts!` → `add_posts`. */
const slug = (name: string) =>
  name
    .trim()
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, "_")
    .replace(/^_+|_+$/g, "")

/** A JSON string literal with the two line separators JSON leaves raw escaped too, for readers and old parsers. */
const stringLiteral = (text: string) =>
  JSON.stringify(text)
    .replace(/\u2028/g, "\\u2028")
    .replace(/\u2029/g, "\\u2029")

/**
 * The TypeScript source of a migration that runs `steps` of the database's dialect. Statements are
 * JSON string literals (so no text of theirs can break out of the file); destructive ones carry a
 * one-line comment saying why (line breaks in it are flattened, so it cannot end the comment).
 *
 * @since 0.1.0 @category rendering
 */
export const render = (name: string, steps: Partial<Record<DialectName, ReadonlyArray<Step>>>): string => {
  const dialects = (Object.keys(steps) as Array<DialectName>).sort()
  const blocks = dialects.map((dialect) => {
    const lines = (steps[dialect] ?? []).flatMap((step) => [
      ...(step.destructive === undefined
        ? []
        : [`    // DESTRUCTIVE: ${step.destructive.replace(/\s+/g, " ")}`]),
      `    ${stringLiteral(step.sql)}`
    ])
    // Comments sit on their own lines, so commas go after the statements only.
    const withCommas = lines.map((line, i) =>
      line.trimStart().startsWith("//") || i === lines.length - 1 ? line : `${line},`
    )
    return `  ${dialect}: [\n${withCommas.join("\n")}\n  ]`
  })
  return `/**
 * Migration ${JSON.stringify(slug(name))}, generated by \`effect-dal migrate generate\` from the entities.
 * It runs the statements of the database's dialect and fails on a dialect it was not generated for.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import * as Effect from "effect/Effect"

const statements: Record<string, ReadonlyArray<string>> = {
${blocks.join(",\n")}
}

export default Effect.flatMap(SqlClient.SqlClient, (sql) => {
  const dialect = sql.onDialectOrElse({
    mysql: () => "mysql",
    pg: () => "pg",
    sqlite: () => "sqlite",
    orElse: () => "another dialect"
  })
  const list = statements[dialect]
  return list === undefined
    ? Effect.fail(new Error(\`no statements for \${dialect}: generated for ${dialects.join(", ")}\`))
    : Effect.forEach(list, (statement) => sql.unsafe(statement), { discard: true })
})
`
}

/**
 * Writes a new migration file to `directory` (created if missing) with the next id after the
 * highest there, and returns its path.
 *
 * @since 0.1.0 @category writing
 */
export const write = (
  directory: string,
  name: string,
  steps: Partial<Record<DialectName, ReadonlyArray<Step>>>
): Effect.Effect<string, MigrationFileError, FileSystem> =>
  Effect.gen(function* () {
    const fs = yield* FileSystem
    const base = slug(name)
    if (base === "")
      return yield* new MigrationFileError({ reason: `"${name}" is not a usable migration name` })
    const dir = absolute(directory)
    const failed = (reason: string) => (cause: unknown) => new MigrationFileError({ reason, cause })
    yield* Effect.mapError(fs.makeDirectory(dir, { recursive: true }), failed(`cannot create ${dir}`))
    const entries = yield* Effect.mapError(fs.readDirectory(dir), failed(`cannot list ${dir}`))
    const ids = entries.flatMap((file) => {
      const id = file.match(/^(\d+)_/)?.[1]
      return id === undefined ? [] : [Number(id)]
    })
    const file = path.join(dir, `${Math.max(0, ...ids) + 1}_${base}.ts`)
    // exclusive: never overwrite a migration another process wrote meanwhile.
    yield* Effect.mapError(
      fs.writeFileString(file, render(base, steps), { flag: "wx" }),
      failed(`cannot write ${file}`)
    )
    return file
  })

/** What `generate` can fail with. @since 0.1.0 @category errors */
export type GenerateError =
  | MigrationFileError
  | DestructiveChangeError
  | UnsupportedChangeError
  | InvalidEntityError
  | DatabaseError
  | Migrator.MigrationError
  | DriverSqlError

/**
 * The steps a new migration needs on the current database: refuses while migrations of `directory`
 * are pending (the diff would repeat them), and refuses destructive steps unless allowed.
 *
 * @since 0.1.0 @category generating
 */
export const pendingSteps = (
  entities: ReadonlyArray<Migrations.Entity>,
  options: { readonly directory: string; readonly allowDestructive?: boolean; readonly table?: string }
): Effect.Effect<ReadonlyArray<Step>, GenerateError, Executor | SqlClient.SqlClient | FileSystem> =>
  Effect.gen(function* () {
    const pending = (yield* status(options.directory, options)).filter((m) => !m.applied)
    if (pending.length > 0) {
      const label = (yield* Executor).session.label
      return yield* new MigrationFileError({
        reason: `${pending.length} migration(s) of ${options.directory} are not applied to ${label} (${pending
          .map((m) => `${m.id}_${m.name}`)
          .join(", ")}): run them first, or the new migration would repeat them`
      })
    }
    const steps = yield* Migrations.diff(
      entities,
      options.table === undefined ? {} : { ignoreTables: [options.table] }
    )
    const destructive = steps.filter((s) => s.destructive !== undefined)
    if (destructive.length > 0 && options.allowDestructive !== true) {
      return yield* new DestructiveChangeError({ steps: destructive })
    }
    return steps
  })

/**
 * Diffs `entities` against the current database and writes the steps as a new migration of
 * `directory`; `None` when there is nothing to change.
 *
 * @since 0.1.0 @category generating
 */
export const generate = (
  entities: ReadonlyArray<Migrations.Entity>,
  options: {
    readonly directory: string
    readonly name: string
    readonly allowDestructive?: boolean
    readonly table?: string
  }
): Effect.Effect<Option.Option<string>, GenerateError, Executor | SqlClient.SqlClient | FileSystem> =>
  Effect.gen(function* () {
    const steps = yield* pendingSteps(entities, options)
    if (steps.length === 0) return Option.none()
    const dialect = (yield* Executor).session.dialect.name
    return Option.some(yield* write(options.directory, options.name, { [dialect]: steps }))
  })
