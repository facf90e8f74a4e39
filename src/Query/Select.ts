/**
 * SELECT builder. Immutable: each method returns a new builder over a new node.
 *
 * @example
 * const adults = Select.from(User)
 *   .where((u) => u.age.gte(18))
 *   .orderBy("lastName")
 *   .limit(20)
 *   .getMulti()
 *
 * @example
 * const u = Expr.table(User, "u")
 * const p = Expr.table(Post, "p")
 * const titles = Select.from(User, "u")
 *   .join(Post, "p", p.userId.eq(u.id))
 *   .select({ name: u.firstName, title: p.title }, Schema.Struct({ name: Schema.String, title: Schema.String }))
 *   .getMulti()
 * @since 0.1.0
 */
import { Chunk, Effect, Either, Pipeable, Schema, Stream } from "effect"
import type { EntityModel, EntitySchema } from "../Schema/EntityModel.js"
import type * as EntityRegistry from "../Schema/EntityRegistry.js"
import type { DerivedSource, FromSource, JoinKind, RowShape, SelectionNode, SelectNode } from "./Ast.js"
import * as Compiler from "./Compiler.js"
import type { Dialect } from "./Dialect.js"
import { Executor, type ExecutorService, type QueryContext } from "./Executor.js"
import {
  type Columns,
  columnsProxy,
  conjoin,
  Expr,
  type ExprNode,
  type Ordering,
  type Predicate,
  type Subquery,
  SubqueryTypeId
} from "./Expr.js"
import * as Mutation from "./internal/mutation.js"
import { type DecodeError, NoRowsError, type QueryError } from "./QueryError.js"
import * as RowDecoder from "./RowDecoder.js"

/** What running a SELECT can fail with. @since 0.1.0 @category errors */
export type SelectError = QueryError | Compiler.CompileError | DecodeError

/** A field name of `A`, or an expression. @since 0.1.0 @category models */
export type Term<A> = (keyof A & string) | Expr<unknown>

const termNode = (source: string | undefined, term: string | Expr<unknown>): ExprNode =>
  typeof term === "string" ? { _tag: "Column", source, field: term } : term.node

/** The derived table a column of `scope` reads from, when it reads one. */
const derivedOf = (scope: SelectNode, source: string | undefined): DerivedSource | undefined => {
  const sources = [scope.from, ...(scope.joins ?? []).map((j) => j.source)]
  const found =
    source === undefined ? scope.from : sources.find((s) => s._tag === "Derived" && s.alias === source)
  return found?._tag === "Derived" ? found : undefined
}

/**
 * Whether an expression yields what drivers return as DECIMAL/BIGINT text or bigint (COUNT, SUM, AVG),
 * followed through arithmetic, MIN/MAX, scalar subqueries and the columns of derived tables at any
 * depth: such a value is read as a number (exactly, or `DecodeError`).
 */
const isNumeric = (node: ExprNode, scope: SelectNode): boolean => {
  switch (node._tag) {
    case "Aggregate":
      if (node.fn === "COUNT" || node.fn === "SUM" || node.fn === "AVG") return true
      return node.operand !== undefined && isNumeric(node.operand, scope)
    case "Binary":
      return isArithmetic(node.op) && (isNumeric(node.left, scope) || isNumeric(node.right, scope))
    case "Subquery": {
      const only = node.query.selection
      return only?.length === 1 && only[0] !== undefined && isNumeric(only[0].expr, node.query)
    }
    case "Column": {
      const derived = derivedOf(scope, node.source)
      const inner = derived?.select
      const selected = inner?.selection?.find(
        (s) =>
          s.alias === node.field ||
          (s.alias === undefined && s.expr._tag === "Column" && s.expr.field === node.field)
      )
      if (inner === undefined) return false
      // A derived table that selects everything of its own source passes that source's columns on.
      if (inner.selection === undefined) return isNumeric({ ...node, source: undefined }, inner)
      return selected !== undefined && isNumeric(selected.expr, inner)
    }
    default:
      return false
  }
}

