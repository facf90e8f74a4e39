/**
 * Expressions: columns, values, predicates, arithmetic and aggregates. Each is an immutable node
 * tree wrapped in a typed `Expr<A>`, so a comparison between a number column and a string, or a
 * reference to a field the entity does not have, is a compile error.
 *
 * @since 0.1.0
 */
import type { Schema } from "effect"
import { globalValue } from "effect/GlobalValue"
import type { SelectNode } from "./Ast.js"

/** A node of the expression tree; the compiler turns it into SQL. @since 0.1.0 @category nodes */
export type ExprNode =
  | { readonly _tag: "Column"; readonly source: string | undefined; readonly field: string }
  | { readonly _tag: "Value"; readonly value: unknown }
  | { readonly _tag: "Binary"; readonly op: BinaryOp; readonly left: ExprNode; readonly right: ExprNode }
  | {
      readonly _tag: "In"
      readonly negated: boolean
      readonly operand: ExprNode
      readonly values: ReadonlyArray<ExprNode>
    }
  | { readonly _tag: "IsNull"; readonly negated: boolean; readonly operand: ExprNode }
  | { readonly _tag: "Between"; readonly operand: ExprNode; readonly low: ExprNode; readonly high: ExprNode }
  | { readonly _tag: "And" | "Or"; readonly operands: ReadonlyArray<ExprNode> }
  | { readonly _tag: "Not"; readonly operand: ExprNode }
  | { readonly _tag: "Raw"; readonly sql: string; readonly args: ReadonlyArray<unknown> }
  | {
      readonly _tag: "Aggregate"
      readonly fn: AggregateFn
      readonly distinct: boolean
      readonly operand: ExprNode | undefined
    }
  /** The value a conflicting INSERT proposed for a column (`excluded.col`, MySQL `VALUES(col)`). */
  | { readonly _tag: "Excluded"; readonly field: string }
  | {
      readonly _tag: "InSubquery"
      readonly negated: boolean
      readonly operand: ExprNode
      readonly query: SelectNode
    }
  | { readonly _tag: "Exists"; readonly negated: boolean; readonly query: SelectNode }
  /** `ANY (subquery)` / `ALL (subquery)`: only valid on the right of a comparison. */
  | { readonly _tag: "Quantified"; readonly quantifier: "ANY" | "ALL"; readonly query: SelectNode }
  /** A scalar subquery: one column, at most one row. */
  | { readonly _tag: "Subquery"; readonly query: SelectNode }

/** @since 0.1.0 @category nodes */
export type BinaryOp = "=" | "<>" | "<" | "<=" | ">" | ">=" | "LIKE" | "NOT LIKE" | "+" | "-" | "*" | "/"

/** @since 0.1.0 @category nodes */
export type AggregateFn = "COUNT" | "SUM" | "AVG" | "MIN" | "MAX"

/** One ORDER BY term. @since 0.1.0 @category nodes */
export interface Ordering {
  readonly _tag: "Ordering"
  readonly expr: ExprNode
  readonly direction: "ASC" | "DESC"
}

/** A value or an expression of the same type. @since 0.1.0 @category models */
export type Operand<A> = A | Expr<A>

/** @since 0.1.0 @category symbols */
export const SubqueryTypeId: unique symbol = Symbol.for("effect-dal/Expr/Subquery")

/**
 * A SELECT usable as a subquery; `V` is the type of its single column's values (a `Select` builder).
 *
 * @since 0.1.0 @category models
 */
export interface Subquery<out V> {
  readonly [SubqueryTypeId]: { readonly _V: (_: never) => V }
  readonly node: SelectNode
}

/** @since 0.1.0 @category guards */
export const isSubquery = (u: unknown): u is Subquery<unknown> =>
  typeof u === "object" && u !== null && SubqueryTypeId in u

const isExpr = (u: unknown): u is Expr<unknown> => u instanceof Expr

const operand = (value: unknown): ExprNode => (isExpr(value) ? value.node : { _tag: "Value", value })

const isNullValue = (value: unknown) => value === null || value === undefined

/**
 * A typed SQL expression. `A` is the type of the value it yields.
 *
 * @since 0.1.0 @category models
 */
