/**
 * UPDATE builder. Immutable: each method returns a new builder over a new node.
 *
 * @example
 * const older = Update.table(User)
 *   .set((u) => ({ age: u.age.add(1) }))
 *   .where((u) => u.id.eq(7))
 *   .exec()
 * @since 0.1.0
 */
import { Either } from "effect"
import type { EntitySchema } from "../Schema/EntityModel.js"
import type { Assignment, UpdateNode } from "./Ast.js"
import * as Compiler from "./Compiler.js"
import { type Columns, columnsProxy, Expr, type ExprNode, type Operand } from "./Expr.js"
import { FilteredWrite } from "./internal/filtered.js"
import * as Mutation from "./internal/mutation.js"

/**
 * New values by field: plain values (bound, encoded through the field's schema; `null` writes NULL)
 * or expressions. An `undefined` value is skipped, never written as NULL.
 *
 * @since 0.1.0 @category models
 */
export type Assignments<A> = { readonly [K in keyof A]?: Operand<A[K]> }

/**
 * A partial entity for `setPartial`: any field may be left out or `undefined` (skipped); a nullable
 * or optional field may be `null` (written as NULL, which reads back as absent for an optional one).
 *
 * @since 0.1.0 @category models
 */
export type Patch<A> = {
  readonly [K in keyof A]?: A[K] | undefined | (undefined extends A[K] ? null : never)
}

/**
 * The assignments of an object, in key order; `undefined` values are skipped.
 *
 * @since 0.1.0 @category constructors
 */
export const assignments = (values: object, skip?: (field: string) => boolean): ReadonlyArray<Assignment> =>
  Object.entries(values).flatMap(([field, value]): Array<Assignment> => {
    if (value === undefined || skip?.(field) === true) return []
    const node: ExprNode = value instanceof Expr ? value.node : { _tag: "Value", value }
    return [{ field, value: node }]
  })

/**
 * An UPDATE of entity `A`'s table: `set`/`setPartial`, `where` (without one, every row is updated),
 * `returning` (PostgreSQL and SQLite only), `compile`, and `exec` (`rowsAffected`: the rows the WHERE
 * matched).
 *
 * @since 0.1.0 @category models
 */
export class UpdateBuilder<A> extends FilteredWrite<A, UpdateNode, UpdateBuilder<A>> {
  protected rebuild(node: UpdateNode): UpdateBuilder<A> {
    return new UpdateBuilder(node)
  }

  protected planner(node: UpdateNode): Mutation.Planner {
    return plan(node)
  }

  protected get schema(): EntitySchema {
    return this.node.table.schema as EntitySchema
  }

  private with(patch: Partial<UpdateNode>): UpdateBuilder<A> {
    return new UpdateBuilder({ ...this.node, ...patch })
  }

  private merge(set: ReadonlyArray<Assignment>): UpdateBuilder<A> {
    const later = new Set(set.map((a) => a.field))
    return this.with({ set: [...this.node.set.filter((a) => !later.has(a.field)), ...set] })
  }

  /** Sets fields to values or expressions of the current row (`(u) => ({ age: u.age.add(1) })`); later calls win per field. */
  set(values: Assignments<A> | ((columns: Columns<A>) => Assignments<A>)): UpdateBuilder<A> {
    return this.merge(assignments(typeof values === "function" ? values(columnsProxy<A>()) : values))
  }

  /**
   * Sets the fields a partial entity gives: `undefined` is skipped, `null` writes NULL. Primary key
   * fields (they belong in WHERE) and fields the entity ignores are skipped too.
   */
  setPartial(entity: Patch<A>): UpdateBuilder<A> {
    const model = Mutation.defaultRegistry.get(this.node.table.schema)
    const skip = Either.match(model, {
      onLeft: () => () => false,
      onRight: (m) => (field: string) =>
        m.ignored.includes(field) || m.primaryKey.some((f) => f.field === field)
    })
    return this.merge(assignments(entity, skip))
  }
}

const plan =
  (node: UpdateNode): Mutation.Planner =>
  (dialect, registry) =>
    Either.map(
      Compiler.compile(dialect, registry, (w) => Compiler.update(w, node)),
      ({ statement, model }): Mutation.Plan => ({
        type: "UPDATE",
        model,
        statements: [{ statement, description: { _tag: "Update", node } }],
        returningOnServer: false,
        lastInsertId: () => undefined
      })
    )

/**
 * An UPDATE of `schema`'s table.
 *
 * @since 0.1.0 @category constructors
 */
export const table = <A, I>(schema: EntitySchema<A, I>): UpdateBuilder<A> =>
  new UpdateBuilder<A>({
    _tag: "Update",
    table: { _tag: "Table", schema, alias: undefined },
    set: [],
    where: undefined,
    returning: undefined
  })
