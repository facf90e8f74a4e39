/**
 * Publishes a `ChangeEvent` to the `ChangeFeed` after every successful INSERT, UPDATE or DELETE.
 * Inside a transaction the event is handed to the transaction's `afterCommit`, so it is published
 * only once the transaction commits, and never when it rolls back.
 *
 * Primary keys are reported where the statement names them: RETURNING rows that carry the key
 * columns; for an UPDATE or DELETE, a WHERE that pins every key field with `=` (or a single key
 * field with `IN`), read from the statement's node (the keys targeted, a superset of those changed);
 * for an INSERT (not an upsert), the keys its rows give, or for a one-row INSERT into a table with
 * one generated key, the id the database reported. Otherwise `primaryKeys` is `undefined`.
 *
 * RAW statements publish one event per table their description says they write (found by the
 * lexer after comments, parentheses and `WITH`, including writes inside a CTE; REPLACE and MERGE
 * count as INSERT and UPDATE), without keys. A RAW statement whose writes cannot be named (DDL,
 * CALL, a multi-table UPDATE...) publishes one event for table `"*"`: any table of the database.
 *
 * @since 0.1.0
 */
import { Effect, FiberRef, type Layer, Option } from "effect"
import type { InsertNode } from "../Query/Ast.js"
import { type ChangeEvent, ChangeFeed, type ChangeFeedService, type ChangeType } from "../Query/ChangeFeed.js"
import * as Executor from "../Query/Executor.js"
import type { ExprNode } from "../Query/Expr.js"
import type { EntityModel, FieldModel } from "../Schema/EntityModel.js"
import * as Middleware from "./Middleware.js"

type Key = Readonly<Record<string, unknown>>

const conjuncts = (node: ExprNode): ReadonlyArray<ExprNode> =>
  node._tag === "And" ? node.operands.flatMap(conjuncts) : [node]

/** The values a conjunct pins `field` to: `field = v`, `v = field`, or `field IN (v, …)`. */
const pinned = (node: ExprNode, field: string): ReadonlyArray<unknown> | undefined => {
  const isField = (n: ExprNode) => n._tag === "Column" && n.field === field
  if (node._tag === "Binary" && node.op === "=") {
    if (isField(node.left) && node.right._tag === "Value") return [node.right.value]
    if (isField(node.right) && node.left._tag === "Value") return [node.left.value]
  }
  if (node._tag === "In" && !node.negated && isField(node.operand)) {
    const values = node.values.flatMap((v) => (v._tag === "Value" ? [v.value] : []))
    return values.length === node.values.length ? values : undefined
  }
  return undefined
}

const keysFromWhere = (model: EntityModel, where: ExprNode | undefined): ReadonlyArray<Key> | undefined => {
  if (where === undefined) return undefined
  const terms = conjuncts(where)
  const values = model.primaryKey.map((pk) => {
    for (const term of terms) {
      const found = pinned(term, pk.field)
      if (found !== undefined) return found
    }
    return undefined
  })
  const [pk, ...others] = model.primaryKey
  const [first] = values
  if (pk !== undefined && others.length === 0 && first !== undefined)
    return first.map((v) => ({ [pk.field]: v }))
  // A composite key is reported only when every part is pinned to one value.
  if (values.every((v) => v?.length === 1)) {
    return [Object.fromEntries(model.primaryKey.map((pk, i) => [pk.field, values[i]?.[0]]))]
  }
  return undefined
}

const keysFromRows = (
  model: EntityModel,
  rows: ReadonlyArray<Executor.Row>
): ReadonlyArray<Key> | undefined =>
  rows.length > 0 && rows.every((row) => model.primaryKey.every((pk) => pk.column in row))
    ? rows.map((row) => Object.fromEntries(model.primaryKey.map((pk) => [pk.field, row[pk.column]])))
    : undefined

/** Insert leaves a generated key to the database when the row holds null, undefined or zero for it. */
const given = (pk: FieldModel, value: unknown) =>
  value !== undefined && !(pk.generated && (value === null || value === 0 || value === 0n))