const isArithmetic = (op: string) => op === "+" || op === "-" || op === "*" || op === "/"

/** The row shape of entity rows of `from` (a derived table keeps the shape of its own SELECT). */
/**
 * A copy of `node` with `patch` applied, every field written out: builders step through this on each
 * call, and a literal of one fixed shape is several times faster than an object spread.
 */
const withPatch = (node: SelectNode, patch: Partial<SelectNode>): SelectNode => {
  const copy: SelectNode = {
    _tag: "Select",
    from: patch.from ?? node.from,
    selection: "selection" in patch ? patch.selection : node.selection,
    distinct: patch.distinct ?? node.distinct,
    where: "where" in patch ? patch.where : node.where,
    groupBy: patch.groupBy ?? node.groupBy,
    having: "having" in patch ? patch.having : node.having,
    orderBy: patch.orderBy ?? node.orderBy,
    limit: "limit" in patch ? patch.limit : node.limit,
    offset: "offset" in patch ? patch.offset : node.offset
  }
  const joins = patch.joins ?? node.joins
  return joins === undefined ? copy : { ...copy, joins }
}

const shapeOf = (from: FromSource): RowShape =>
  from._tag === "Table" ? { keyed: "column", schema: from.schema } : from.shape

/** `USING (...)` columns: fields of the joined source, which both sides must have under one name. @since 0.1.0 @category models */
export interface Using<K extends string> {
  readonly _tag: "Using"
  readonly fields: ReadonlyArray<K>
}

/**
 * `JOIN ... USING (columns)`, named by fields of the joined source.
 *
 * @since 0.1.0 @category constructors
 */
export const using = <K extends string>(...fields: readonly [K, ...ReadonlyArray<K>]): Using<K> => ({
  _tag: "Using",
  fields
})

/**
 * A join condition: a predicate, a function of the joined source's and the root's columns, or `using(...)`.
 *
 * @since 0.1.0 @category models
 */
export type JoinOn<A, B> =
  | Predicate
  | ((joined: Columns<B>, root: Columns<A>) => Predicate)
  | Using<keyof B & string>

type AnyJoinOn = Predicate | ((joined: never, root: never) => Predicate) | Using<string>

/**
 * A SELECT turned into a named derived table (`(SELECT ...) AS "t"`) for `Select.from` or a join.
 * Its columns are the fields (or aliases) its SELECT names.
 *
 * @since 0.1.0 @category models
 */
export class DerivedTable<Out> {
  readonly source: DerivedSource
  readonly decoder: RowDecoder.RowDecoder<Out>
  constructor(source: DerivedSource, decoder: RowDecoder.RowDecoder<Out>) {
    this.source = source
    this.decoder = decoder
  }

  /** Its columns, qualified by its alias, for select lists and conditions of the outer query. */
  get columns(): Columns<Out> {
    return columnsProxy<Out>(this.source.alias)
  }
}

const variance: { readonly _V: (_: never) => never } = { _V: (_) => _ }

/**
 * A SELECT over entity `A` whose rows decode to `Out`.
 *
 * @since 0.1.0 @category models
 */
export class SelectBuilder<A, Out> implements Pipeable.Pipeable, Subquery<Out[keyof Out]> {
  readonly [SubqueryTypeId]: { readonly _V: (_: never) => Out[keyof Out] } = variance

  readonly node: SelectNode
  readonly decoder: RowDecoder.RowDecoder<Out>
  /** How rows are keyed and which schema they follow: what a derived table made of this needs. */
  readonly shape: RowShape
  constructor(node: SelectNode, decoder: RowDecoder.RowDecoder<Out>, shape: RowShape = shapeOf(node.from)) {
    this.node = node
    this.decoder = decoder
    this.shape = shape
  }

  pipe() {
    // biome-ignore lint/complexity/noArguments: the Pipeable protocol forwards its arguments.
    return Pipeable.pipeArguments(this, arguments)
  }

  private with(patch: Partial<SelectNode>): SelectBuilder<A, Out> {
    return new SelectBuilder(withPatch(this.node, patch), this.decoder, this.shape)
  }

