/**
 * Compiles statement nodes into SQL text and bound parameters for one dialect. Values are always
 * bound as parameters and identifiers always quoted; nothing from a value reaches the SQL text.
 *
 * @since 0.1.0
 */
import { Either, type Schema } from "effect"
import type { InvalidEntityError, UnknownFieldError } from "../Schema/EntityError.js"
import * as EntityModel from "../Schema/EntityModel.js"
import type { EntityRegistryService } from "../Schema/EntityRegistry.js"
import type { SelectNode, TableSource } from "./Ast.js"
import type { Dialect } from "./Dialect.js"
import type { ExprNode, Ordering } from "./Expr.js"
import { QueryBuildError } from "./QueryError.js"

/** SQL text and its parameters, in placeholder order. @since 0.1.0 @category models */
export interface Compiled {
  readonly sql: string
  readonly params: ReadonlyArray<unknown>
  /**
   * The entity field each parameter is bound to (`undefined` where none): middleware reads it, e.g. to
   * redact sensitive values. Absent when no parameter is bound to a known field.
   */
  readonly paramFields?: ReadonlyArray<EntityModel.FieldModel | undefined>
}

/** What compiling can fail with. @since 0.1.0 @category errors */
export type CompileError = QueryBuildError | UnknownFieldError | InvalidEntityError

type Encoder = EntityModel.FieldModel["encode"]

/**
 * Accumulates SQL text and parameters. Compilation code throws `CompileError`s, which `run` turns
 * back into a `Left`; anything else thrown is a defect.
 *
 * @since 0.1.0 @category writer
 */
export class Writer {
  readonly params: Array<unknown> = []
  /** Parallel to `params`: the field a parameter is bound to, when the caller named it. */
  readonly paramFields: Array<EntityModel.FieldModel | undefined> = []
  /** The table sources in scope, by alias (the root table also under `undefined`). */
  private readonly sources = new Map<
    string | undefined,
    { model: EntityModel.EntityModel; qualifier: string }
  >()
  qualify = false

  constructor(
    readonly dialect: Dialect,
    readonly registry: EntityRegistryService
  ) {}

  /** Binds a value; pass the `field` it is written to or compared with so middleware can tell (e.g. sensitive). */
  param(value: unknown, encode?: Encoder, field?: EntityModel.FieldModel): string {
    let bound = value
    if (encode !== undefined && value !== null && value !== undefined) {
      const encoded = encode(value)
      if (Either.isLeft(encoded)) {
        throw new QueryBuildError({
          reason: `Cannot encode value: ${encoded.left.message}`,
          cause: encoded.left
        })
      }
      bound = encoded.right
    }
    this.params.push(this.dialect.bind(bound))
    this.paramFields.push(field)
    return this.dialect.placeholder(this.params.length)
  }

  quote(identifier: string): string {
    return this.dialect.quote(identifier)
  }

  model<A, I>(schema: Schema.Schema<A, I, never>): EntityModel.EntityModel<A> {
    return unwrap(this.registry.get(schema))
  }

  /** Brings a table into scope and returns its model. */
  addSource(source: TableSource, root: boolean): EntityModel.EntityModel {
    const model = this.model(source.schema) as EntityModel.EntityModel
    const entry = { model, qualifier: source.alias ?? model.table }
    if (root) this.sources.set(undefined, entry)
    this.sources.set(source.alias ?? model.table, entry)
    return model
  }

  /** Resolves a column reference to its field metadata and its SQL. */
  column(
    source: string | undefined,
    field: string
  ): { readonly field: EntityModel.FieldModel; readonly sql: string } {
    const entry = this.sources.get(source)
    if (entry === undefined) throw new QueryBuildError({ reason: `Unknown table or alias "${source}"` })
    const found = unwrap(EntityModel.field(entry.model, field))
    const column = this.quote(found.column)
    return { field: found, sql: this.qualify ? `${this.quote(entry.qualifier)}.${column}` : column }
  }
}

const unwrap = <A, E>(either: Either.Either<A, E>): A => {
  if (Either.isLeft(either)) throw either.left
  return either.right
}

const isCompileError = (u: unknown): u is CompileError =>
  typeof u === "object" &&
  u !== null &&
  "_tag" in u &&
  (u._tag === "QueryBuildError" || u._tag === "UnknownFieldError" || u._tag === "InvalidEntityError")

/**
 * Runs a compilation step, turning thrown `CompileError`s into a `Left`.
 *
 * @since 0.1.0 @category writer
 */
export const run = <A>(f: () => A): Either.Either<A, CompileError> => {
  try {
    return Either.right(f())
  } catch (e) {
    if (isCompileError(e)) return Either.left(e)
    throw e
  }
}

/** The field of a column, when `node` is one; values compared with it are encoded through its schema. */
const fieldOf = (w: Writer, node: ExprNode): EntityModel.FieldModel | undefined =>
  node._tag === "Column" ? w.column(node.source, node.field).field : undefined

const needsParens = (node: ExprNode) =>
  node._tag === "And" || node._tag === "Or" || (node._tag === "Binary" && isArithmetic(node.op))

const isArithmetic = (op: string) => op === "+" || op === "-" || op === "*" || op === "/"

const nested = (w: Writer, node: ExprNode, field?: EntityModel.FieldModel): string => {
  const sql = expr(w, node, field)
  return needsParens(node) ? `(${sql})` : sql
}

