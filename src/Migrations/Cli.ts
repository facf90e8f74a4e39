/**
 * The `effect-dal` command line (@effect/cli): `migrate generate <name>`, `migrate up`,
 * `migrate status` and `migrate diff`. Entities come from a module you name (`--entities`), the
 * database from `DATABASE_URL` (or `--database-url`, repeatable: `generate` then writes one file with
 * the statements of each database's dialect).
 *
 * @since 0.1.0
 */

import * as path from "node:path"
import { pathToFileURL } from "node:url"
import { Args, Command, Options, ValidationError } from "@effect/cli"
import { NodeContext, NodeRuntime } from "@effect/platform-node"
import { Cause, Config, Console, Effect, Either, Option, Redacted, Schema, SchemaAST } from "effect"
import * as Database from "../Layers/Database.js"
import type { DialectName } from "../Query/Dialect.js"
import { Executor } from "../Query/Executor.js"
import * as Entity from "../Schema/Entity.js"
import * as EntityModel from "../Schema/EntityModel.js"
import type { Step } from "./Diff.js"
import { MigrationFileError } from "./MigrationError.js"
import * as MigrationFiles from "./MigrationFiles.js"
import * as Migrations from "./Migrations.js"

const isEntity = (value: unknown): value is Migrations.Entity =>
  Schema.isSchema(value) &&
  "fields" in value &&
  Either.isRight(EntityModel.make(value as unknown as Migrations.Entity))

/** Whether the schema names its table (`Entity.table`), on a Class's declaration or a Struct itself. */
const namesTable = (schema: Migrations.Entity): boolean => {
  const ast = schema.ast
  const annotations = SchemaAST.isTransformation(ast)
    ? { ...ast.to.annotations, ...ast.annotations }
    : ast.annotations
  return Entity.TableId in annotations
}

/**
 * The entities a module exports: its `entities` array when it has one, otherwise every exported
 * entity annotated with `Entity.table` (so an error class or an input struct with an `id` is not
 * taken for a table).
 *
 * @since 0.1.0 @category loading
 */
export const entitiesOf = (module: Record<string, unknown>): ReadonlyArray<Migrations.Entity> => {
  const listed = module.entities
  if (Array.isArray(listed)) return listed.filter(isEntity)
  return Object.values(module).filter(
    (value): value is Migrations.Entity => isEntity(value) && namesTable(value)
  )
}

const loadEntities = (modulePath: string) =>
  Effect.flatMap(
    Effect.tryPromise({
      try: () => import(pathToFileURL(path.resolve(modulePath)).href) as Promise<Record<string, unknown>>,
      catch: (cause) =>
        new MigrationFileError({
          reason: `cannot load the entities module ${modulePath}: ${cause instanceof Error ? cause.message : String(cause)}`,
          cause
        })
    }),
    (module) => {
      const entities = entitiesOf(module)
      return entities.length === 0
        ? Effect.fail(new MigrationFileError({ reason: `${modulePath} exports no entity` }))
        : Effect.succeed(entities)
    }
  )

const entitiesOption = Options.file("entities").pipe(
  Options.withDescription(
    "the module that exports the entities (an `entities` array, or every exported entity)"
  )
)
const dirOption = Options.directory("dir").pipe(
  Options.withDefault("migrations"),
  Options.withDescription("the folder of the migration files")
)
const urlOption = Options.text("database-url").pipe(
  Options.repeated,
  Options.withDescription(
    "a database URL (default: DATABASE_URL); repeat it to generate for several dialects"
  )
)
const tableOption = Options.text("table").pipe(
  Options.withDefault(MigrationFiles.defaultTable),
  Options.withDescription("the Migrator's table of applied migrations")
)
const allowOption = Options.boolean("allow-destructive").pipe(
  Options.withDescription(
    "write or show destructive steps (dropped columns, narrowed types...) instead of refusing"
  )
)

/** The URLs given, or DATABASE_URL. */
const urls = (given: ReadonlyArray<string>) =>
  given.length > 0
    ? Effect.succeed(given.map((u) => Redacted.make(u)))
    : Effect.map(Config.redacted("DATABASE_URL"), (u) => [u])

const onDatabase = <A, E, R>(url: Redacted.Redacted, effect: Effect.Effect<A, E, R>) =>
  Effect.provide(effect, Database.layer({ url, maxConnections: 1 }))

const label = Effect.map(Executor, (ex) => ex.session.label)

const printSteps = (steps: ReadonlyArray<Step>) =>
  Effect.forEach(steps, (step) =>
    Console.log(
      `${step.destructive === undefined ? "" : `-- DESTRUCTIVE: ${step.destructive}\n`}${step.sql};`
    )
  )

