/**
 * DELETE builder. Immutable: each method returns a new builder over a new node.
 *
 * @example
 * const removed = Delete.from(User).where((u) => u.id.eq(7)).exec()
 * @since 0.1.0
 */
import { Either } from "effect"
import type { EntitySchema } from "../Schema/EntityModel.js"
import type { DeleteNode } from "./Ast.js"
import * as Compiler from "./Compiler.js"
import { FilteredWrite } from "./internal/filtered.js"
import type * as Mutation from "./internal/mutation.js"

/**
 * A DELETE from entity `A`'s table: `where` (without one, every row is deleted), `returning` (PostgreSQL,
 * SQLite, MariaDB 10.5+), `compile`, and `exec` (`rowsAffected`: the rows deleted).
 *
 * @since 0.1.0 @category models
 */
export class DeleteBuilder<A> extends FilteredWrite<A, DeleteNode, DeleteBuilder<A>> {
  protected rebuild(node: DeleteNode): DeleteBuilder<A> {
    return new DeleteBuilder(node)
  }

  protected planner(node: DeleteNode): Mutation.Planner {
    return plan(node)
  }

  protected get schema(): EntitySchema {
    return this.node.from.schema as EntitySchema
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
        statements: [{ statement, description: { _tag: "Delete", node } }],
        returningOnServer: dialect.returning === "serverDependent" && node.returning !== undefined,
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