export class Expr<A> {
  declare readonly _A: A
  readonly node: ExprNode
  constructor(node: ExprNode) {
    this.node = node
  }

  private binary(op: BinaryOp, value: unknown): Predicate {
    return new Expr({ _tag: "Binary", op, left: this.node, right: operand(value) })
  }

  /** `= value`; comparing with `null` renders `IS NULL`. */
  eq(value: Operand<A>): Predicate {
    return isNullValue(value) ? this.isNull() : this.binary("=", value)
  }
  /** `<> value`; comparing with `null` renders `IS NOT NULL`. */
  neq(value: Operand<A>): Predicate {
    return isNullValue(value) ? this.isNotNull() : this.binary("<>", value)
  }
  lt(value: Operand<NonNullable<A>>): Predicate {
    return this.binary("<", value)
  }
  lte(value: Operand<NonNullable<A>>): Predicate {
    return this.binary("<=", value)
  }
  gt(value: Operand<NonNullable<A>>): Predicate {
    return this.binary(">", value)
  }
  gte(value: Operand<NonNullable<A>>): Predicate {
    return this.binary(">=", value)
  }
  like(this: Expr<string | null | undefined>, pattern: Operand<string>): Predicate {
    return this.binary("LIKE", pattern)
  }
  notLike(this: Expr<string | null | undefined>, pattern: Operand<string>): Predicate {
    return this.binary("NOT LIKE", pattern)
  }
  /** `IN (...)` a list (an empty list matches nothing) or a one-column subquery. */
  in(values: Iterable<Operand<NonNullable<A>>> | Subquery<NonNullable<A> | null>): Predicate {
    return inNode(this.node, false, values)
  }
  /** `NOT IN (...)` a list (an empty list matches everything) or a one-column subquery. */
  notIn(values: Iterable<Operand<NonNullable<A>>> | Subquery<NonNullable<A> | null>): Predicate {
    return inNode(this.node, true, values)
  }
  isNull(): Predicate {
    return new Expr({ _tag: "IsNull", negated: false, operand: this.node })
  }
  isNotNull(): Predicate {
    return new Expr({ _tag: "IsNull", negated: true, operand: this.node })
  }
  between(low: Operand<NonNullable<A>>, high: Operand<NonNullable<A>>): Predicate {
    return new Expr({ _tag: "Between", operand: this.node, low: operand(low), high: operand(high) })
  }
  add(this: Expr<number | bigint | null | undefined>, value: Operand<NonNullable<A>>): Expr<A> {
    return new Expr({ _tag: "Binary", op: "+", left: this.node, right: operand(value) })
  }
  sub(this: Expr<number | bigint | null | undefined>, value: Operand<NonNullable<A>>): Expr<A> {
    return new Expr({ _tag: "Binary", op: "-", left: this.node, right: operand(value) })
  }
  mul(this: Expr<number | bigint | null | undefined>, value: Operand<NonNullable<A>>): Expr<A> {
    return new Expr({ _tag: "Binary", op: "*", left: this.node, right: operand(value) })
  }
  div(this: Expr<number | bigint | null | undefined>, value: Operand<NonNullable<A>>): Expr<A> {
    return new Expr({ _tag: "Binary", op: "/", left: this.node, right: operand(value) })
  }
  asc(): Ordering {
    return { _tag: "Ordering", expr: this.node, direction: "ASC" }
  }
  desc(): Ordering {
    return { _tag: "Ordering", expr: this.node, direction: "DESC" }
  }
}

const inNode = (node: ExprNode, negated: boolean, values: Iterable<unknown> | Subquery<unknown>): Predicate =>
  new Expr(
    isSubquery(values)
      ? { _tag: "InSubquery", negated, operand: node, query: values.node }
      : { _tag: "In", negated, operand: node, values: Array.from(values, operand) }
  )

/** An expression that yields a boolean. @since 0.1.0 @category models */
export type Predicate = Expr<boolean>

/** The typed column references of an entity type. @since 0.1.0 @category models */
export type Columns<A> = { readonly [K in keyof A & string]-?: Expr<A[K]> }

/** A column reference by field name, resolved against the entity at compile time. @since 0.1.0 @category constructors */
export const column = <A = unknown>(field: string, source?: string): Expr<A> =>
  new Expr({ _tag: "Column", source, field })

