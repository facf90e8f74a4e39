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

/**
 * How the rows of a SELECT are keyed: by column name (entity rows, decoded through the entity) or
 * by alias (projections, decoded through the caller's schema). A derived table keeps it so an outer
 * query can decode its columns.
 *
 * @since 0.1.0 @category nodes
 */
export interface RowShape {
  readonly keyed: "column" | "alias"
  readonly schema: Schema.Schema.AnyNoContext
}

/** A subquery in FROM or JOIN, named by its alias (`(SELECT ...) AS "t"`). @since 0.1.0 @category nodes */
export interface DerivedSource {
  readonly _tag: "Derived"
  readonly select: SelectNode
  readonly alias: string
  readonly shape: RowShape
}

/** What FROM and JOIN read: a table or a derived table. @since 0.1.0 @category nodes */
export type FromSource = TableSource | DerivedSource

/** @since 0.1.0 @category nodes */
export type JoinKind = "INNER" | "LEFT" | "RIGHT"

/** One JOIN: `ON` a predicate or `USING` columns of the same name (fields of the joined source). @since 0.1.0 @category nodes */
export interface JoinNode {
  readonly kind: JoinKind
  readonly source: FromSource
  readonly on: ExprNode | undefined
  readonly using: ReadonlyArray<string> | undefined
}

/** One selected expression; `alias` names it in the result row. @since 0.1.0 @category nodes */
export interface SelectionNode {
  readonly expr: ExprNode
  readonly alias: string | undefined
}

/** @since 0.1.0 @category nodes */
export interface SelectNode {
  readonly _tag: "Select"
  readonly from: FromSource
  /** Absent when the statement reads one table. */
  readonly joins?: ReadonlyArray<JoinNode>
  /** `undefined`: every mapped column of the root source, in metadata order. */
  readonly selection: ReadonlyArray<SelectionNode> | undefined
  readonly distinct: boolean
  readonly where: ExprNode | undefined
  readonly groupBy: ReadonlyArray<ExprNode>
  readonly having: ExprNode | undefined
  readonly orderBy: ReadonlyArray<Ordering>
  readonly limit: number | undefined
  readonly offset: number | undefined
}

/** `column = value` in UPDATE SET or an upsert's update list. @since 0.1.0 @category nodes */
export interface Assignment {
  readonly field: string
  readonly value: ExprNode
}

/** What an INSERT does when a row collides with a unique key. @since 0.1.0 @category nodes */
export interface ConflictNode {
  /** The unique columns (fields) that detect the conflict; MySQL/MariaDB check every unique key. */
  readonly target: ReadonlyArray<string> | undefined
  /** `Update` with `set` undefined: every inserted column except the target and primary key. */
  readonly action:
    | { readonly _tag: "Nothing" }
    | { readonly _tag: "Update"; readonly set: ReadonlyArray<Assignment> | undefined }
}

/** Fields a statement returns; `"*"` is every persisted field (written out, never `*`). @since 0.1.0 @category nodes */
export type Returning = ReadonlyArray<string> | "*" | undefined

/** @since 0.1.0 @category nodes */
export interface InsertNode {
  readonly _tag: "Insert"
  readonly into: TableSource
  /** Entity values (the schema's type side); encoded through the schema when compiled. */
  readonly rows: ReadonlyArray<unknown>
  /** Only these fields are written; `undefined`: every persisted field a row gives. */
  readonly columns: ReadonlyArray<string> | undefined
  readonly onConflict: ConflictNode | undefined
  readonly returning: Returning
}

/** @since 0.1.0 @category nodes */
export interface UpdateNode {
  readonly _tag: "Update"
  readonly table: TableSource
  readonly set: ReadonlyArray<Assignment>
  readonly where: ExprNode | undefined
  readonly returning: Returning
}

/** @since 0.1.0 @category nodes */
export interface DeleteNode {
  readonly _tag: "Delete"
  readonly from: TableSource
  readonly where: ExprNode | undefined
  readonly returning: Returning
}