const generate = Command.make(
  "generate",
  {
    name: Args.text({ name: "name" }),
    entities: entitiesOption,
    dir: dirOption,
    url: urlOption,
    table: tableOption,
    allowDestructive: allowOption
  },
  ({ allowDestructive, dir, entities, name, table, url }) =>
    Effect.gen(function* () {
      const list = yield* loadEntities(entities)
      const steps: Partial<Record<DialectName, ReadonlyArray<Step>>> = {}
      for (const u of yield* urls(url)) {
        const [dialect, found] = yield* onDatabase(
          u,
          Effect.zip(
            Effect.map(Executor, (ex) => ex.session.dialect.name),
            MigrationFiles.pendingSteps(list, { directory: dir, allowDestructive, table })
          )
        )
        if (steps[dialect] !== undefined) {
          return yield* new MigrationFileError({
            reason: `two database URLs of the same dialect (${dialect})`
          })
        }
        steps[dialect] = found
      }
      if (Object.values(steps).every((s) => s.length === 0)) {
        yield* Console.log("The databases already match the entities: no migration written.")
        return
      }
      const file = yield* MigrationFiles.write(dir, name, steps)
      yield* Console.log(`Wrote ${path.relative(process.cwd(), file)}`)
    })
).pipe(
  Command.withDescription("write a migration with the steps from the database's schema to the entities'")
)

const forEachDatabase = <E, R>(given: ReadonlyArray<string>, effect: Effect.Effect<void, E, R>) =>
  Effect.flatMap(urls(given), (list) => Effect.forEach(list, (u) => onDatabase(u, effect), { discard: true }))

const up = Command.make("up", { dir: dirOption, url: urlOption, table: tableOption }, ({ dir, table, url }) =>
  forEachDatabase(
    url,
    Effect.gen(function* () {
      const ran = yield* MigrationFiles.run(dir, { table })
      const where = yield* label
      yield* Console.log(
        ran.length === 0
          ? `${where}: up to date`
          : `${where}: applied ${ran.map(([id, name]) => `${id}_${name}`).join(", ")}`
      )
    })
  )
).pipe(Command.withDescription("run the migrations the database has not run"))

const status = Command.make(
  "status",
  { dir: dirOption, url: urlOption, table: tableOption },
  ({ dir, table, url }) =>
    forEachDatabase(
      url,
      Effect.gen(function* () {
        const list = yield* MigrationFiles.status(dir, { table })
        yield* Console.log(`${yield* label}:`)
        if (list.length === 0) yield* Console.log("  no migrations")
        for (const m of list) {
          const state = m.applied ? `applied ${m.appliedAt?.toISOString() ?? ""}`.trim() : "pending"
          yield* Console.log(`  ${m.id}_${m.name}  ${state}${m.inFolder ? "" : "  (file missing)"}`)
        }
      })
    )
).pipe(Command.withDescription("list the migrations, applied or pending"))

const diff = Command.make(
  "diff",
  { entities: entitiesOption, url: urlOption, table: tableOption },
  ({ entities, table, url }) =>
    Effect.flatMap(loadEntities(entities), (list) =>
      forEachDatabase(
        url,
        Effect.gen(function* () {
          const steps = yield* Migrations.diff(list, { ignoreTables: [table] })
          yield* Console.log(
            `-- ${yield* label}: ${steps.length === 0 ? "no changes" : `${steps.length} step(s)`}`
          )
          yield* printSteps(steps)
        })
      )
    )
).pipe(Command.withDescription("print the SQL that would bring the database to the entities (runs nothing)"))

const migrate = Command.make("migrate").pipe(
  Command.withDescription("schema migrations from entities"),
  Command.withSubcommands([generate, up, status, diff])
)

/** The whole command line. @since 0.1.0 @category commands */
export const command = Command.make("effect-dal").pipe(Command.withSubcommands([migrate]))

/**
 * What a failure prints: the message of an expected error (a refused destructive step, a pending
 * migration, a database error...), the whole cause for a defect. A usage error was already printed
 * with the help by @effect/cli.
 */
const report = (cause: Cause.Cause<unknown>): Effect.Effect<void> => {
  const failure = Cause.failureOption(cause)
  if (Option.isSome(failure) && ValidationError.isValidationError(failure.value)) return Effect.void
  return Console.error(
    Option.isSome(failure) && failure.value instanceof Error
      ? `effect-dal: ${failure.value.message}`
      : `effect-dal: ${Cause.pretty(cause)}`
  )
}

/** Runs the command line on `argv` (as `process.argv`); a failure exits with code 1. @since 0.1.0 @category running */
export const main = (argv: ReadonlyArray<string>): void =>
  Command.run(command, { name: "effect-dal", version: "0.1.0" })(argv).pipe(
    Effect.tapErrorCause(report),
    Effect.provide(NodeContext.layer),
    NodeRuntime.runMain({ disableErrorReporting: true })
  )
