/**
 * Tables from entities, on the database of the `Executor` in context: create them, read the live
 * schema, diff the two into statements marked safe or destructive, and apply them (`sync`, for
 * development). Generated migration files for production are in `MigrationFiles`.
 *
 * @example
 * yield* Migrations.sync([User, Post])          // create what is missing, apply safe changes
 * const steps = yield* Migrations.diff([User])  // what sync would run, with each step's risk
 * @since 0.1.0
 */
import { SqlError as DriverSqlError } from "@effect/sql/SqlError"
import { Effect, Either, type Schema } from "effect"
import { Executor } from "../Query/Executor.js"
import { type DatabaseError, fromDriver } from "../Query/QueryError.js"
import type * as Session from "../Query/Session.js"
import type { InvalidEntityError } from "../Schema/EntityError.js"
import * as Ddl from "./Ddl.js"
import * as Diff from "./Diff.js"
import * as Introspect from "./Introspect.js"
import { DestructiveChangeError, type UnsupportedChangeError } from "./MigrationError.js"
import * as TableSpec from "./TableSpec.js"

/** An entity schema (a `Schema.Class` or `Schema.Struct` with entity annotations). @since 0.1.0 @category models */
export type Entity = Schema.Schema.AnyNoContext

/** @since 0.1.0 @category models */
export interface ApplyOptions {
  /** Run destructive steps too (dropped columns and tables, narrowed types...). Default false. */
  readonly allowDestructive?: boolean
}

const session = Effect.map(Executor, (ex) => ex.session)

/** The tables `entities` need on `session`'s dialect, through its registry (per-database names apply). */
const tablesFor = (
  s: Session.Session,
  entities: ReadonlyArray<Entity>
): Either.Either<ReadonlyArray<TableSpec.TableSpec>, InvalidEntityError> =>
  Either.all(
    entities.map((entity) =>
      Either.flatMap(s.registry.get(entity), (model) =>
        TableSpec.fromModel(model, s.dialect.name, (other) => s.registry.get(other as Entity))
      )
    )
  )

/**
 * The tables `entities` need on the current database, as the diff sees them.
 *
 * @since 0.1.0 @category schema
 */
export const tables = (
  entities: ReadonlyArray<Entity>
): Effect.Effect<ReadonlyArray<TableSpec.TableSpec>, InvalidEntityError, Executor> =>
  Effect.flatMap(session, (s) => tablesFor(s, entities))

const run = (s: Session.Session, statements: ReadonlyArray<string>): Effect.Effect<void, DatabaseError> =>
  Effect.forEach(
    statements,
    (statement) =>
      Effect.mapError(s.sql.unsafe(statement).raw, (e: DriverSqlError) => fromDriver(e, statement)),
    { discard: true }
  )

/**
 * The CREATE TABLE (and CREATE INDEX) statements for `entities` on the current database, in
 * foreign-key order, without running them.
 *
 * @since 0.1.0 @category ddl
 */
export const createTablesSql = (
  entities: ReadonlyArray<Entity>,
  options: { readonly ifNotExists?: boolean } = {}
): Effect.Effect<ReadonlyArray<string>, InvalidEntityError, Executor> =>
  Effect.flatMap(session, (s) =>
    Either.map(tablesFor(s, entities), (tables) =>
      Diff.createTables(s.dialect, tables, options).map((step) => step.sql)
    )
  )

/**
 * Creates the tables of `entities` with their indexes and foreign keys, referenced tables first.
 * With `ifNotExists`, tables (and their indexes) that already exist are left as they are.
 *
 * @since 0.1.0 @category ddl
 */
export const createTables = (
  entities: ReadonlyArray<Entity>,
  options: { readonly ifNotExists?: boolean } = {}
): Effect.Effect<void, InvalidEntityError | DatabaseError, Executor> =>
  Effect.flatMap(session, (s) =>
    Effect.flatMap(createTablesSql(entities, options), (statements) =>
      transactional(s, statements.length > 1, run(s, statements))
    )
  )

/** Creates the table of one entity (see `createTables`). @since 0.1.0 @category ddl */
export const createTable = (
  entity: Entity,
  options: { readonly ifNotExists?: boolean } = {}
): Effect.Effect<void, InvalidEntityError | DatabaseError, Executor> => createTables([entity], options)

/** Drops the table of `entity` (and its rows). @since 0.1.0 @category ddl */
export const dropTable = (
  entity: Entity,
  options: { readonly ifExists?: boolean } = {}
): Effect.Effect<void, InvalidEntityError | DatabaseError, Executor> =>
  Effect.flatMap(session, (s) =>
    Effect.flatMap(s.registry.get(entity), (model) =>
      run(s, [Ddl.dropTable(s.dialect, model.table, options.ifExists === true)])
    )
  )

/**
 * The live schema of the current database: every table with its columns, keys, indexes and
 * foreign keys, and whether it holds rows.
 *
 * @since 0.1.0 @category introspection
 */
export const introspect: Effect.Effect<
  ReadonlyArray<TableSpec.TableSpec>,
  DatabaseError,
  Executor