  private get cols(): Columns<A> {
    return columnsProxy<A>(this.node.from.alias)
  }

  private predicate(p: Predicate | ((c: Columns<A>) => Predicate)): ExprNode {
    return (typeof p === "function" ? p(this.cols) : p).node
  }

  /** Adds a WHERE condition; several calls are joined with AND. */
  where(predicate: Predicate | ((columns: Columns<A>) => Predicate)): SelectBuilder<A, Out> {
    const node = this.predicate(predicate)
    return this.with({
      where: conjoin(this.node.where, node)
    })
  }

  /** Selects only the named fields; rows decode to `Pick<A, K>`. */
  columns<K extends keyof A & string>(...fields: ReadonlyArray<K>): SelectBuilder<A, Pick<A, K>> {
    const source = this.node.from.alias
    const selection = fields.map(
      (field): SelectionNode => ({ expr: { _tag: "Column", source, field }, alias: undefined })
    )
    const shape = shapeOf(this.node.from)
    // A derived table's schema may be any projection schema; a field it does not list decodes as is.
    const all: Schema.Struct.Fields = (shape.schema as Partial<EntitySchema>).fields ?? {}
    // An entity's fields need no context (EntitySchema has R = never), so neither does a subset.
    const picked = Schema.Struct(
      Object.fromEntries(fields.map((f) => [f, all[f] ?? Schema.Unknown]))
    ) as unknown as Schema.Schema.AnyNoContext
    const decode: RowDecoder.Decode<Pick<A, K>> = Schema.decodeUnknownEither(picked)
    return new SelectBuilder<A, Pick<A, K>>(
      { ...this.node, selection },
      shape.keyed === "column"
        ? RowDecoder.entity(decode, fields)
        : RowDecoder.projection(
            decode,
            new Set(fields.filter((f) => isNumeric({ _tag: "Column", source, field: f }, this.node)))
          ),
      { keyed: shape.keyed, schema: picked }
    )
  }

  /**
   * Selects named expressions (aliases are the keys) and decodes each row with `schema`.
   * COUNT, SUM and AVG values are read as numbers whatever the driver returns.
   */
  select<S extends Record<string, Expr<unknown>>, O, I>(
    selection: S | ((columns: Columns<A>) => S),
    schema: Schema.Schema<O, I, never>
  ): SelectBuilder<A, O> {
    const exprs = typeof selection === "function" ? selection(this.cols) : selection
    const entries = Object.entries(exprs)
    const numeric = new Set(entries.filter(([, e]) => isNumeric(e.node, this.node)).map(([alias]) => alias))
    return new SelectBuilder<A, O>(
      { ...this.node, selection: entries.map(([alias, e]) => ({ expr: e.node, alias })) },
      RowDecoder.projection(Schema.decodeUnknownEither(schema), numeric),
      { keyed: "alias", schema }
    )
  }

  private addJoin(
    kind: JoinKind,
    target: Schema.Schema.AnyNoContext | DerivedTable<unknown>,
    second: string | AnyJoinOn,
    third: AnyJoinOn | undefined
  ): SelectBuilder<A, Out> {
    const source: FromSource =
      target instanceof DerivedTable
        ? target.source
        : { _tag: "Table", schema: target, alias: typeof second === "string" ? second : undefined }
    const on = (typeof second === "string" ? third : second) as AnyJoinOn
    const condition =
      typeof on === "function"
        ? {
            on: (on as (j: Columns<unknown>, r: Columns<A>) => Predicate)(
              columnsProxy(source.alias),
              this.cols
            ).node,
            using: undefined
          }
        : on instanceof Expr
          ? { on: on.node, using: undefined }
          : { on: undefined, using: on.fields }
    return this.with({ joins: [...(this.node.joins ?? []), { kind, source, ...condition }] })
  }

