/**
 * What the builders share: the registry they compile with outside a database; and, for INSERT,
 * UPDATE and DELETE, a plan of compiled statements run through the Executor (in one transaction
 * when there are several), and the check that RETURNING on the `mysql` dialect meets a MariaDB
 * server.
 *
 * @internal
 */
import { Effect, Either, Schema } from "effect"
import type { EntityModel, EntitySchema } from "../../Schema/EntityModel.js"
import * as EntityRegistry from "../../Schema/EntityRegistry.js"
import type { Returning } from "../Ast.js"
import * as Batch from "../Batch.js"
import type * as Compiler from "../Compiler.js"
import type { Dialect } from "../Dialect.js"
import type { ExecResult } from "../ExecResult.js"
import { Executor, type QueryResult, type QueryType, type Row } from "../Executor.js"
import { fromDriver, QueryBuildError, type QueryError } from "../QueryError.js"
import * as RowDecoder from "../RowDecoder.js"
import * as Session from "../Session.js"

/** The registry `compile` uses when given none: annotations only, no per-database overrides. @internal */
export const defaultRegistry = EntityRegistry.make()

/** What a statement reported: the driver's count and id, and RETURNING rows. @internal */
export interface Outcome {
  readonly rowsAffected: number
  readonly lastInsertId: number | bigint | undefined
  readonly rows: ReadonlyArray<Row>
}

/** The statements one builder runs, in order. @internal */
export interface Plan {
  readonly type: QueryType
  readonly model: EntityModel
  readonly statements: ReadonlyArray<{ readonly statement: Compiler.Compiled; readonly builder: unknown }>
  /** RETURNING on the `mysql` dialect: MariaDB 10.5+ has it for INSERT and DELETE, MySQL has none. */
  readonly returningOnMysql: boolean
  /** The normalised `lastInsertId` from the statements' outcomes. */
  readonly lastInsertId: (outcomes: ReadonlyArray<Outcome>) => number | bigint | undefined
}

/** @internal */
export type Planner = (
  dialect: Dialect,
  registry: EntityRegistry.EntityRegistryService
) => Either.Either<Plan, Compiler.CompileError>

/** @internal */
export const compileAll = (
  planner: Planner,
  dialect: Dialect,
  registry: EntityRegistry.EntityRegistryService
): Either.Either<ReadonlyArray<Compiler.Compiled>, Compiler.CompileError> =>
  Either.map(planner(dialect, registry), (plan) => plan.statements.map((s) => s.statement))

/** @internal */
export const compileOne = (
  planner: Planner,
  dialect: Dialect,
  registry: EntityRegistry.EntityRegistryService
): Either.Either<Compiler.Compiled, Compiler.CompileError> =>
  Either.flatMap(compileAll(planner, dialect, registry), (statements) =>
    statements.length === 1 && statements[0] !== undefined
      ? Either.right(statements[0])
      : Either.left(
          new QueryBuildError({
            reason: `This statement compiles to ${statements.length} statements: use compileAll`
          })
        )
  )

/** Whether the server behind each `mysql` session is MariaDB 10.5+, asked once per session. */
const mariadbReturning = new WeakMap<Session.Session, boolean>()

const mariadbVersion = /^(\d+)\.(\d+)\..*mariadb/i

/** Whether a `SELECT VERSION()` answer is MariaDB 10.5 or later (INSERT/DELETE ... RETURNING). @internal */
export const supportsReturning = (version: string): boolean => {
  const match = mariadbVersion.exec(version)
  return match !== null && Number(match[1]) * 100 + Number(match[2]) >= 1005
}

const checkReturning = (session: Session.Session): Effect.Effect<void, QueryError> => {
  const refuse = new QueryBuildError({
    reason: "RETURNING needs PostgreSQL, SQLite or MariaDB 10.5+; this MySQL server has none"
  })
  const known = mariadbReturning.get(session)
  if (known !== undefined) return known ? Effect.void : Effect.fail(refuse)
  const probe = "SELECT VERSION() AS v"
  return Effect.flatMap(
    Effect.mapError(
      Session.run(session, session.sql.unsafe<{ readonly v?: unknown }>(probe).withoutTransform),
      (e) => fromDriver(e, probe)
    ),
    (rows) => {
      const supported = supportsReturning(String(rows[0]?.v ?? ""))
      mariadbReturning.set(session, supported)
      return supported ? Effect.void : Effect.fail(refuse)
    }
  )
}

const outcome = (result: QueryResult): Outcome =>
  result._tag === "Exec"
    ? { rowsAffected: result.rowsAffected, lastInsertId: result.lastInsertId, rows: result.rows }
    : { rowsAffected: result.rows.length, lastInsertId: undefined, rows: result.rows }

/**
 * Runs a plan through the Executor: several statements run in the caller's transaction, or in one
 * of their own (`Batch.atomically`), so the whole builder is all or nothing.
 *
 * @internal
 */
export const run = (
  planner: Planner
): Effect.Effect<
  { readonly result: ExecResult; readonly rows: ReadonlyArray<Row>; readonly model: EntityModel },
  QueryError | Compiler.CompileError,
  Executor
> =>
  Effect.flatMap(Executor, (ex) =>
    Effect.flatMap(planner(ex.session.dialect, ex.session.registry), (plan) => {
      const statements = Effect.forEach(plan.statements, ({ statement, builder }) =>
        Effect.map(
          ex.execute({
            type: plan.type,
            model: plan.model,
            table: plan.model.table,
            statement,
            builder,
            expects: "exec",
            session: ex.session
          }),
          outcome
        )
      )
      const all = plan.statements.length > 1 ? Batch.atomically(ex.session, statements) : statements
      const checked = plan.returningOnMysql ? Effect.zipRight(checkReturning(ex.session), all) : all
      return Effect.map(checked, (outcomes) => ({
        model: plan.model,
        rows: outcomes.flatMap((o) => o.rows),
        result: {
          rowsAffected: outcomes.reduce((n, o) => n + o.rowsAffected, 0),
          lastInsertId: plan.lastInsertId(outcomes)
        }
      }))
    })
  )

/**
 * The decoder of RETURNING rows: the whole entity for `"*"`, else the named fields.
 *
 * @internal
 */
export const returningDecoder = <R>(schema: EntitySchema, returning: Returning): RowDecoder.RowDecoder<R> => {
  if (returning === "*" || returning === undefined) return RowDecoder.entity<R>()
  // An entity's fields need no context (EntitySchema has R = never), so neither does a subset.
  const picked = Schema.Struct(
    Object.fromEntries(
      returning.flatMap((f) => (schema.fields[f] === undefined ? [] : [[f, schema.fields[f]]]))
    )
  ) as unknown as Schema.Schema<R>
  return RowDecoder.entity(Schema.decodeUnknownEither(picked), returning)
}
