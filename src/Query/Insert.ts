/**
 * INSERT builder: one row or many, a subset of columns, upserts both ways, RETURNING. Immutable:
 * each method returns a new builder over a new node.
 *
 * Each value is validated and encoded through its field's schema (a `Date` stored as text binds
 * its encoded form; a refinement such as `Schema.Int` is checked); a filter on the whole entity
 * class is not run.
 * A field the row does not give (`undefined`) is left out so the database fills it in (its default,
 * an auto-increment); a generated field is also left out when it is `null`, `0` or `0n`, so
 * `new User({ id: 0, ... })` inserts with a generated id. Consecutive rows that give the same
 * fields share one statement; a batch larger than the dialect's bound-parameter limit is split,
 * and several statements run in one transaction when the caller holds none: all or nothing.
 *
 * @example
 * const result = Insert.into(User).values([ann, bob]).exec() // { rowsAffected: 2, lastInsertId: <ann's id> }
 * const upsert = Insert.into(User).values(ann).onConflictDoUpdate({ target: ["email"], set: ["firstName"] })
 * @since 0.1.0
 */
import { Effect, Either, type ParseResult, Pipeable, Schema, type SchemaAST } from "effect"
import { globalValue } from "effect/GlobalValue"
import * as EntityModel from "../Schema/EntityModel.js"
import type { EntityRegistryService } from "../Schema/EntityRegistry.js"
import type { ConflictNode, InsertNode } from "./Ast.js"
import * as Compiler from "./Compiler.js"
import type { Dialect } from "./Dialect.js"
import { type ExecResult, toId } from "./ExecResult.js"
import type { Executor } from "./Executor.js"
import { type Columns, columnsProxy, excludedProxy } from "./Expr.js"
import { returningFor } from "./internal/filtered.js"
import * as Mutation from "./internal/mutation.js"
import { QueryBuildError } from "./QueryError.js"
import type { ReturningBuilder, WriteError } from "./Returning.js"
import { type Assignments, assignments } from "./Update.js"

/**
 * What an upsert writes into the existing row: fields to take from the new row, values or
 * expressions by field, or a function of the new row (`excluded`) and the existing one (`current`).
 *
 * @since 0.1.0 @category models
 */
export type ConflictSet<A> =
  | ReadonlyArray<keyof A & string>
  | Assignments<A>
  | ((excluded: Columns<A>, current: Columns<A>) => Assignments<A>)

/**
 * An INSERT into entity `A`'s table.
 *
 * @since 0.1.0 @category models
 */
export class InsertBuilder<A> implements Pipeable.Pipeable {
  readonly node: InsertNode
  constructor(node: InsertNode) {
    this.node = node
  }

  pipe() {
    // biome-ignore lint/complexity/noArguments: the Pipeable protocol forwards its arguments.
    return Pipeable.pipeArguments(this, arguments)
  }

  private with(patch: Partial<InsertNode>): InsertBuilder<A> {
    return new InsertBuilder({ ...this.node, ...patch })
  }

  /** Adds one row or many (calls accumulate). */
  values(rows: A | ReadonlyArray<A>): InsertBuilder<A> {
    const added: ReadonlyArray<unknown> = Array.isArray(rows) ? rows : [rows]
    return this.with({ rows: [...this.node.rows, ...added] })
  }

  /** Writes only these fields of each row; the database fills in the others. */
  columns<K extends keyof A & string>(...fields: readonly [K, ...ReadonlyArray<K>]): InsertBuilder<A> {
    return this.with({ columns: fields })
  }

  /**
   * Skips rows that collide with a unique key. PostgreSQL/SQLite: `ON CONFLICT [(target)] DO NOTHING`
   * (no target: any unique key); MySQL/MariaDB: `ON DUPLICATE KEY UPDATE pk = pk`, a no-op that,
   * unlike `INSERT IGNORE`, does not also hide NOT NULL, foreign key or conversion errors.
   */
  onConflictDoNothing(options: { readonly target?: ReadonlyArray<keyof A & string> } = {}): InsertBuilder<A> {
    return this.with({ onConflict: { target: options.target, action: { _tag: "Nothing" } } })
  }

  /**
   * Updates the existing row when a row collides: PostgreSQL/SQLite `ON CONFLICT (target) DO UPDATE
   * SET ...` (target defaults to the primary key), MySQL/MariaDB `ON DUPLICATE KEY UPDATE ...` (which
   * checks every unique key; `target` is not written). `set` defaults to every inserted field but
   * the target and the primary key, taken from the new row.
   *
   * @example
   * Insert.into(User).values(ann).onConflictDoUpdate({ target: ["email"], set: ["firstName", "lastName"] })
   * Insert.into(User)
   *   .values(ann)
   *   .onConflictDoUpdate({ target: ["email"], set: (excluded, current) => ({ visits: current.visits.add(excluded.visits) }) })
   */
  onConflictDoUpdate(
    options: { readonly target?: ReadonlyArray<keyof A & string>; readonly set?: ConflictSet<A> } = {}
  ): InsertBuilder<A> {
    const set = options.set
    const action: ConflictNode["action"] = {
      _tag: "Update",
      set:
        set === undefined
          ? undefined
          : Array.isArray(set)
            ? set.map((field: string) => ({ field, value: { _tag: "Excluded", field } }))
            : assignments(
                typeof set === "function"
                  ? (set as (e: Columns<A>, c: Columns<A>) => Assignments<A>)(
                      excludedProxy<A>(),
                      columnsProxy<A>()
                    )
                  : set
              )
    }
    return this.with({ onConflict: { target: options.target, action } })
  }