  /**
   * `INNER JOIN` an entity's table under `alias`, or a derived table, `ON` a predicate or `USING` columns.
   * Columns of the root are then written qualified; reach the joined table through `Expr.table`.
   */
  join<B, I>(schema: EntitySchema<B, I>, alias: string, on: JoinOn<A, B>): SelectBuilder<A, Out>
  join<B>(table: DerivedTable<B>, on: JoinOn<A, B>): SelectBuilder<A, Out>
  join(
    target: Schema.Schema.AnyNoContext | DerivedTable<unknown>,
    second: string | AnyJoinOn,
    third?: AnyJoinOn
  ): SelectBuilder<A, Out> {
    return this.addJoin("INNER", target, second, third)
  }

  /** `LEFT JOIN`: like `join`; the joined columns are NULL where nothing matches. */
  leftJoin<B, I>(schema: EntitySchema<B, I>, alias: string, on: JoinOn<A, B>): SelectBuilder<A, Out>
  leftJoin<B>(table: DerivedTable<B>, on: JoinOn<A, B>): SelectBuilder<A, Out>
  leftJoin(
    target: Schema.Schema.AnyNoContext | DerivedTable<unknown>,
    second: string | AnyJoinOn,
    third?: AnyJoinOn
  ): SelectBuilder<A, Out> {
    return this.addJoin("LEFT", target, second, third)
  }

  /** `RIGHT JOIN`: like `join`; the root's columns are NULL where nothing matches. */
  rightJoin<B, I>(schema: EntitySchema<B, I>, alias: string, on: JoinOn<A, B>): SelectBuilder<A, Out>
  rightJoin<B>(table: DerivedTable<B>, on: JoinOn<A, B>): SelectBuilder<A, Out>
  rightJoin(
    target: Schema.Schema.AnyNoContext | DerivedTable<unknown>,
    second: string | AnyJoinOn,
    third?: AnyJoinOn
  ): SelectBuilder<A, Out> {
    return this.addJoin("RIGHT", target, second, third)
  }

  /**
   * This SELECT as a derived table named `alias`, for `Select.from` or a join. Every selected
   * expression must be named (`columns(...)` or the keys of `select(...)`).
   */
  as(alias: string): DerivedTable<Out> {
    return new DerivedTable({ _tag: "Derived", select: this.node, alias, shape: this.shape }, this.decoder)
  }

  distinct(distinct = true): SelectBuilder<A, Out> {
    return this.with({ distinct })
  }

  groupBy(
    ...terms: ReadonlyArray<Term<A> | ((columns: Columns<A>) => Expr<unknown>)>
  ): SelectBuilder<A, Out> {
    const nodes = terms.map((t) =>
      typeof t === "function" ? t(this.cols).node : termNode(this.node.from.alias, t)
    )
    return this.with({ groupBy: [...this.node.groupBy, ...nodes] })
  }

  /** Adds a HAVING condition; several calls are joined with AND. */
  having(predicate: Predicate | ((columns: Columns<A>) => Predicate)): SelectBuilder<A, Out> {
    const node = this.predicate(predicate)
    return this.with({
      having: conjoin(this.node.having, node)
    })
  }

  /** Adds an ORDER BY term: a field name or expression with a direction, or an `Ordering`. */
  orderBy(
    term: Term<A> | Ordering | ((columns: Columns<A>) => Expr<unknown> | Ordering),
    direction: "asc" | "desc" = "asc"
  ): SelectBuilder<A, Out> {
    const resolved = typeof term === "function" ? term(this.cols) : term
    const ordering: Ordering =
      typeof resolved === "object" && !(resolved instanceof Expr)
        ? resolved
        : {
            _tag: "Ordering",
            expr: termNode(this.node.from.alias, resolved),
            direction: direction === "asc" ? "ASC" : "DESC"
          }
    return this.with({ orderBy: [...this.node.orderBy, ordering] })
  }

  limit(limit: number): SelectBuilder<A, Out> {
    return this.with({ limit })
  }

  offset(offset: number): SelectBuilder<A, Out> {
    return this.with({ offset })
  }

  /** The SQL and parameters for `dialect` (with a registry's name overrides when given). */
  compile(
    dialect: Dialect,
    registry: EntityRegistry.EntityRegistryService = Mutation.defaultRegistry
  ): Either.Either<Compiler.Compiled, Compiler.CompileError> {
    return Either.map(
      Compiler.compile(dialect, registry, (w) => Compiler.select(w, this.node)),
      (c) => c.statement
    )
  }

