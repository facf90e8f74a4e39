/**
 * Guards against writes that touch a whole table. `make` refuses an UPDATE or DELETE whose WHERE
 * cannot narrow the rows with `UnsafeDmlError` before it reaches the database, unless the statement
 * runs inside `SafeDml.allow`. `noDelete` refuses every DELETE.
 *
 * The decision is made on the statement's description, never on SQL text:
 * - a built UPDATE/DELETE is refused when its WHERE, simplified, is constant-true or does not depend
 *   on the row: absent; an empty AND; `notIn([])`; `not(or())`; `or(p, not(p))`; `x IS NULL OR x IS
 *   NOT NULL`; a primary key `IS NOT NULL`; a column compared with itself (`=`, `<=`, `>=`, `LIKE
 *   '%'`); a comparison of values only (`Expr.value(1).eq(1)`); an `EXISTS` not correlated with the
 *   table; a raw fragment that is a literal truth (`1=1`, `TRUE`, `1`). Any other raw fragment is
 *   taken to depend on the row.
 * - a RAW UPDATE or DELETE (found by the lexer, after comments and `WITH`) with no WHERE, and a
 *   TRUNCATE, are refused too.
 *
 * `noDelete` refuses a built DELETE and any RAW statement that deletes rows (DELETE, TRUNCATE, also
 * inside a CTE) or whose writes cannot be named (DDL such as DROP TABLE, CALL, DO...).
 *
 * @example
 * const purge = SafeDml.allow(Delete.from(User).exec()) // every row, on purpose
 * @since 0.1.0
 */
import { Effect, FiberRef, type Layer, Stream } from "effect"
import { globalValue } from "effect/GlobalValue"
import type { SelectNode } from "../Query/Ast.js"
import * as Executor from "../Query/Executor.js"
import type { ExprNode } from "../Query/Expr.js"
import { UnsafeDmlError } from "../Query/QueryError.js"

/** Whether whole-table writes are allowed for the statements of the current fiber. @since 0.1.0 @category fiber refs */
export const allowed: FiberRef.FiberRef<boolean> = globalValue(Symbol.for("effect-dal/SafeDml/allowed"), () =>
  FiberRef.unsafeMake(false)
)

/**
 * Runs `effect` with whole-table UPDATE and DELETE allowed; wrap the one statement that means it.
 *
 * @since 0.1.0 @category combinators
 */
export const allow = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.locally(effect, allowed, true)

/**
 * What a predicate is over the rows of the table: always true, always false, the same for every row
 * but not known here (`constant`), or dependent on the row.
 *
 * @since 0.1.0 @category models
 */
export type Truth = "true" | "false" | "constant" | "row"

const tautology = /^\s*\(?\s*(?:1\s*=\s*1|true|1|'1'\s*=\s*'1'|0\s*=\s*0)\s*\)?\s*$/i
const contradiction = /^\s*\(?\s*(?:1\s*=\s*0|0\s*=\s*1|false|0)\s*\)?\s*$/i

/** Whether `node` reads a column of the table being written (`outer`: the names a correlated reference uses). */
const readsRow = (node: ExprNode | undefined, outer: ReadonlySet<string>, top: boolean): boolean => {
  if (node === undefined) return false
  switch (node._tag) {
    case "Column":
      return top
        ? node.source === undefined || outer.has(node.source)
        : node.source !== undefined && outer.has(node.source)
    case "Value":
    case "Excluded":
      return false
    case "Raw":
      return true
    case "Binary":
      return readsRow(node.left, outer, top) || readsRow(node.right, outer, top)
    case "In":
      return readsRow(node.operand, outer, top) || node.values.some((v) => readsRow(v, outer, top))
    case "IsNull":
    case "Not":
      return readsRow(node.operand, outer, top)
    case "Between":
      return [node.operand, node.low, node.high].some((n) => readsRow(n, outer, top))
    case "And":
    case "Or":
      return node.operands.some((o) => readsRow(o, outer, top))
    case "Aggregate":
      return readsRow(node.operand, outer, top)
    case "InSubquery":
      return readsRow(node.operand, outer, top) || selectReadsRow(node.query, outer)
    case "Exists":
    case "Quantified":
    case "Subquery":
      return selectReadsRow(node.query, outer)
  }
}