/** The keys an INSERT's rows give themselves; not for an upsert, which may write another row. */
const keysFromInsertRows = (model: EntityModel, node: InsertNode): ReadonlyArray<Key> | undefined => {
  if (node.onConflict !== undefined) return undefined
  const keys: Array<Key> = []
  for (const row of node.rows) {
    if (typeof row !== "object" || row === null) return undefined
    const values = row as Record<string, unknown>
    if (model.primaryKey.some((pk) => !given(pk, values[pk.field]))) return undefined
    keys.push(Object.fromEntries(model.primaryKey.map((pk) => [pk.field, values[pk.field]])))
  }
  return keys.length > 0 ? keys : undefined
}

const keyFromInsertId = (
  model: EntityModel,
  result: Executor.QueryResult
): ReadonlyArray<Key> | undefined => {
  const [pk] = model.primaryKey
  if (result._tag !== "Exec" || result.rowsAffected !== 1 || result.lastInsertId === undefined)
    return undefined
  if (pk === undefined || model.primaryKey.length !== 1 || !pk.generated) return undefined
  const id = result.lastInsertId
  return [{ [pk.field]: typeof id === "bigint" && Number.isSafeInteger(Number(id)) ? Number(id) : id }]
}

const primaryKeys = (
  ctx: Executor.QueryContext,
  result: Executor.QueryResult
): ReadonlyArray<Key> | undefined => {
  const model = ctx.model
  const d = ctx.description
  if (model === undefined || d._tag === "Raw" || d._tag === "Select") return undefined
  const returned = keysFromRows(model, result.rows)
  if (returned !== undefined) return returned
  return d._tag === "Insert"
    ? (keysFromInsertRows(model, d.node) ?? keyFromInsertId(model, result))
    : keysFromWhere(model, d.node.where)
}

const builtType: Record<"Insert" | "Update" | "Delete", ChangeType> = {
  Insert: "INSERT",
  Update: "UPDATE",
  Delete: "DELETE"
}

/**
 * The events a successful statement produces: one for a built write, one per table a RAW statement
 * writes (table `"*"` when they cannot be named), none for reads.
 *
 * @since 0.1.0 @category events
 */
export const eventsOf = (
  ctx: Executor.QueryContext,
  result: Executor.QueryResult
): ReadonlyArray<ChangeEvent> => {
  const d = ctx.description
  const rowsAffected = result._tag === "Exec" ? result.rowsAffected : result.rows.length
  const database = ctx.session.label
  if (d._tag === "Select") return []
  if (d._tag !== "Raw") {
    return [
      {
        database,
        table: ctx.table,
        type: builtType[d._tag],
        primaryKeys: primaryKeys(ctx, result),
        rowsAffected
      }
    ]
  }
  if (d.writes === undefined)
    return [{ database, table: "*", type: "UPDATE", primaryKeys: undefined, rowsAffected }]
  const seen = new Set<string>()
  return d.writes.flatMap((w) => {
    const key = `${w.type} ${w.table}`
    if (seen.has(key)) return []
    seen.add(key)
    return [{ database, table: w.table, type: w.type, primaryKeys: undefined, rowsAffected }]
  })
}

/**
 * The capturing middleware, publishing to `feed`.
 *
 * @since 0.1.0 @category constructors
 */
export const make = (feed: ChangeFeedService): Executor.Middleware =>
  Executor.middleware(
    (next) => (ctx) =>
      Effect.tap(next(ctx), (result) => {
        const events = eventsOf(ctx, result)
        if (events.length === 0) return Effect.void
        const publish = Effect.forEach(events, feed.publish, { discard: true })
        return Effect.flatMap(FiberRef.get(ctx.session.transaction), (tx) =>
          Option.isSome(tx) ? tx.value.afterCommit(publish) : publish
        )
      }),
    // A stream is a SELECT: it writes nothing.
    (next) => next
  )

/**
 * Wraps the Executor below in the capturing middleware, publishing to the `ChangeFeed` in context.
 *
 * @since 0.1.0 @category layers
 */
export const layer: Layer.Layer<Executor.Executor, never, Executor.Executor | ChangeFeed> =
  Middleware.layerEffect(Effect.map(ChangeFeed, make))