> = Effect.flatMap(session, (s) => Effect.mapError(Introspect.tables(s.sql, s.dialect), (e) => fromDriver(e)))

/**
 * The steps that turn the current database's schema (or `live`, when given) into the one `entities`
 * describe. Tables no entity describes are left alone unless `dropUnknownTables`.
 *
 * @since 0.1.0 @category diff
 */
export const diff = (
  entities: ReadonlyArray<Entity>,
  options: Diff.Options & { readonly live?: ReadonlyArray<TableSpec.TableSpec> } = {}
): Effect.Effect<
  ReadonlyArray<Diff.Step>,
  InvalidEntityError | UnsupportedChangeError | DatabaseError,
  Executor
> =>
  Effect.gen(function* () {
    const s = yield* session
    const want = yield* tablesFor(s, entities)
    const live = options.live ?? (yield* introspect)
    return yield* Diff.diff(s.dialect, want, live, options)
  })

/**
 * Runs `effect` in a transaction where DDL is transactional (PostgreSQL, SQLite), so a failing step
 * leaves the schema as it was. MySQL/MariaDB commit each DDL statement on their own.
 */
const transactional = <A, E>(
  s: Session.Session,
  wanted: boolean,
  effect: Effect.Effect<A, E>
): Effect.Effect<A, E | DatabaseError> =>
  !wanted || s.dialect.name === "mysql"
    ? effect
    : Effect.mapError(s.sql.withTransaction(effect), (e) => (e instanceof DriverSqlError ? fromDriver(e) : e))

/**
 * SQLite rebuilds run with foreign-key enforcement off (dropping the old table would otherwise
 * cascade into the tables that reference it) and end with a foreign-key check inside the transaction.
 */
const withSqliteRebuild = (
  s: Session.Session,
  steps: ReadonlyArray<Diff.Step>,
  effect: Effect.Effect<void, DatabaseError>
): Effect.Effect<void, DatabaseError> => {
  if (s.dialect.name !== "sqlite" || !steps.some((step) => step.description.startsWith("rebuild "))) {
    return transactional(s, true, effect)
  }
  const pragma = (text: string) =>
    Effect.mapError(s.sql.unsafe<Record<string, unknown>>(text).withoutTransform, (e) => fromDriver(e, text))
  const check = Effect.flatMap(pragma("PRAGMA foreign_key_check"), (violations) =>
    violations.length === 0
      ? Effect.void
      : Effect.fail(
          fromDriver(
            new Error(
              `foreign key check failed after a table rebuild: ${JSON.stringify(violations.slice(0, 5))}`
            ),
            "PRAGMA foreign_key_check"
          )
        )
  )
  return Effect.flatMap(pragma("PRAGMA foreign_keys"), (rows) => {
    const enforced = Number(Object.values(rows[0] ?? {})[0] ?? 0) === 1
    const body = transactional(s, true, Effect.zipRight(effect, check))
    return enforced
      ? Effect.ensuring(
          Effect.zipRight(pragma("PRAGMA foreign_keys = OFF"), body),
          Effect.ignore(pragma("PRAGMA foreign_keys = ON"))
        )
      : body
  })
}

/**
 * Runs `steps` in order. With a destructive step among them and no `allowDestructive`, fails with
 * `DestructiveChangeError` listing them and runs nothing. On PostgreSQL and SQLite the steps run in
 * one transaction.
 *
 * @since 0.1.0 @category apply
 */
export const apply = (
  steps: ReadonlyArray<Diff.Step>,
  options: ApplyOptions = {}
): Effect.Effect<void, DestructiveChangeError | DatabaseError, Executor> =>
  Effect.flatMap(session, (s): Effect.Effect<void, DestructiveChangeError | DatabaseError> => {
    const destructive = steps.filter((step) => step.destructive !== undefined)
    if (destructive.length > 0 && options.allowDestructive !== true) {
      return Effect.fail(new DestructiveChangeError({ steps: destructive }))
    }
    return withSqliteRebuild(
      s,
      steps,
      run(
        s,
        steps.map((step) => step.sql)
      )
    )
  })

/**
 * Brings the current database to `entities` for development (GORM's AutoMigrate): creates missing
 * tables and applies every safe step; when destructive steps remain (and `allowDestructive` is not
 * set) it then fails with `DestructiveChangeError` listing them, none of them run.
 *
 * @since 0.1.0 @category apply
 */
export const sync = (
  entities: ReadonlyArray<Entity>,
  options: ApplyOptions & Diff.Options = {}
): Effect.Effect<
  ReadonlyArray<Diff.Step>,
  InvalidEntityError | UnsupportedChangeError | DestructiveChangeError | DatabaseError,
  Executor
> =>
  Effect.gen(function* () {
    const steps = yield* diff(entities, options)
    const allowed = options.allowDestructive === true
    const destructive = steps.filter((step) => step.destructive !== undefined)
    const runnable = allowed ? steps : steps.filter((step) => step.destructive === undefined)
    yield* apply(runnable, { allowDestructive: allowed })
    if (!allowed && destructive.length > 0) return yield* new DestructiveChangeError({ steps: destructive })
    return runnable
  })