/** A subquery depends on the row when it references the outer table by name (a correlated subquery). */
const selectReadsRow = (query: SelectNode, outer: ReadonlySet<string>): boolean =>
  [
    query.where,
    query.having,
    ...(query.selection ?? []).map((s) => s.expr),
    ...query.groupBy,
    ...query.orderBy.map((o) => o.expr),
    ...(query.joins ?? []).map((j) => j.on)
  ].some((n) => readsRow(n, outer, false)) ||
  (query.from._tag === "Derived" && selectReadsRow(query.from.select, outer))

const sameNode = (a: ExprNode, b: ExprNode): boolean => JSON.stringify(a) === JSON.stringify(b)

const complementary = (a: ExprNode, b: ExprNode): boolean =>
  (a._tag === "Not" && sameNode(a.operand, b)) ||
  (b._tag === "Not" && sameNode(b.operand, a)) ||
  (a._tag === "IsNull" && b._tag === "IsNull" && a.negated !== b.negated && sameNode(a.operand, b.operand))

const compareValues = (op: string, l: unknown, r: unknown): Truth => {
  const comparable =
    (typeof l === "number" && typeof r === "number") || (typeof l === "string" && typeof r === "string")
  if (!comparable) return "constant"
  const a = l as number | string
  const b = r as number | string
  switch (op) {
    case "=":
      return a === b ? "true" : "false"
    case "<>":
      return a !== b ? "true" : "false"
    case "<":
      return a < b ? "true" : "false"
    case "<=":
      return a <= b ? "true" : "false"
    case ">":
      return a > b ? "true" : "false"
    case ">=":
      return a >= b ? "true" : "false"
  }
  return "constant"
}

/**
 * Simplifies a predicate over the rows of `table` (whose primary-key fields are `keys`).
 *
 * @since 0.1.0 @category predicates
 */
export const truth = (node: ExprNode, table: string, keys: ReadonlySet<string>): Truth => {
  const outer = new Set([table])
  const go = (n: ExprNode): Truth => {
    switch (n._tag) {
      case "And": {
        const parts = n.operands.map(go)
        if (parts.includes("false")) return "false"
        if (parts.includes("row")) return "row"
        return parts.includes("constant") ? "constant" : "true"
      }
      case "Or": {
        for (let i = 0; i < n.operands.length; i++) {
          for (let j = i + 1; j < n.operands.length; j++) {
            if (complementary(n.operands[i] as ExprNode, n.operands[j] as ExprNode)) return "true"
          }
        }
        const parts = n.operands.map(go)
        if (parts.includes("true")) return "true"
        if (parts.includes("constant")) return "constant"
        return parts.includes("row") ? "row" : "false"
      }
      case "Not": {
        const inner = go(n.operand)
        return inner === "true" ? "false" : inner === "false" ? "true" : inner
      }
      case "In":
        if (n.values.length === 0) return n.negated ? "true" : "false"
        return readsRow(n, outer, true) ? "row" : "constant"
      case "Raw":
        return tautology.test(n.sql) ? "true" : contradiction.test(n.sql) ? "false" : "row"
      case "Value":
        return n.value === true ? "true" : n.value === false ? "false" : "constant"
      case "IsNull":
        if (n.operand._tag === "Column" && n.operand.source === undefined && keys.has(n.operand.field)) {
          return n.negated ? "true" : "false"
        }
        return readsRow(n, outer, true) ? "row" : "constant"
      case "Binary": {
        const { left, right, op } = n
        if (left._tag === "Column" && right._tag === "Column" && sameNode(left, right)) {
          return op === "=" || op === "<=" || op === ">=" || op === "LIKE" ? "true" : "false"
        }
        if (
          (op === "LIKE" || op === "NOT LIKE") &&
          right._tag === "Value" &&
          typeof right.value === "string" &&
          /^%+$/.test(right.value)
        ) {
          return op === "LIKE" ? "true" : "false"
        }
        if (left._tag === "Value" && right._tag === "Value") return compareValues(op, left.value, right.value)
        return readsRow(n, outer, true) ? "row" : "constant"
      }
      default:
        return readsRow(n, outer, true) ? "row" : "constant"
    }
  }
  return go(node)
}