const rawSql = (w: Writer, sql: string, args: ReadonlyArray<unknown>): string => {
  const parts = sql.split("?")
  if (parts.length - 1 !== args.length) {
    throw new QueryBuildError({
      reason: `Raw SQL has ${parts.length - 1} placeholder(s) but ${args.length} argument(s): ${sql}`
    })
  }
  let out = parts[0] ?? ""
  for (let i = 0; i < args.length; i++) out += w.param(args[i]) + (parts[i + 1] ?? "")
  return out
}

/**
 * Compiles an expression; `field` is the column a bare value is compared with (its encoder applies).
 *
 * @since 0.1.0 @category compilers
 */
export const expr = (w: Writer, node: ExprNode, field?: EntityModel.FieldModel): string => {
  switch (node._tag) {
    case "Column":
      return w.column(node.source, node.field).sql
    case "Value":
      return w.param(node.value, field?.encode, field)
    case "Binary": {
      const f = fieldOf(w, node.left) ?? fieldOf(w, node.right)
      return `${nested(w, node.left, f)} ${node.op} ${nested(w, node.right, f)}`
    }
    case "In": {
      if (node.values.length === 0) return node.negated ? "1=1" : "1=0"
      const f = fieldOf(w, node.operand)
      const values = node.values.map((v) => expr(w, v, f)).join(", ")
      return `${nested(w, node.operand)} ${node.negated ? "NOT IN" : "IN"} (${values})`
    }
    case "IsNull":
      return `${nested(w, node.operand)} ${node.negated ? "IS NOT NULL" : "IS NULL"}`
    case "Between": {
      const f = fieldOf(w, node.operand)
      return `${nested(w, node.operand)} BETWEEN ${nested(w, node.low, f)} AND ${nested(w, node.high, f)}`
    }
    case "And":
    case "Or": {
      if (node.operands.length === 0) return node._tag === "And" ? "1=1" : "1=0"
      const first = node.operands[0]
      if (node.operands.length === 1 && first !== undefined) return expr(w, first)
      return node.operands.map((o) => nested(w, o)).join(node._tag === "And" ? " AND " : " OR ")
    }
    case "Not":
      return `NOT (${expr(w, node.operand)})`
    case "Raw":
      return rawSql(w, node.sql, node.args)
    case "Aggregate": {
      const inner = node.operand === undefined ? "*" : expr(w, node.operand)
      return `${node.fn}(${node.distinct ? "DISTINCT " : ""}${inner})`
    }
  }
}

const ordering = (w: Writer, o: Ordering) => `${expr(w, o.expr)} ${o.direction}`

const checkCount = (name: string, n: number | undefined) => {
  if (n !== undefined && !(Number.isSafeInteger(n) && n >= 0)) {
    throw new QueryBuildError({ reason: `${name} must be a non-negative integer, got ${n}` })
  }
}

/**
 * Writes a SELECT into `w`: clauses in the order every dialect requires (WHERE, GROUP BY, HAVING,
 * ORDER BY, LIMIT, OFFSET). Returns the root table's model.
 *
 * @since 0.1.0 @category compilers
 */
export const select = (
  w: Writer,
  node: SelectNode
): { readonly sql: string; readonly model: EntityModel.EntityModel } => {
  checkCount("limit", node.limit)
  checkCount("offset", node.offset)
  const model = w.addSource(node.from, true)
  w.qualify = node.from.alias !== undefined
  const columns =
    node.selection === undefined
      ? model.fields.map((f) => w.column(undefined, f.field).sql)
      : node.selection.map((s) =>
          s.alias === undefined ? expr(w, s.expr) : `${expr(w, s.expr)} AS ${w.quote(s.alias)}`
        )
  let sql = `SELECT ${node.distinct ? "DISTINCT " : ""}${columns.join(", ")} FROM ${w.quote(model.table)}`
  if (node.from.alias !== undefined) sql += ` AS ${w.quote(node.from.alias)}`
  if (node.where !== undefined) sql += ` WHERE ${expr(w, node.where)}`
  if (node.groupBy.length > 0) sql += ` GROUP BY ${node.groupBy.map((g) => expr(w, g)).join(", ")}`
  if (node.having !== undefined) sql += ` HAVING ${expr(w, node.having)}`
  if (node.orderBy.length > 0) sql += ` ORDER BY ${node.orderBy.map((o) => ordering(w, o)).join(", ")}`
  sql += w.dialect.limitOffset(node.limit, node.offset, (v) => w.param(v))
  return { sql, model }
}

/**
 * Compiles with a fresh writer: `write` returns the SQL and the model of the statement's table.
 *
 * @since 0.1.0 @category compilers
 */
export const compile = (
  dialect: Dialect,
  registry: EntityRegistryService,
  write: (w: Writer) => { readonly sql: string; readonly model: EntityModel.EntityModel }
): Either.Either<{ readonly statement: Compiled; readonly model: EntityModel.EntityModel }, CompileError> =>
  run(() => {
    const w = new Writer(dialect, registry)
    const { sql, model } = write(w)
    // Only when some parameter is bound to a known field: absent means "nothing known".
    const statement: Compiled = w.paramFields.some((f) => f !== undefined)
      ? { sql, params: w.params, paramFields: w.paramFields }
      : { sql, params: w.params }
    return { statement, model }
  })
