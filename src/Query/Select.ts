/**
 * SELECT builder. Immutable: each method returns a new builder over a new node.
 *
 * @example
 * const adults = Select.from(User)
 *   .where((u) => u.age.gte(18))
 *   .orderBy("lastName")
 *   .limit(20)
 *   .getMulti()
 * @since 0.1.0
 */
import { Chunk, Effect, Either, Pipeable, Schema, Stream } from "effect"
import type { EntityModel, EntitySchema } from "../Schema/EntityModel.js"
import * as EntityRegistry from "../Schema/EntityRegistry.js"
import type { SelectionNode, SelectNode } from "./Ast.js"
import * as Compiler from "./Compiler.js"
import type { Dialect } from "./Dialect.js"
import { Executor, type ExecutorService, type QueryContext } from "./Executor.js"
import { type Columns, columnsProxy, Expr, type ExprNode, type Ordering, type Predicate } from "./Expr.js"
import { type DecodeError, NoRowsError, type QueryError } from "./QueryError.js"
import * as RowDecoder from "./RowDecoder.js"

/** What running a SELECT can fail with. @since 0.1.0 @category errors */
export type SelectError = QueryError | Compiler.CompileError | DecodeError

/** A field name of `A`, or an expression. @since 0.1.0 @category models */
export type Term<A> = (keyof A & string) | Expr<unknown>

const defaultRegistry = EntityRegistry.make()

const termNode = (source: string | undefined, term: string | Expr<unknown>): ExprNode =>
  typeof term === "string" ? { _tag: "Column", source, field: term } : term.node

const isNumericAggregate = (node: ExprNode) =>
  node._tag === "Aggregate" && (node.fn === "COUNT" || node.fn === "SUM" || node.fn === "AVG")

/**
 * A SELECT over entity `A` whose rows decode to `Out`.
 *
 * @since 0.1.0 @category models
 */
export class SelectBuilder<A, Out> implements Pipeable.Pipeable {
  constructor(
    readonly node: SelectNode,
    readonly decoder: RowDecoder.RowDecoder<Out>
  ) {}

  pipe() {
    // biome-ignore lint/complexity/noArguments: the Pipeable protocol forwards its arguments.
    return Pipeable.pipeArguments(this, arguments)
  }

  private with(patch: Partial<SelectNode>): SelectBuilder<A, Out> {
    return new SelectBuilder({ ...this.node, ...patch }, this.decoder)
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
      where: this.node.where === undefined ? node : { _tag: "And", operands: [this.node.where, node] }
    })
  }

  /** Selects only the named fields; rows decode to `Pick<A, K>`. */
  columns<K extends keyof A & string>(...fields: ReadonlyArray<K>): SelectBuilder<A, Pick<A, K>> {
    const source = this.node.from.alias
    const selection = fields.map(
      (field): SelectionNode => ({ expr: { _tag: "Column", source, field }, alias: undefined })
    )
    const all = (this.node.from.schema as EntitySchema).fields
    // An entity's fields need no context (EntitySchema has R = never), so neither does a subset.
    const picked = Schema.Struct(
      Object.fromEntries(fields.flatMap((f) => (all[f] === undefined ? [] : [[f, all[f]]])))
    ) as unknown as Schema.Schema.AnyNoContext
    const decode: RowDecoder.Decode<Pick<A, K>> = Schema.decodeUnknownEither(picked)
    return new SelectBuilder<A, Pick<A, K>>({ ...this.node, selection }, RowDecoder.entity(decode, fields))
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
    const numeric = new Set(entries.filter(([, e]) => isNumericAggregate(e.node)).map(([alias]) => alias))
    return new SelectBuilder<A, O>(
      { ...this.node, selection: entries.map(([alias, e]) => ({ expr: e.node, alias })) },
      RowDecoder.projection(Schema.decodeUnknownEither(schema), numeric)
    )
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
      having: this.node.having === undefined ? node : { _tag: "And", operands: [this.node.having, node] }
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
    registry: EntityRegistry.EntityRegistryService = defaultRegistry
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
          builder: this.node,
          expects: "rows",
          session: ex.session
        }
      })
    )
  }

  /** Every row. */
  getMulti(): Effect.Effect<ReadonlyArray<Out>, SelectError, Executor> {
    return Effect.flatMap(Executor, (ex) =>
      Effect.flatMap(this.context(ex), ({ ctx, model }) =>
        Effect.flatMap(ex.execute(ctx), (result) => this.decoder.decode(result.rows, model))
      )
    )
  }

  /** The first row (LIMIT 1 unless a limit is set), or `NoRowsError`. */
  get(): Effect.Effect<Out, SelectError | NoRowsError, Executor> {
    const one = this.node.limit === undefined ? this.limit(1) : this
    return Effect.flatMap(one.getMulti(), (rows) => {
      const first = rows[0]
      return rows.length === 0 || first === undefined
        ? Effect.flatMap(Executor, (ex) =>
            Effect.flatMap(
              ex.session.registry.get(this.node.from.schema),
              (m) => new NoRowsError({ table: m.table })
            )
          )
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

/**
 * A SELECT of every mapped column of `schema`'s table, optionally aliased.
 *
 * @since 0.1.0 @category constructors
 */
export const from = <A, I>(schema: EntitySchema<A, I>, alias?: string): SelectBuilder<A, A> =>
  new SelectBuilder<A, A>(
    {
      _tag: "Select",
      from: { _tag: "Table", schema, alias },
      selection: undefined,
      distinct: false,
      where: undefined,
      groupBy: [],
      having: undefined,
      orderBy: [],
      limit: undefined,
      offset: undefined
    },
    RowDecoder.entity<A>()
  )