/**
 * A proxy whose properties are the columns of `source` (the root table when undefined).
 *
 * @since 0.1.0 @category constructors
 */
export const columnsProxy = <A>(source?: string): Columns<A> => {
  const own = ownProxies()
  let proxy = own.get(source)
  if (proxy === undefined) {
    proxy = makeProxy(source)
    // Sources are table names and aliases written in code; the cap guards against generated ones.
    if (own.size >= 1_000) own.clear()
    own.set(source, proxy)
  }
  // The typing comes from `Columns<A>`; at run time any name yields a column, checked at compile time.
  return proxy as unknown as Columns<A>
}

/**
 * One proxy per source: column references are immutable, so every builder can share them. The proxies
 * hold `Expr` instances, so each loaded copy of this module (a program that loads both `dist/` and
 * the sources, or two versions of the package) keeps its own: builders test `instanceof Expr`.
 */
const proxies = globalValue(
  Symbol.for("effect-dal/Expr/proxies"),
  () => new WeakMap<typeof Expr, Map<string | undefined, Record<string, Expr<unknown>>>>()
)

const ownProxies = (): Map<string | undefined, Record<string, Expr<unknown>>> => {
  let own = proxies.get(Expr)
  if (own === undefined) {
    own = new Map()
    proxies.set(Expr, own)
  }
  return own
}

const makeProxy = (source: string | undefined) =>
  new Proxy<Record<string, Expr<unknown>>>(
    {},
    {
      get: (cache, field) => {
        if (typeof field !== "string") return undefined
        const existing = cache[field]
        if (existing !== undefined) return existing
        const created = column(field, source)
        cache[field] = created
        return created
      }
    }
  )

/** The `C("age").gt(18)` style, typed by the entity, with `C.field(name)` for run-time names. @since 0.1.0 @category models */
export interface ColumnFn<A> {
  <K extends keyof A & string>(field: K): Expr<A[K]>
  /** A column named at run time; validated against the entity when the query compiles (`UnknownFieldError`). */
  readonly field: (name: string) => Expr<unknown>
}

/**
 * Typed column references of an entity.
 *
 * @example
 * const C = Expr.columns(User)
 * Select.from(User).where(C("age").gt(18))
 * @since 0.1.0 @category constructors
 */
export const columns = <A, I>(_schema: Schema.Schema<A, I, never>, source?: string): ColumnFn<A> =>
  Object.assign(<K extends keyof A & string>(field: K): Expr<A[K]> => column<A[K]>(field, source), {
    field: (name: string) => column(name, source)
  })

/**
 * The columns of an entity under a table alias (or its table name), for joins and correlated
 * subqueries.
 *
 * @example
 * const u = Expr.table(User, "u")
 * const p = Expr.table(Post, "p")
 * Select.from(User, "u").join(Post, "p", p.userId.eq(u.id))
 * @since 0.1.0 @category constructors
 */
export const table = <A, I>(_schema: Schema.Schema<A, I, never>, alias: string): Columns<A> =>
  columnsProxy<A>(alias)

/**
 * The values a conflicting INSERT proposed, by field: `excluded.col` on PostgreSQL and SQLite,
 * `VALUES(col)` on MySQL/MariaDB. Used in `Insert.onConflictDoUpdate`.
 *
 * @since 0.1.0 @category constructors
 */
export const excludedProxy = <A>(): Columns<A> =>
  new Proxy<Record<string, Expr<unknown>>>(
    {},
    {
      get: (cache, field) => {
        if (typeof field !== "string") return undefined
        const created = cache[field] ?? new Expr({ _tag: "Excluded", field })
        cache[field] = created
        return created
      }
    }
  ) as unknown as Columns<A>

/** A bound value. @since 0.1.0 @category constructors */
export const value = <A>(value: A): Expr<A> => new Expr({ _tag: "Value", value })

/**
 * Raw SQL with `?` placeholders for bound arguments; the arguments are never written into the text.
 *
 * @example
 * Expr.raw<boolean>("LOWER(email) = ?", input.toLowerCase())
 * @since 0.1.0 @category constructors
 */
export const raw = <A = unknown>(sql: string, ...args: ReadonlyArray<unknown>): Expr<A> =>
  new Expr({ _tag: "Raw", sql, args })