const unsafe = (t: Truth) => t === "true" || t === "constant"

/**
 * Why `ctx` writes every row of its table, or `undefined` when it does not: an UPDATE or DELETE whose
 * WHERE is absent or constant-true, a RAW UPDATE/DELETE without WHERE, a TRUNCATE.
 *
 * @since 0.1.0 @category predicates
 */
export const wholeTable = (ctx: Executor.QueryContext): string | undefined => {
  const d = ctx.description
  if (d._tag === "Raw") {
    const write = d.writes?.find((w) => w.unconditional && w.type !== "INSERT")
    return write === undefined
      ? undefined
      : `${write.type === "DELETE" ? "DELETE/TRUNCATE" : "UPDATE"} of ${write.table} without WHERE`
  }
  if (d._tag !== "Update" && d._tag !== "Delete") return undefined
  if (d.node.where === undefined) return "no WHERE clause"
  const keys = new Set(ctx.model?.primaryKey.map((f) => f.field) ?? [])
  return unsafe(truth(d.node.where, ctx.table, keys)) ? "its WHERE is true for every row" : undefined
}

/**
 * True when `ctx` would write every row of its table (see `wholeTable`).
 *
 * @since 0.1.0 @category predicates
 */
export const isUnconditional = (ctx: Executor.QueryContext): boolean => wholeTable(ctx) !== undefined

const refuse = (ctx: Executor.QueryContext, reason: string) =>
  new UnsafeDmlError({
    table: ctx.table,
    type:
      ctx.type === "UPDATE" || (ctx.description._tag === "Raw" && reason.startsWith("UPDATE"))
        ? "UPDATE"
        : "DELETE",
    reason
  })

/** A check as a middleware: effects and streams alike fail before reaching the database. */
const guard = (
  check: (ctx: Executor.QueryContext) => Effect.Effect<void, UnsafeDmlError>
): Executor.Middleware =>
  Executor.middleware(
    (next) => (ctx) => Effect.zipRight(check(ctx), next(ctx)),
    (next) => (ctx) => Stream.unwrap(Effect.as(check(ctx), next(ctx)))
  )

/**
 * Refuses an UPDATE or DELETE that would write every row, unless inside `allow`.
 *
 * @since 0.1.0 @category constructors
 */
export const make: Executor.Middleware = guard((ctx) => {
  const reason = wholeTable(ctx)
  if (reason === undefined) return Effect.void
  return Effect.flatMap(FiberRef.get(allowed), (ok) =>
    ok
      ? Effect.void
      : Effect.fail(refuse(ctx, `${reason} (wrap the statement in SafeDml.allow to mean every row)`))
  )
})

const deletes = (ctx: Executor.QueryContext): boolean => {
  const d = ctx.description
  if (d._tag === "Delete") return true
  return d._tag === "Raw" && (d.writes === undefined || d.writes.some((w) => w.type === "DELETE"))
}

/**
 * Refuses every DELETE, built or RAW (and RAW text whose writes cannot be named); `allow` does not lift it.
 *
 * @since 0.1.0 @category constructors
 */
export const noDelete: Executor.Middleware = guard((ctx) =>
  deletes(ctx)
    ? Effect.fail(new UnsafeDmlError({ table: ctx.table, type: "DELETE", reason: "DELETE is disabled" }))
    : Effect.void
)

/**
 * Wraps the Executor below in `make`.
 *
 * @since 0.1.0 @category layers
 */
export const layer: Layer.Layer<Executor.Executor, never, Executor.Executor> = Executor.layerMiddleware(make)

/**
 * Wraps the Executor below in `noDelete`.
 *
 * @since 0.1.0 @category layers
 */
export const layerNoDelete: Layer.Layer<Executor.Executor, never, Executor.Executor> =
  Executor.layerMiddleware(noDelete)