  /**
   * Returns the inserted rows: every field, or the named ones (PostgreSQL, SQLite, MariaDB 10.5+;
   * MySQL fails with `QueryBuildError`). The generated key is always returned, for `lastInsertId`.
   */
  returning(): ReturningBuilder<A>
  returning<K extends keyof A & string>(
    ...fields: readonly [K, ...ReadonlyArray<K>]
  ): ReturningBuilder<Pick<A, K>>
  returning(...fields: ReadonlyArray<string>): ReturningBuilder<unknown> {
    return returningFor(this.node.into.schema as EntityModel.EntitySchema, fields, (returning) =>
      plan({ ...this.node, returning })
    )
  }

  /** The SQL and parameters for `dialect`; fails when the insert needs several statements (see `compileAll`). */
  compile(
    dialect: Dialect,
    registry: EntityRegistryService = Mutation.defaultRegistry
  ): Either.Either<Compiler.Compiled, Compiler.CompileError> {
    return Mutation.compileOne(plan(this.node), dialect, registry)
  }

  /** Every statement the insert runs, in order (a batch over the parameter limit needs several). */
  compileAll(
    dialect: Dialect,
    registry: EntityRegistryService = Mutation.defaultRegistry
  ): Either.Either<ReadonlyArray<Compiler.Compiled>, Compiler.CompileError> {
    return Mutation.compileAll(plan(this.node), dialect, registry)
  }

  /** Runs the insert; see `ExecResult` for what `rowsAffected` and `lastInsertId` mean. */
  exec(): Effect.Effect<ExecResult, WriteError, Executor> {
    return Effect.map(Mutation.run(plan(this.node)), ({ result }) => result)
  }
}

const dateAst = Schema.Date.ast as SchemaAST.Refinement

/**
 * `Schema.Date` (however annotated: the same refinement of the same transformation) encodes a valid
 * Date as its ISO text; done directly, it skips the parser's per-value overhead on large batches.
 */
const isSchemaDate = (ast: SchemaAST.AST): boolean =>
  ast._tag === "Refinement" && ast.from === dateAst.from && ast.filter === dateAst.filter

/** How one field's values are validated and encoded on insert. */
interface FieldCodec {
  readonly field: EntityModel.FieldModel
  /** A value it accepts is bound as is, skipping `encode`. */
  readonly guard: ((u: unknown) => boolean) | undefined
  readonly encode: (u: unknown) => Either.Either<unknown, ParseResult.ParseError>
}

const codecs = globalValue(
  Symbol.for("effect-dal/Insert/codecs"),
  () => new WeakMap<EntityModel.EntityModel, ReadonlyArray<FieldCodec>>()
)

/**
 * Per-field codecs of a model, made once: each value goes through its field's schema (what
 * `Schema.encode` of the entity does per property, so a Date stored as text binds the text and a
 * refinement is checked), with a plain type test first for fields that need no encoding.
 */
const codecsOf = (model: EntityModel.EntityModel): ReadonlyArray<FieldCodec> => {
  const cached = codecs.get(model)
  if (cached !== undefined) return cached
  const made = model.fields.map((field): FieldCodec => {
    const ast = field.ast
    const encode = field.encode ?? Schema.encodeUnknownEither(Schema.make(ast))
    return {
      field,
      guard: field.encode === undefined ? field.guard : undefined,
      encode: isSchemaDate(ast)
        ? (u) => (u instanceof Date && !Number.isNaN(u.getTime()) ? Either.right(u.toISOString()) : encode(u))
        : encode
    }
  })
  codecs.set(model, made)
  return made
}

const isZero = (u: unknown) => u === null || u === undefined || u === 0 || u === 0n

/** Consecutive rows that give the same columns: one INSERT each (split further by the parameter limit). */
interface Run {
  readonly columns: ReadonlyArray<EntityModel.FieldModel>
  /** The encoded values of every row, row after row (`columns.length` each). */
  readonly values: Array<unknown>
  readonly rows: Array<unknown>
}

