/**
 * Guards against writes that touch a whole table. `make` refuses an UPDATE or DELETE without a WHERE
 * with `UnsafeDmlError` before it reaches the database, unless the statement runs inside
 * `SafeDml.allow`. `noDelete` refuses every DELETE.
 *
 * What counts as "no WHERE" is read from the statement's node (`ctx.builder`): an UPDATE or DELETE
 * is unsafe when its node has no `where` field, or one that is `undefined` or an AND of nothing
 * (which compiles to `1=1`). RAW statements are SQL text and are not inspected by `make`;
 * `noDelete` refuses a RAW statement whose first keyword is DELETE.
 *
 * @example
 * const purge = SafeDml.allow(Delete.from(User).exec()) // every row, on purpose
 * @since 0.1.0
 */
import { Effect, FiberRef, type Layer } from "effect"
import * as Executor from "../Query/Executor.js"
import type { ExprNode } from "../Query/Expr.js"
import { UnsafeDmlError } from "../Query/QueryError.js"

/** Whether whole-table writes are allowed for the statements of the current fiber. @since 0.1.0 @category fiber refs */
export const allowed: FiberRef.FiberRef<boolean> = FiberRef.unsafeMake(false)

/**
 * Runs `effect` with whole-table UPDATE and DELETE allowed; wrap the one statement that means it.
 *
 * @since 0.1.0 @category combinators
 */
export const allow = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.locally(effect, allowed, true)

const isNode = (u: unknown): u is ExprNode =>
  typeof u === "object" && u !== null && "_tag" in u && typeof u._tag === "string"

/** A condition that cannot narrow anything: absent, or an AND whose operands are all such. */
const isEmptyCondition = (where: unknown): boolean =>
  where === undefined || (isNode(where) && where._tag === "And" && where.operands.every(isEmptyCondition))

/**
 * True when `ctx` is an UPDATE or DELETE whose node has no WHERE condition.
 *
 * @since 0.1.0 @category predicates
 */
export const isUnconditional = (ctx: Executor.QueryContext): boolean => {
  if (ctx.type !== "UPDATE" && ctx.type !== "DELETE") return false
  const builder = ctx.builder
  if (typeof builder !== "object" || builder === null || !("where" in builder)) return true
  return isEmptyCondition(builder.where)
}

/**
 * Refuses an UPDATE or DELETE without WHERE, unless inside `allow`.
 *
 * @since 0.1.0 @category constructors
 */
export const make: Executor.Middleware = (next) => (ctx) =>
  ctx.type === "UPDATE" || ctx.type === "DELETE"
    ? Effect.flatMap(FiberRef.get(allowed), (ok) =>
        !ok && isUnconditional(ctx)
          ? Effect.fail(
              new UnsafeDmlError({
                table: ctx.table,
                type: ctx.type === "UPDATE" ? "UPDATE" : "DELETE",
                reason: "no WHERE clause (wrap the statement in SafeDml.allow to mean every row)"
              })
            )
          : next(ctx)
      )
    : next(ctx)

const isRawDelete = (ctx: Executor.QueryContext) =>
  ctx.type === "RAW" && /^\s*DELETE\b/i.test(ctx.statement.sql)

/**
 * Refuses every DELETE, built or RAW; `allow` does not lift it.
 *
 * @since 0.1.0 @category constructors
 */
export const noDelete: Executor.Middleware = (next) => (ctx) =>
  ctx.type === "DELETE" || isRawDelete(ctx)
    ? Effect.fail(new UnsafeDmlError({ table: ctx.table, type: "DELETE", reason: "DELETE is disabled" }))
    : next(ctx)

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