/** Every predicate holds; no predicate at all is true. @since 0.1.0 @category predicates */
export const and = (...predicates: ReadonlyArray<Predicate>): Predicate =>
  new Expr({ _tag: "And", operands: predicates.map((p) => p.node) })

/** Some predicate holds; no predicate at all is false. @since 0.1.0 @category predicates */
export const or = (...predicates: ReadonlyArray<Predicate>): Predicate =>
  new Expr({ _tag: "Or", operands: predicates.map((p) => p.node) })

/**
 * Adds `added` to an optional condition with AND: what a second `where` or `having` call does.
 *
 * @since 0.1.0 @category predicates
 */
export const conjoin = (existing: ExprNode | undefined, added: ExprNode): ExprNode =>
  existing === undefined ? added : { _tag: "And", operands: [existing, added] }

/** @since 0.1.0 @category predicates */
export const not = (predicate: Predicate): Predicate => new Expr({ _tag: "Not", operand: predicate.node })

const aggregate = <A>(fn: AggregateFn, operand: Expr<unknown> | undefined, distinct = false): Expr<A> =>
  new Expr({ _tag: "Aggregate", fn, distinct, operand: operand?.node })

/** `COUNT(*)`, or `COUNT(expr)` (non-null values). Always decoded as a number. @since 0.1.0 @category aggregates */
export const count = (expr?: Expr<unknown>): Expr<number> => aggregate("COUNT", expr)

/** `COUNT(DISTINCT expr)`. @since 0.1.0 @category aggregates */
export const countDistinct = (expr: Expr<unknown>): Expr<number> => aggregate("COUNT", expr, true)

/**
 * `SUM(expr)`: decoded as a number (drivers return DECIMAL as text; a value a number cannot hold
 * exactly fails with `DecodeError` rather than being rounded); null over no rows.
 *
 * @since 0.1.0 @category aggregates
 */
export const sum = (expr: Expr<number | bigint | null | undefined>): Expr<number | null> =>
  aggregate("SUM", expr)

/** `AVG(expr)`, decoded as a number like `sum`. @since 0.1.0 @category aggregates */
export const avg = (expr: Expr<number | bigint | null | undefined>): Expr<number | null> =>
  aggregate("AVG", expr)

/** `MIN(expr)`: the column's own type, null over no rows. @since 0.1.0 @category aggregates */
export const min = <A>(expr: Expr<A>): Expr<A | null> => aggregate("MIN", expr)

/** `MAX(expr)`: the column's own type, null over no rows. @since 0.1.0 @category aggregates */
export const max = <A>(expr: Expr<A>): Expr<A | null> => aggregate("MAX", expr)

/** `EXISTS (subquery)`. @since 0.1.0 @category subqueries */
export const exists = (query: Subquery<unknown>): Predicate =>
  new Expr({ _tag: "Exists", negated: false, query: query.node })

/** `NOT EXISTS (subquery)`. @since 0.1.0 @category subqueries */
export const notExists = (query: Subquery<unknown>): Predicate =>
  new Expr({ _tag: "Exists", negated: true, query: query.node })

/**
 * `ANY (subquery)`, for the right of a comparison: `c.age.gt(Expr.any(sub))`. PostgreSQL and
 * MySQL/MariaDB; SQLite has no ANY/ALL and fails with `QueryBuildError` (use `in` or `exists`).
 *
 * @since 0.1.0 @category subqueries
 */
export const any = <V>(query: Subquery<V>): Expr<NonNullable<V>> =>
  new Expr({ _tag: "Quantified", quantifier: "ANY", query: query.node })

/** `ALL (subquery)`, for the right of a comparison; not on SQLite (see `any`). @since 0.1.0 @category subqueries */
export const all = <V>(query: Subquery<V>): Expr<NonNullable<V>> =>
  new Expr({ _tag: "Quantified", quantifier: "ALL", query: query.node })

/**
 * A scalar subquery `(SELECT ...)`: one column, at most one row; NULL when it finds none.
 *
 * @since 0.1.0 @category subqueries
 */
export const scalar = <V>(query: Subquery<V>): Expr<V | null> =>
  new Expr({ _tag: "Subquery", query: query.node })