const runsOf = (node: InsertNode, model: EntityModel.EntityModel): ReadonlyArray<Run> => {
  const all = codecsOf(model)
  const chosen =
    node.columns === undefined
      ? all
      : node.columns.map((name) => {
          const field = unwrap(EntityModel.field(model, name))
          return all.find((c) => c.field === field) as FieldCodec
        })
  const runs: Array<Run> = []
  // Scratch for the current row, reused so a row costs no allocation but its encoded values.
  const given = new Uint8Array(chosen.length)
  const current = new Uint8Array(chosen.length)
  const scratch: Array<unknown> = new Array(chosen.length)
  let run: Run | undefined
  for (let r = 0; r < node.rows.length; r++) {
    const row = node.rows[r] as Record<string, unknown>
    let width = 0
    for (let c = 0; c < chosen.length; c++) {
      const { field, guard, encode } = chosen[c] as FieldCodec
      const value = row[field.field]
      if (value === undefined || (field.generated && isZero(value))) {
        given[c] = 0
        continue
      }
      given[c] = 1
      if (guard?.(value)) {
        scratch[width++] = value
      } else {
        const encoded = encode(value)
        if (Either.isLeft(encoded)) {
          throw new QueryBuildError({
            // A sensitive field's value may be quoted in the parse message: it is left out.
            reason: `Row ${r} is not a valid ${model.name}: ${field.field}: ${field.sensitive ? "invalid value (sensitive, not shown)" : encoded.left.message}`,
            cause: encoded.left
          })
        }
        scratch[width++] = encoded.right
      }
    }
    let same = run !== undefined
    for (let c = 0; same && c < chosen.length; c++) same = given[c] === current[c]
    if (run === undefined || !same) {
      current.set(given)
      run = { columns: chosen.filter((_, c) => given[c] === 1).map((c) => c.field), values: [], rows: [] }
      runs.push(run)
    }
    for (let i = 0; i < width; i++) run.values.push(scratch[i])
    run.rows.push(row)
  }
  return runs
}

const unwrap = <A, E>(either: Either.Either<A, E>): A => {
  if (Either.isLeft(either)) throw either.left
  return either.right
}

/** The generated single-column primary key, whose value `lastInsertId` reports. */
const generatedKey = (model: EntityModel.EntityModel): EntityModel.FieldModel | undefined => {
  const [only, ...rest] = model.primaryKey
  return only !== undefined && rest.length === 0 && only.generated ? only : undefined
}

const plan =
  (node: InsertNode): Mutation.Planner =>
  (dialect, registry) =>
    Compiler.run(() => {
      const model = new Compiler.Writer(dialect, registry).model(node.into.schema) as EntityModel.EntityModel
      if (node.rows.length === 0) throw new QueryBuildError({ reason: "An INSERT needs at least one row" })
      const runs = runsOf(node, model)
      const key = generatedKey(model)
      // lastInsertId is reported only when the database generated every key of a plain insert.
      const reportsId =
        key !== undefined && node.onConflict === undefined && runs.every((r) => !r.columns.includes(key))
      const asked = Compiler.returningFields(model, node.returning)
      // PostgreSQL reports no insert id, and rows returned replace the driver's id elsewhere: return the key.
      const returning =
        reportsId &&
        key !== undefined &&
        (dialect.insertId === "returning" || asked.length > 0) &&
        !asked.includes(key)
          ? [...asked, key]
          : asked
      const statements: Array<Mutation.Plan["statements"][number]> = []
      for (const run of runs) {
        const width = run.columns.length
        const spec = (from: number, to: number): Compiler.InsertSpec => ({
          node,
          columns: run.columns,
          rows: to - from,
          values: run.values.slice(from * width, to * width),
          returning
        })
        const suffix = Compiler.insertSuffixParams(new Compiler.Writer(dialect, registry), spec(0, 0))
        const perStatement =
          width === 0
            ? dialect.multiRowDefaults
              ? run.rows.length
              : 1
            : Math.floor((dialect.maxParams - suffix) / width)
        if (perStatement < 1) {
          throw new QueryBuildError({ reason: `One row binds more than ${dialect.maxParams} parameters` })
        }
        for (let start = 0; start < run.rows.length; start += perStatement) {
          const end = Math.min(start + perStatement, run.rows.length)
          const w = new Compiler.Writer(dialect, registry)
          const sql = Compiler.insert(w, spec(start, end)).sql
          statements.push({
            statement: Compiler.statement(w, sql),
            description: { _tag: "Insert", node: { ...node, rows: run.rows.slice(start, end) } }
          })
        }
      }
      return {
        type: "INSERT",
        model,
        statements,
        returningOnServer: dialect.returning === "serverDependent" && returning.length > 0,
        lastInsertId: (outcomes) => {
          const first = outcomes[0]
          if (!reportsId || key === undefined || first === undefined || first.rowsAffected === 0)
            return undefined
          if (returning.length > 0) return toId(first.rows[0]?.[key.column])
          const id = toId(first.lastInsertId)
          if (dialect.insertId !== "driverLast" || id === undefined) return id
          // SQLite reports the last rowid of the statement; its ids are consecutive.
          return typeof id === "bigint" ? id - BigInt(first.rowsAffected - 1) : id - (first.rowsAffected - 1)
        }
      }
    })

/**
 * An INSERT into `schema`'s table; add rows with `values`.
 *
 * @since 0.1.0 @category constructors
 */
export const into = <A, I>(schema: EntityModel.EntitySchema<A, I>): InsertBuilder<A> =>
  new InsertBuilder<A>({
    _tag: "Insert",
    into: { _tag: "Table", schema, alias: undefined },
    rows: [],
    columns: undefined,
    onConflict: undefined,
    returning: undefined
  })
