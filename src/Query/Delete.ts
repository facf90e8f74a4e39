/**
 * DELETE builder. Immutable: each method returns a new builder over a new node.
 *
 * @example
 * const removed = Delete.from(User).where((u) => u.id.eq(7)).exec()
 * @since 0.1.0
 */
import { Effect, Either, Pipeable } from "effect"
import type { EntitySchema } from "../Schema/EntityModel.js"
import type { EntityRegistryService } from "../Schema/EntityRegistry.js"
import type { DeleteNode } from "./Ast.js"
import * as Compiler from "./Compiler.js"
import type { Dialect } from "./Dialect.js"
import type { ExecResult } from "./ExecResult.js"
import type { Executor } from "./Executor.js"
import { type Columns, columnsProxy, conjoin, type Predicate } from "./Expr.js"
import * as Mutation from "./internal/mutation.js"
import { ReturningBuilder, type WriteError } from "./Returning.js"

/**
 * A DELETE from entity `A`'s table.
 *
 * @since 0.1.0 @category models
 */
export class DeleteBuilder<A> implements Pipeable.Pipeable {
  constructor(readonly node: DeleteNode) {}

  pipe() {
    // biome-ignore lint/complexity/noArguments: the Pipeable protocol forwards its arguments.
    return Pipeable.pipeArguments(this, arguments)
  }

  /** Adds a WHERE condition; several calls are joined with AND. Without one, every row is deleted. */
  where(predicate: Predicate | ((columns: Columns<A>) => Predicate)): DeleteBuilder<A> {
    const node = (typeof predicate === "function" ? predicate(columnsProxy<A>()) : predicate).node
    return new DeleteBuilder({
      ...this.node,
      where: conjoin(this.node.where, node)
    })
  }

  /** Returns the deleted rows: every field, or the named ones (PostgreSQL, SQLite, MariaDB 10.5+). */
  returning(): ReturningBuilder<A>
  returning<K extends keyof A & string>(
    ...fields: readonly [K, ...ReadonlyArray<K>]
  ): ReturningBuilder<Pick<A, K>>
  returning(...fields: ReadonlyArray<string>): ReturningBuilder<unknown> {
    const returning = fields.length === 0 ? "*" : fields
    const node: DeleteNode = { ...this.node, returning }
    return new ReturningBuilder(
      plan(node),
      Mutation.returningDecoder(this.node.from.schema as EntitySchema, returning)
    )
  }

  /** The SQL and parameters for `dialect`. */
  compile(
    dialect: Dialect,
    registry: EntityRegistryService = Mutation.defaultRegistry
  ): Either.Either<Compiler.Compiled, Compiler.CompileError> {
    return Mutation.compileOne(plan(this.node), dialect, registry)
  }

  /** Runs the DELETE: `rowsAffected` is the number of rows deleted. */
  exec(): Effect.Effect<ExecResult, WriteError, Executor> {
    return Effect.map(Mutation.run(plan(this.node)), ({ result }) => result)
  }
}

const plan =
  (node: DeleteNode): Mutation.Planner =>
  (dialect, registry) =>
    Either.map(
      Compiler.compile(dialect, registry, (w) => Compiler.del(w, node)),
      ({ statement, model }): Mutation.Plan => ({
        type: "DELETE",
        model,
        statements: [{ statement, builder: node }],
        returningOnMysql: dialect.name === "mysql" && node.returning !== undefined,
        lastInsertId: () => undefined
      })
    )

/**
 * A DELETE from `schema`'s table.
 *
 * @since 0.1.0 @category constructors
 */
export const from = <A, I>(schema: EntitySchema<A, I>): DeleteBuilder<A> =>
  new DeleteBuilder<A>({
    _tag: "Delete",
    from: { _tag: "Table", schema, alias: undefined },
    where: undefined,
    returning: undefined
  })
