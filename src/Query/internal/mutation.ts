/**
 * What the builders share: the registry they compile with outside a database; and, for INSERT,
 * UPDATE and DELETE, a plan of compiled statements run through the Executor (in one transaction
 * when there are several), and the check that RETURNING on a dialect where only some servers have
 * it meets one that does.
 *
 * @internal
 */
import { Effect, Either, Schema } from "effect"
import type { EntityModel, EntitySchema } from "../../Schema/EntityModel.js"
import * as EntityRegistry from "../../Schema/EntityRegistry.js"
import type { Returning } from "../Ast.js"
import * as Batch from "../Batch.js"
import * as Compiler from "../Compiler.js"
import type { Description } from "../Description.js"
import type { Dialect } from "../Dialect.js"
import type { ExecResult } from "../ExecResult.js"
import { Executor, type QueryResult, type QueryType, type Row } from "../Executor.js"
import { QueryBuildError, type QueryError } from "../QueryError.js"
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
  readonly statements: ReadonlyArray<{
    readonly statement: Compiler.Compiled
    readonly description: Description
  }>
  /** RETURNING on a dialect where only some servers have it (MariaDB 10.5+ for INSERT and DELETE, MySQL none). */
  readonly returningOnServer: boolean
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

const checkReturning = (session: Session.Session): Effect.Effect<void, QueryError> =>
  Effect.flatMap(Session.server(session), (server) =>
    server.returning
      ? Effect.void
      : Effect.fail(
          new QueryBuildError({
            reason: "RETURNING needs PostgreSQL, SQLite or MariaDB 10.5+; this MySQL server has none"
          })
        )
  )

/**
 * RETURNING rows without the ones a do-nothing insert left alone: where the compiler counted
 * conflicts (`Compiler.conflictMarker`), a row whose count grew was a conflict; the count is dropped.
 */
const withoutConflicts = (rows: ReadonlyArray<Row>): ReadonlyArray<Row> => {
  const first = rows[0]
  if (first === undefined || !(Compiler.conflictMarker in first)) return rows
  const kept: Array<Row> = []
  let conflicts = 0
  for (const row of rows) {
    const { [Compiler.conflictMarker]: count, ...rest } = row
    const n = Number(count)
    if (n === conflicts) kept.push(rest)
    conflicts = n
  }
  return kept
}

const outcome = (result: QueryResult): Outcome =>
  result._tag === "Exec"
    ? {
        rowsAffected: result.rowsAffected,
        lastInsertId: result.lastInsertId,
        rows: withoutConflicts(result.rows)
      }
    : { rowsAffected: result.rows.length, lastInsertId: undefined, rows: withoutConflicts(result.rows) }

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
      const statements = Effect.forEach(plan.statements, ({ statement, description }) =>
        Effect.map(
          ex.execute({
            type: plan.type,
            model: plan.model,
            table: plan.model.table,
            statement,
            description,
            expects: "exec",
            session: ex.session
          }),
          outcome
        )
      )
      const all = plan.statements.length > 1 ? Batch.atomically(ex.session, statements) : statements
      const checked = plan.returningOnServer ? Effect.zipRight(checkReturning(ex.session), all) : all
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
