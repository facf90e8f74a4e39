/**
 * Compiles statement nodes into SQL text and bound parameters for one dialect. Values are always
 * bound as parameters and identifiers always quoted; nothing from a value reaches the SQL text.
 *
 * @since 0.1.0
 */
import { Either, type Schema } from "effect"
import { globalValue } from "effect/GlobalValue"
import { type InvalidEntityError, UnknownFieldError } from "../Schema/EntityError.js"
import * as EntityModel from "../Schema/EntityModel.js"
import type { EntityRegistryService } from "../Schema/EntityRegistry.js"
import type {
  Assignment,
  DeleteNode,
  DerivedSource,
  FromSource,
  InsertNode,
  JoinKind,
  JoinNode,
  Returning,
  SelectNode,
  TableSource,
  UpdateNode
} from "./Ast.js"
import { isAtomic, placeholders } from "./Description.js"
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
  /**
   * The statement reads or writes an entity with a sensitive field: a parameter bound to no known
   * field (a raw fragment's) may hold one of its values, and is redacted like them.
   */
  readonly sensitive?: true
  /**
   * The SQL as logs, spans and errors show it, when it differs from `sql`: a raw statement touching
   * an entity with a sensitive field shows its literals as `?` (`Executor.displaySql`).
   */
  readonly display?: string
}

/** What compiling can fail with. @since 0.1.0 @category errors */
export type CompileError = QueryBuildError | UnknownFieldError | InvalidEntityError

type Encoder = EntityModel.FieldModel["encode"]

/**
 * A column of a source in scope; `model` is the entity field behind it (its encoder, sensitivity).
 *
 * @since 0.1.0 @category models
 */
export interface SourceColumn {
  readonly field: string
  readonly column: string
  readonly model: EntityModel.FieldModel | undefined
}

/** A table or derived table in scope. */
interface SourceEntry {
  readonly qualifier: string
  /** The entity (for a derived table: the entity at the root of its SELECT). */
  readonly model: EntityModel.EntityModel
  /** Every column in order: what an unrestricted SELECT of this source lists. */
  readonly columns: ReadonlyArray<SourceColumn>
  readonly resolve: (field: string) => SourceColumn
}

interface Scope {
  readonly sources: Map<string | undefined, SourceEntry>
  qualify: boolean
}

/**
 * Accumulates SQL text and parameters. Compilation code throws `CompileError`s, which `run` turns
 * back into a `Left`; anything else thrown is a defect. Each SELECT opens a scope; a column
 * resolves in the innermost scope that has its source, so subqueries may reference outer tables
 * (correlation), and such references are always qualified.
 *
 * @since 0.1.0 @category writer
 */
export class Writer {
  readonly params: Array<unknown> = []
  /** Parallel to `params`: the field a parameter is bound to, when the caller named it. */
  readonly paramFields: Array<EntityModel.FieldModel | undefined> = []
  private readonly scopes: Array<Scope> = [{ sources: new Map(), qualify: false }]
  /** True while compiling an upsert's update list, the only place `excluded` values exist. */
  allowExcluded = false
  /** Some source in scope so far is an entity with a sensitive field. */
  sensitive = false

  readonly dialect: Dialect
  readonly registry: EntityRegistryService
  constructor(dialect: Dialect, registry: EntityRegistryService) {
    this.dialect = dialect
    this.registry = registry
  }

  private get current(): Scope {
    return this.scopes[this.scopes.length - 1] as Scope
  }

  /** Whether columns of the innermost scope are written `table.column`. */
  get qualify(): boolean {
    return this.current.qualify
  }

  set qualify(qualify: boolean) {
    this.current.qualify = qualify
  }