  private context(
    ex: ExecutorService
  ): Either.Either<{ readonly ctx: QueryContext; readonly model: EntityModel }, Compiler.CompileError> {
    return Either.map(
      Compiler.compile(ex.session.dialect, ex.session.registry, (w) => Compiler.select(w, this.node)),
      ({ statement, model }) => ({
        model,
        ctx: {
          type: "SELECT",
          model,
          table: model.table,
          statement,
          description: { _tag: "Select", node: this.node },
          expects: "rows",
          session: ex.session
        }
      })
    )
  }

  /** Runs the query and hands the decoded rows to `finish`, in as few effect steps as the hot path allows. */
  private run<B, E2>(
    finish: (rows: ReadonlyArray<Out>, model: EntityModel) => Effect.Effect<B, E2>
  ): Effect.Effect<B, SelectError | E2, Executor> {
    return Effect.flatMap(Executor, (ex): Effect.Effect<B, SelectError | E2> => {
      const prepared = this.context(ex)
      if (Either.isLeft(prepared)) return Effect.fail(prepared.left)
      const { ctx, model } = prepared.right
      return Effect.flatMap(ex.execute(ctx), (result): Effect.Effect<B, SelectError | E2> => {
        const rows = this.decoder.decode(result.rows, model)
        return Either.isLeft(rows) ? Effect.fail(rows.left) : finish(rows.right, model)
      })
    })
  }

  /** Every row. */
  getMulti(): Effect.Effect<ReadonlyArray<Out>, SelectError, Executor> {
    return this.run((rows) => Effect.succeed(rows))
  }

  /** The first row (LIMIT 1 unless a limit is set), or `NoRowsError`. */
  get(): Effect.Effect<Out, SelectError | NoRowsError, Executor> {
    const one = this.node.limit === undefined ? this.limit(1) : this
    return one.run((rows, model) => {
      const first = rows[0]
      return rows.length === 0 || first === undefined
        ? Effect.fail(new NoRowsError({ table: model.table }))
        : Effect.succeed(first)
    })
  }

  /**
   * The rows as a Stream. MySQL/MariaDB (mysql2 row stream) and PostgreSQL (cursor, 128 rows a
   * read) stream from the server; SQLite reads the whole result first. Not seen by middleware.
   */
  stream(): Stream.Stream<Out, SelectError, Executor> {
    return Stream.unwrap(
      Effect.flatMap(Executor, (ex) =>
        Effect.map(this.context(ex), ({ ctx, model }) =>
          Stream.mapChunksEffect(ex.stream(ctx), (chunk) =>
            Effect.map(this.decoder.decode(Chunk.toReadonlyArray(chunk), model), Chunk.unsafeFromArray)
          )
        )
      )
    )
  }
}

const selectFrom = (from: FromSource): SelectNode => ({
  _tag: "Select",
  from,
  selection: undefined,
  distinct: false,
  where: undefined,
  groupBy: [],
  having: undefined,
  orderBy: [],
  limit: undefined,
  offset: undefined
})

/**
 * A SELECT of every mapped column of `schema`'s table, optionally aliased; or of every column of a
 * derived table (`sub.as("t")`), whose rows decode as the subquery's did.
 *
 * @since 0.1.0 @category constructors
 */
export function from<A, I>(schema: EntitySchema<A, I>, alias?: string): SelectBuilder<A, A>
export function from<Out>(table: DerivedTable<Out>): SelectBuilder<Out, Out>
export function from<A, I>(
  source: EntitySchema<A, I> | DerivedTable<A>,
  alias?: string
): SelectBuilder<A, A> {
  return source instanceof DerivedTable
    ? new SelectBuilder<A, A>(selectFrom(source.source), source.decoder)
    : new SelectBuilder<A, A>(selectFrom({ _tag: "Table", schema: source, alias }), RowDecoder.entity<A>())
}
