/**
 * What the write builders share: RETURNING (INSERT, UPDATE, DELETE), and WHERE, compile and exec
 * over a node with a `where` and a `returning` (UPDATE, DELETE).
 *
 * @internal
 */
import { Effect, type Either, Pipeable } from "effect"
import type { EntitySchema } from "../../Schema/EntityModel.js"
import type { EntityRegistryService } from "../../Schema/EntityRegistry.js"
import type { Returning } from "../Ast.js"
import type * as Compiler from "../Compiler.js"
import type { Dialect } from "../Dialect.js"
import type { ExecResult } from "../ExecResult.js"
import type { Executor } from "../Executor.js"
import { type Columns, columnsProxy, conjoin, type ExprNode, type Predicate } from "../Expr.js"
import { ReturningBuilder, type WriteError } from "../Returning.js"
import * as Mutation from "./mutation.js"

/** @internal */
export interface FilteredNode {
  readonly where: ExprNode | undefined
  readonly returning: Returning
}

/**
 * The RETURNING builder of a write: the named fields, or every one when none is named, planned by
 * `planFor` and decoded through `schema`.
 *
 * @internal
 */
export const returningFor = (
  schema: EntitySchema,
  fields: ReadonlyArray<string>,
  planFor: (returning: Returning) => Mutation.Planner
): ReturningBuilder<unknown> => {
  const returning = fields.length === 0 ? "*" : fields
  return new ReturningBuilder(planFor(returning), Mutation.returningDecoder(schema, returning))
}

/** @internal */
export abstract class FilteredWrite<A, N extends FilteredNode, Self> implements Pipeable.Pipeable {
  readonly node: N
  constructor(node: N) {
    this.node = node
  }

  /** A builder of the same kind over `node`. */
  protected abstract rebuild(node: N): Self
  /** The statements `node` compiles to. */
  protected abstract planner(node: N): Mutation.Planner
  /** The entity the statement writes. */
  protected abstract readonly schema: EntitySchema

  pipe() {
    // biome-ignore lint/complexity/noArguments: the Pipeable protocol forwards its arguments.
    return Pipeable.pipeArguments(this, arguments)
  }

  /** Adds a WHERE condition; several calls are joined with AND. Without one, every row is written. */
  where(predicate: Predicate | ((columns: Columns<A>) => Predicate)): Self {
    const added = (typeof predicate === "function" ? predicate(columnsProxy<A>()) : predicate).node
    return this.rebuild({ ...this.node, where: conjoin(this.node.where, added) })
  }

  /** Returns the rows written: every field, or the named ones (see each builder for the dialects). */
  returning(): ReturningBuilder<A>
  returning<K extends keyof A & string>(
    ...fields: readonly [K, ...ReadonlyArray<K>]
  ): ReturningBuilder<Pick<A, K>>
  returning(...fields: ReadonlyArray<string>): ReturningBuilder<unknown> {
    return returningFor(this.schema, fields, (returning) => this.planner({ ...this.node, returning }))
  }

  /** The SQL and parameters for `dialect`. */
  compile(
    dialect: Dialect,
    registry: EntityRegistryService = Mutation.defaultRegistry
  ): Either.Either<Compiler.Compiled, Compiler.CompileError> {
    return Mutation.compileOne(this.planner(this.node), dialect, registry)
  }

  /** Runs the statement (see `ExecResult` for what `rowsAffected` counts). */
  exec(): Effect.Effect<ExecResult, WriteError, Executor> {
    return Effect.map(Mutation.run(this.planner(this.node)), ({ result }) => result)
  }
}