  /** Binds a value; pass the `field` it is written to or compared with so middleware can tell (e.g. sensitive). */
  param(value: unknown, encode?: Encoder, field?: EntityModel.FieldModel): string {
    let bound = value
    if (encode !== undefined && value !== null && value !== undefined) {
      const encoded = encode(value)
      if (Either.isLeft(encoded)) {
        throw new QueryBuildError({
          reason: `Cannot encode value: ${field?.sensitive === true ? "invalid value of a sensitive field (not shown)" : encoded.left.message}`,
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

  /** Runs `f` in a new innermost scope. */
  scoped<A>(f: () => A): A {
    this.scopes.push({ sources: new Map(), qualify: false })
    try {
      return f()
    } finally {
      this.scopes.pop()
    }
  }

  /** Brings a table or derived table into the innermost scope and returns its (root) model. */
  addSource(source: FromSource, root: boolean): EntityModel.EntityModel {
    const entry = source._tag === "Table" ? this.tableEntry(source) : this.derivedEntry(source)
    const sources = this.current.sources
    if (sources.has(entry.qualifier)) {
      throw new QueryBuildError({
        reason: `"${entry.qualifier}" appears twice in one query: give each occurrence its own alias`
      })
    }
    if (root) sources.set(undefined, entry)
    sources.set(entry.qualifier, entry)
    return entry.model
  }

  private tableEntry(source: TableSource): SourceEntry {
    const model = this.model(source.schema) as EntityModel.EntityModel
    const { columns, resolve, sensitive } = tableColumns(model)
    if (sensitive) this.sensitive = true
    return { qualifier: source.alias ?? model.table, model, columns, resolve }
  }

  /** A derived table's columns, named by the aliases (or column names) its SELECT gives them. */
  private derivedEntry(source: DerivedSource): SourceEntry {
    const { columns, model } = this.scoped(() => {
      const inner = source.select
      const model = this.addSource(inner.from, true)
      for (const join of inner.joins ?? []) this.addSource(join.source, false)
      const columns: ReadonlyArray<SourceColumn> =
        inner.selection === undefined
          ? this.columnsOf(undefined)
          : inner.selection.map((s): SourceColumn => {
              const column = s.expr._tag === "Column" ? this.column(s.expr.source, s.expr.field) : undefined
              if (s.alias !== undefined) return { field: s.alias, column: s.alias, model: column?.field }
              if (s.expr._tag === "Column" && column !== undefined) {
                return { field: s.expr.field, column: column.column, model: column.field }
              }
              throw new QueryBuildError({
                reason: `Every column of derived table "${source.alias}" must be named: alias each selected expression`
              })
            })
      return { columns, model }
    })
    const byField = new Map<string, SourceColumn>()
    const names = new Set<string>()
    for (const c of columns) {
      if (names.has(c.column)) {
        throw new QueryBuildError({
          reason: `Derived table "${source.alias}" has two columns named "${c.column}": alias one of them`
        })
      }
      names.add(c.column)
      byField.set(c.field, c)
    }
    return {
      qualifier: source.alias,
      model,
      columns,
      resolve: (field) => {
        const found = byField.get(field)
        if (found === undefined) throw new UnknownFieldError({ entity: source.alias, field })
        return found
      }
    }
  }

  /** Every column of a source of the innermost scope (the root when `source` is undefined). */
  columnsOf(source: string | undefined): ReadonlyArray<SourceColumn> {
    const entry = this.current.sources.get(source)
    if (entry === undefined) throw new QueryBuildError({ reason: `Unknown table or alias "${source}"` })
    return entry.columns
  }

  /** Resolves a column reference to its column name, its entity field (when it has one) and its SQL. */
  column(
    source: string | undefined,
    field: string
  ): {
    readonly column: string
    readonly field: EntityModel.FieldModel | undefined
    readonly sql: string
  } {
    for (let i = this.scopes.length - 1; i >= 0; i--) {
      const scope = this.scopes[i] as Scope
      const entry = scope.sources.get(source)
      if (entry !== undefined) {
        const found = entry.resolve(field)
        const column = this.quote(found.column)
        // A reference to an enclosing query's table is always qualified, or it would bind to the inner one.
        const qualify = scope.qualify || i !== this.scopes.length - 1
        return {
          column: found.column,
          field: found.model,
          sql: qualify ? `${this.quote(entry.qualifier)}.${column}` : column
        }
      }
      // An unqualified reference means the root of the innermost query only.
      if (source === undefined) break
    }
    throw new QueryBuildError({ reason: `Unknown table or alias "${source}"` })
  }
}

type TableColumns = Pick<SourceEntry, "columns" | "resolve"> & { readonly sensitive: boolean }

const tableColumnsCache = globalValue(
  Symbol.for("effect-dal/Compiler/tableColumns"),
  () => new WeakMap<EntityModel.EntityModel, TableColumns>()
)

/** A table's columns and its field lookup, made once per model (models are immutable). */
const tableColumns = (model: EntityModel.EntityModel): TableColumns => {
  let cached = tableColumnsCache.get(model)
  if (cached === undefined) {
    const columns = model.fields.map((f): SourceColumn => ({ field: f.field, column: f.column, model: f }))
    const byField = new Map(columns.map((c) => [c.field, c]))
    cached = {
      columns,
      sensitive: model.fields.some((f) => f.sensitive),
      resolve: (field) => {
        const found = byField.get(field)
        if (found === undefined) throw new UnknownFieldError({ entity: model.name, field })
        return found
      }
    }
    tableColumnsCache.set(model, cached)
  }
  return cached
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

/** Nodes that are one operand as written (a raw fragment parenthesises itself when it is not). */
const selfContained = new Set<ExprNode["_tag"]>([
  "Column",
  "Value",
  "Aggregate",
  "Subquery",
  "Excluded",
  "Raw"
])

/** An operand of a comparison, arithmetic, IN, BETWEEN or IS NULL: parenthesised unless self-contained. */
const operand = (w: Writer, node: ExprNode, field?: EntityModel.FieldModel): string => {
  const sql = expr(w, node, field)
  return selfContained.has(node._tag) ? sql : `(${sql})`
}

/** Raw SQL with its `?` placeholders (not those in strings or comments) bound to `args`, in order. */
const rawSql = (w: Writer, sql: string, args: ReadonlyArray<unknown>): string => {
  const at = placeholders(sql, w.dialect)
  if (at.length !== args.length) {
    throw new QueryBuildError({
      reason: `Raw SQL has ${at.length} placeholder(s) but ${args.length} argument(s): ${sql}`
    })
  }
  let out = ""
  let from = 0
  for (let i = 0; i < args.length; i++) {
    const position = at[i] as number
    out += sql.slice(from, position) + w.param(args[i])
    from = position + 1
  }
  return out + sql.slice(from)
}

/**
 * A raw fragment is one operand wherever it is used: parenthesised unless it is provably atomic, so
 * `Expr.raw("a = ? OR a = ?")` in a WHERE beside another condition, or `Expr.raw("? + ?")` in
 * arithmetic, keeps its own meaning.
 */
const rawOperand = (w: Writer, sql: string, args: ReadonlyArray<unknown>): string => {
  const compiled = rawSql(w, sql, args)
  return isAtomic(sql, w.dialect) ? compiled : `(${compiled})`
}

const comparisons = new Set(["=", "<>", "<", "<=", ">", ">="])

/** A subquery used as a value (IN, ANY/ALL, scalar) must yield exactly one column. */
const oneColumn = (w: Writer, query: SelectNode, use: string): string => {
  const { sql, width } = select(w, query)
  if (width !== 1) {
    throw new QueryBuildError({
      reason: `A subquery used ${use} must select exactly one column, not ${width}`
    })
  }
  return sql
}

/** The value a conflicting INSERT proposed for a column of the root table. */
const excluded = (w: Writer, field: string): string => {
  if (!w.allowExcluded) {
    throw new QueryBuildError({ reason: "Proposed (excluded) values exist only in an upsert's update list" })
  }
  const column = w.quote(w.column(undefined, field).column)
  return w.dialect.name === "mysql" ? `VALUES(${column})` : `excluded.${column}`
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
      if (node.right._tag === "Quantified") {
        if (!comparisons.has(node.op)) {
          throw new QueryBuildError({ reason: `ANY/ALL cannot follow ${node.op}: use a comparison` })
        }
        if (w.dialect.name === "sqlite") {
          throw new QueryBuildError({
            reason: "SQLite has no ANY/ALL subqueries: use in(...) or exists(...)"
          })
        }
        const sub = oneColumn(w, node.right.query, `with ${node.right.quantifier}`)
        return `${operand(w, node.left, f)} ${node.op} ${node.right.quantifier} (${sub})`
      }
      return `${operand(w, node.left, f)} ${node.op} ${operand(w, node.right, f)}`
    }
    case "In": {
      if (node.values.length === 0) return node.negated ? "1=1" : "1=0"
      const f = fieldOf(w, node.operand)
      const values = node.values.map((v) => expr(w, v, f)).join(", ")
      return `${operand(w, node.operand)} ${node.negated ? "NOT IN" : "IN"} (${values})`
    }
    case "InSubquery": {
      const left = operand(w, node.operand)
      return `${left} ${node.negated ? "NOT IN" : "IN"} (${oneColumn(w, node.query, "with IN")})`
    }
    case "Exists":
      return `${node.negated ? "NOT EXISTS" : "EXISTS"} (${select(w, node.query).sql})`
    case "Quantified":
      throw new QueryBuildError({
        reason: "ANY/ALL belong on the right of a comparison: c.age.gt(Expr.any(sub))"
      })
    case "Subquery":
      return `(${oneColumn(w, node.query, "as a value")})`
    case "Excluded":
      return excluded(w, node.field)
    case "IsNull":
      return `${operand(w, node.operand)} ${node.negated ? "IS NOT NULL" : "IS NULL"}`
    case "Between": {
      const f = fieldOf(w, node.operand)
      return `${operand(w, node.operand)} BETWEEN ${operand(w, node.low, f)} AND ${operand(w, node.high, f)}`
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
      return rawOperand(w, node.sql, node.args)
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

/** A FROM or JOIN item; a derived table compiles its SELECT in place, so parameters stay in text order. */
const source = (w: Writer, from: FromSource): string => {
  if (from._tag === "Derived") return `(${select(w, from.select).sql}) AS ${w.quote(from.alias)}`
  const table = w.quote(w.model(from.schema).table)
  return from.alias === undefined ? table : `${table} AS ${w.quote(from.alias)}`
}

const joinKeyword: Record<JoinKind, string> = { INNER: "INNER JOIN", LEFT: "LEFT JOIN", RIGHT: "RIGHT JOIN" }

const join = (w: Writer, node: JoinNode): string => {
  const sql = `${joinKeyword[node.kind]} ${source(w, node.source)}`
  if (node.using !== undefined) {
    const key =
      node.source._tag === "Derived"
        ? node.source.alias
        : (node.source.alias ?? w.model(node.source.schema).table)
    const columns = node.using.map((f) => w.quote(w.column(key, f).column))
    return `${sql} USING (${columns.join(", ")})`
  }
  return node.on === undefined ? sql : `${sql} ON ${expr(w, node.on)}`
}

const columnLists = globalValue(
  Symbol.for("effect-dal/Compiler/columnLists"),
  () => new WeakMap<ReadonlyArray<SourceColumn>, Map<Dialect, string>>()
)

/**
 * Every column of the root source, qualified one by one when the query needs it, or else as one
 * quoted list remembered per table and dialect (a table's columns array is made once per model).
 */
const allColumns = (w: Writer, columns: ReadonlyArray<SourceColumn>): string | ReadonlyArray<string> => {
  if (w.qualify) return columns.map((c) => w.column(undefined, c.field).sql)
  let perDialect = columnLists.get(columns)
  if (perDialect === undefined) {
    perDialect = new Map()
    columnLists.set(columns, perDialect)
  }
  let list = perDialect.get(w.dialect)
  if (list === undefined) {
    list = columns.map((c) => w.quote(c.column)).join(", ")
    perDialect.set(w.dialect, list)
  }
  return list
}

/**
 * Writes a SELECT into `w`: clauses in the order every dialect requires (WHERE, GROUP BY, HAVING,
 * ORDER BY, LIMIT, OFFSET). Returns the root table's model (for a derived table, the entity at its
 * root) and how many columns it selects.
 *
 * @since 0.1.0 @category compilers
 */
export const select = (
  w: Writer,
  node: SelectNode
): { readonly sql: string; readonly model: EntityModel.EntityModel; readonly width: number } => {
  checkCount("limit", node.limit)
  checkCount("offset", node.offset)
  return w.scoped(() => {
    const joins = node.joins ?? []
    // Every source is in scope before any expression compiles: the select list may name joined tables.
    const model = w.addSource(node.from, true)
    for (const j of joins) w.addSource(j.source, false)
    w.qualify = node.from.alias !== undefined || joins.length > 0
    const columns =
      node.selection === undefined
        ? allColumns(w, w.columnsOf(undefined))
        : node.selection.map((s) =>
            s.alias === undefined ? expr(w, s.expr) : `${expr(w, s.expr)} AS ${w.quote(s.alias)}`
          )
    const list = typeof columns === "string" ? columns : columns.join(", ")
    const width = typeof columns === "string" ? w.columnsOf(undefined).length : columns.length
    let sql = `SELECT ${node.distinct ? "DISTINCT " : ""}${list} FROM ${source(w, node.from)}`
    for (const j of joins) sql += ` ${join(w, j)}`
    if (node.where !== undefined) sql += ` WHERE ${expr(w, node.where)}`
    if (node.groupBy.length > 0) sql += ` GROUP BY ${node.groupBy.map((g) => expr(w, g)).join(", ")}`
    if (node.having !== undefined) sql += ` HAVING ${expr(w, node.having)}`
    if (node.orderBy.length > 0) sql += ` ORDER BY ${node.orderBy.map((o) => ordering(w, o)).join(", ")}`
    sql += w.dialect.limitOffset(node.limit, node.offset, (v) => w.param(v))
    return { sql, model, width }
  })
}

/**
 * The fields a RETURNING clause lists: the named ones, or every persisted field for `"*"`.
 *
 * @since 0.1.0 @category compilers
 */
export const returningFields = (
  model: EntityModel.EntityModel,
  returning: Returning
): ReadonlyArray<EntityModel.FieldModel> =>
  returning === undefined
    ? []
    : returning === "*"
      ? model.fields
      : returning.map((f) => unwrap(EntityModel.field(model, f)))

const returningClause = (w: Writer, fields: ReadonlyArray<EntityModel.FieldModel>): string =>
  fields.length === 0 ? "" : ` RETURNING ${fields.map((f) => w.quote(f.column)).join(", ")}`

const assignments = (w: Writer, set: ReadonlyArray<Assignment>): string =>
  set
    .map((a) => {
      const target = w.column(undefined, a.field)
      return `${w.quote(target.column)} = ${nested(w, a.value, target.field)}`
    })
    .join(", ")

/** What one INSERT statement writes: `rows` rows of encoded values, one per column, row after row. @since 0.1.0 @category models */
export interface InsertSpec {
  readonly node: InsertNode
  readonly columns: ReadonlyArray<EntityModel.FieldModel>
  readonly rows: number
  readonly values: ReadonlyArray<unknown>
  readonly returning: ReadonlyArray<EntityModel.FieldModel>
}

const conflictVariable = "@effect_dal_conflicts"

/**
 * The column a MySQL/MariaDB `onConflictDoNothing().returning()` adds to its RETURNING rows: its
 * no-op update returns the existing row of a conflict, so the statement counts conflicts in a session
 * variable (reset by the first row's first value, incremented by the update) and returns the count
 * with every row; a row where it grew is a conflict, which DO NOTHING must not return.
 *
 * @since 0.1.0 @category compilers
 */
export const conflictMarker = "effect_dal_conflicts"

/** Whether `spec` is a do-nothing insert with RETURNING on a dialect that has no DO NOTHING. */
const marksConflicts = (w: Writer, spec: InsertSpec): boolean =>
  w.dialect.name === "mysql" && spec.node.onConflict?.action._tag === "Nothing" && spec.returning.length > 0

/** The ON CONFLICT / ON DUPLICATE KEY clause of an insert whose root table is in scope. */
const conflictClause = (w: Writer, spec: InsertSpec, model: EntityModel.EntityModel): string => {
  const conflict = spec.node.onConflict
  if (conflict === undefined) return ""
  const target = (conflict.target ?? []).map((f) => unwrap(EntityModel.field(model, f)))
  const action = conflict.action
  let set: ReadonlyArray<Assignment>
  if (action._tag === "Update" && action.set !== undefined) {
    set = action.set
  } else if (action._tag === "Update") {
    // By default every inserted column but the conflict target and the primary key takes the new value.
    const keys = new Set([...target, ...model.primaryKey].map((f) => f.field))
    set = spec.columns
      .filter((c) => !keys.has(c.field))
      .map((c) => ({ field: c.field, value: { _tag: "Excluded", field: c.field } }))
  } else {
    set = []
  }
  if (action._tag === "Update" && set.length === 0) {
    throw new QueryBuildError({
      reason: "The upsert has no column to update: name them, or use onConflictDoNothing"
    })
  }
  w.qualify = true
  w.allowExcluded = true
  try {
    if (w.dialect.name === "mysql") {
      // MySQL/MariaDB have no DO NOTHING; a no-op update skips only duplicate keys (INSERT IGNORE would
      // also turn NOT NULL, foreign key and conversion errors into warnings).
      const pk = w.quote((model.primaryKey[0] as EntityModel.FieldModel).column)
      if (action._tag === "Update") return ` ON DUPLICATE KEY UPDATE ${assignments(w, set)}`
      // With RETURNING the no-op update counts the conflicting rows (see `conflictMarker`).
      return spec.returning.length > 0
        ? ` ON DUPLICATE KEY UPDATE ${pk} = IF((${conflictVariable} := ${conflictVariable} + 1) > 0, ${pk}, ${pk})`
        : ` ON DUPLICATE KEY UPDATE ${pk} = ${pk}`
    }
    const keys = action._tag === "Update" && target.length === 0 ? model.primaryKey : target
    const targetSql = keys.length === 0 ? "" : ` (${keys.map((f) => w.quote(f.column)).join(", ")})`
    return action._tag === "Nothing"
      ? ` ON CONFLICT${targetSql} DO NOTHING`
      : ` ON CONFLICT${targetSql} DO UPDATE SET ${assignments(w, set)}`
  } finally {
    w.allowExcluded = false
    w.qualify = false
  }
}

/**
 * Writes one INSERT. A row with no column at all inserts the database defaults
 * (`DEFAULT VALUES`; MySQL `() VALUES ()`).
 *
 * @since 0.1.0 @category compilers
 */
export const insert = (
  w: Writer,
  spec: InsertSpec
): { readonly sql: string; readonly model: EntityModel.EntityModel } =>
  w.scoped(() => {
    const model = w.addSource(spec.node.into, true)
    let sql = `INSERT INTO ${w.quote(model.table)}`
    const width = spec.columns.length
    const marked = marksConflicts(w, spec)
    if (width === 0) {
      if (marked) {
        throw new QueryBuildError({
          reason: "onConflictDoNothing().returning() needs at least one column on MySQL/MariaDB"
        })
      }
      sql +=
        w.dialect.name === "mysql"
          ? ` () VALUES ${Array.from({ length: spec.rows }, () => "()").join(", ")}`
          : " DEFAULT VALUES"
    } else {
      const tuples = new Array<string>(spec.rows)
      for (let r = 0, i = 0; r < spec.rows; r++) {
        let tuple = "("
        for (let c = 0; c < width; c++, i++) {
          const value = w.param(spec.values[i], undefined, spec.columns[c])
          tuple +=
            i === 0 && marked
              ? `IF((${conflictVariable} := 0) = 0, ${value}, NULL)`
              : (c === 0 ? "" : ", ") + value
        }
        tuples[r] = `${tuple})`
      }
      sql += ` (${spec.columns.map((c) => w.quote(c.column)).join(", ")}) VALUES ${tuples.join(", ")}`
    }
    sql += conflictClause(w, spec, model)
    sql += returningClause(w, spec.returning)
    if (marked) sql += `, ${conflictVariable} AS ${w.quote(conflictMarker)}`
    return { sql, model }
  })

/**
 * How many parameters the clauses after VALUES bind (an upsert's update expressions), so a batch can
 * be split under the dialect's limit.
 *
 * @since 0.1.0 @category compilers
 */
export const insertSuffixParams = (w: Writer, spec: InsertSpec): number =>
  w.scoped(() => {
    const model = w.addSource(spec.node.into, true)
    conflictClause(w, spec, model)
    return w.params.length
  })

const noUpdateReturning = (w: Writer, returning: Returning, statement: string) => {
  if (returning !== undefined && w.dialect.name === "mysql") {
    throw new QueryBuildError({ reason: `MySQL and MariaDB have no ${statement} ... RETURNING` })
  }
}

/**
 * Writes an UPDATE. MySQL/MariaDB have no UPDATE ... RETURNING: asking for it fails to compile.
 *
 * @since 0.1.0 @category compilers
 */
export const update = (
  w: Writer,
  node: UpdateNode
): { readonly sql: string; readonly model: EntityModel.EntityModel } =>
  w.scoped(() => {
    noUpdateReturning(w, node.returning, "UPDATE")
    const model = w.addSource(node.table, true)
    if (node.set.length === 0)
      throw new QueryBuildError({ reason: "An UPDATE needs at least one column to set" })
    let sql = `UPDATE ${w.quote(model.table)} SET ${assignments(w, node.set)}`
    if (node.where !== undefined) sql += ` WHERE ${expr(w, node.where)}`
    sql += returningClause(w, returningFields(model, node.returning))
    return { sql, model }
  })

/**
 * Writes a DELETE (RETURNING on PostgreSQL, SQLite and MariaDB 10.5+).
 *
 * @since 0.1.0 @category compilers
 */
export const del = (
  w: Writer,
  node: DeleteNode
): { readonly sql: string; readonly model: EntityModel.EntityModel } =>
  w.scoped(() => {
    const model = w.addSource(node.from, true)
    let sql = `DELETE FROM ${w.quote(model.table)}`
    if (node.where !== undefined) sql += ` WHERE ${expr(w, node.where)}`
    sql += returningClause(w, returningFields(model, node.returning))
    return { sql, model }
  })

/**
 * Raw SQL with `?` placeholders, each bound to the next argument (`$n` on PostgreSQL).
 *
 * @since 0.1.0 @category compilers
 */
export const raw = (w: Writer, sql: string, args: ReadonlyArray<unknown>): string => rawSql(w, sql, args)

/**
 * A tagged template's parts joined by placeholders, one per interpolated value.
 *
 * @since 0.1.0 @category compilers
 */
export const template = (w: Writer, strings: ReadonlyArray<string>, args: ReadonlyArray<unknown>): string => {
  let out = strings[0] ?? ""
  for (let i = 0; i < args.length; i++) out += w.param(args[i]) + (strings[i + 1] ?? "")
  return out
}

/**
 * The statement a writer holds: its SQL, parameters and, when some are known, their fields.
 *
 * @since 0.1.0 @category compilers
 */
export const statement = (w: Writer, sql: string): Compiled => {
  // Only when some parameter is bound to a known field: absent means "nothing known".
  const compiled: Compiled = w.paramFields.some((f) => f !== undefined)
    ? { sql, params: w.params, paramFields: w.paramFields }
    : { sql, params: w.params }
  return w.sensitive ? { ...compiled, sensitive: true } : compiled
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
    return { statement: statement(w, sql), model }
  })
