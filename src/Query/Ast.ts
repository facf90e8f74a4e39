/**
 * Statement nodes: the immutable data a builder holds and a dialect compiler reads.
 *
 * @since 0.1.0
 */
import type { Schema } from "effect"
import type { ExprNode, Ordering } from "./Expr.js"

/** A table named by an entity schema, optionally aliased. @since 0.1.0 @category nodes */
export interface TableSource {
  readonly _tag: "Table"
  readonly schema: Schema.Schema.AnyNoContext
  readonly alias: string | undefined
}

/** One selected expression; `alias` names it in the result row. @since 0.1.0 @category nodes */
export interface SelectionNode {
  readonly expr: ExprNode
  readonly alias: string | undefined
}

/** @since 0.1.0 @category nodes */
export interface SelectNode {
  readonly _tag: "Select"
  readonly from: TableSource
  /** `undefined`: every mapped column of the entity, in metadata order. */
  readonly selection: ReadonlyArray<SelectionNode> | undefined
  readonly distinct: boolean
  readonly where: ExprNode | undefined
  readonly groupBy: ReadonlyArray<ExprNode>
  readonly having: ExprNode | undefined
  readonly orderBy: ReadonlyArray<Ordering>
  readonly limit: number | undefined
  readonly offset: number | undefined
}
