/**
 * Raw SQL through the Executor (middleware sees it with type `RAW`), for what the builders do not
 * express. Values are only ever bound: write `?` where each goes (it becomes `$n` on PostgreSQL),
 * or interpolate them in the tagged template, where each `${value}` becomes a placeholder. A table
 * or column name is interpolated as `${Raw.identifier(name)}`, which the dialect quotes.
 *
 * Rows decode through the given schema. An entity schema maps columns back to fields (a row key
 * that is already the field name is read too, so `SELECT COUNT(*) AS total` fits a `total` field);
 * any other schema decodes the row as the driver returned it.
 *
 * @example
 * const adults = Raw.query(User, "SELECT * FROM users WHERE age >= ?", [18]).getMulti()
 * const one = Raw.sql(User)`SELECT * FROM users WHERE email = ${email}`.get()
 * const done = Raw.sql`DELETE FROM ${Raw.identifier(table)} WHERE expires_at < ${now}`.exec()
 * @since 0.1.0
 */
import { Effect, Either, ParseResult, Pipeable, Schema } from "effect"
import type { EntityModel } from "../Schema/EntityModel.js"
import type { EntityRegistryService } from "../Schema/EntityRegistry.js"
import * as Batch from "./Batch.js"
import * as Compiler from "./Compiler.js"
import { describeRaw, type RawText, splitStatements, withoutLiterals } from "./Description.js"
import type { Dialect } from "./Dialect.js"
import type { ExecResult } from "./ExecResult.js"
import { Executor, type ExecutorService, type QueryResult, type Row } from "./Executor.js"
import * as Mutation from "./internal/mutation.js"
import { DecodeError, NoRowsError, QueryBuildError, type QueryError } from "./QueryError.js"

/** What running raw SQL can fail with. @since 0.1.0 @category errors */
export type RawError = QueryError | Compiler.CompileError

/** The SQL text and its arguments: `?` placeholders, or a tagged template's parts. @since 0.1.0 @category models */
export type RawSource =
  | { readonly _tag: "Query"; readonly sql: string; readonly args: ReadonlyArray<unknown> }
  | {
      readonly _tag: "Template"
      readonly strings: ReadonlyArray<string>
      readonly args: ReadonlyArray<unknown>
    }

/**
 * A table or column name for a tagged template: written quoted by the dialect, never bound.
 *
 * @since 0.1.0 @category models
 */
export class Identifier {
  readonly name: string
  constructor(name: string) {
    this.name = name
  }
}

/** @since 0.1.0 @category constructors */
export const identifier = (name: string): Identifier => new Identifier(name)

/** Folds identifiers into the template's text, quoted, so only values remain as arguments. */
const foldIdentifiers = (
  dialect: Dialect,
  strings: ReadonlyArray<string>,
  args: ReadonlyArray<unknown>
): { readonly strings: ReadonlyArray<string>; readonly args: ReadonlyArray<unknown> } => {
  const outStrings = [strings[0] ?? ""]
  const outArgs: Array<unknown> = []
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]
    const next = strings[i + 1] ?? ""
    if (arg instanceof Identifier) {
      outStrings[outStrings.length - 1] += dialect.quote(arg.name) + next
    } else {
      outArgs.push(arg)
      outStrings.push(next)
    }
  }
  return { strings: outStrings, args: outArgs }
}

/** Whether SQL text names `table` (as a word, quoted or not); a string literal naming it counts too. */
const mentions = (sql: string, table: string): boolean =>
  new RegExp(`(^|[^A-Za-z0-9_$])${table.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}($|[^A-Za-z0-9_$])`, "i").test(
    sql
  )

/**
 * Raw SQL whose rows decode to `A`.
 *
 * @since 0.1.0 @category models
 */
export class RawBuilder<A> implements Pipeable.Pipeable {
  readonly source: RawSource
  /** `undefined`: rows are returned as the driver gave them. */
  readonly schema: Schema.Schema.AnyNoContext | undefined
  private readonly decodeRow: ((row: unknown) => Either.Either<A, ParseResult.ParseError>) | undefined
  constructor(
    source: RawSource,
    schema: Schema.Schema.AnyNoContext | undefined,
    decodeRow: ((row: unknown) => Either.Either<A, ParseResult.ParseError>) | undefined
  ) {
    this.source = source
    this.schema = schema
    this.decodeRow = decodeRow
  }

  pipe() {
    // biome-ignore lint/complexity/noArguments: the Pipeable protocol forwards its arguments.
    return Pipeable.pipeArguments(this, arguments)
  }

  /** The SQL and parameters for `dialect`. */
  compile(
    dialect: Dialect,
    registry: EntityRegistryService = Mutation.defaultRegistry
  ): Either.Either<Compiler.Compiled, Compiler.CompileError> {
    return Either.map(this.prepare(dialect, registry), (p) => p.statement)
  }

  /**
   * The statement and what it does, decided once: its text is read by a lexer that skips comments
   * and strings. Text holding several statements is refused (multi-statement execution is off), and
   * parameters bound by text that names an entity with a sensitive field are marked sensitive.
   */
  private prepare(
    dialect: Dialect,
    registry: EntityRegistryService
  ): Either.Either<
    { readonly statement: Compiler.Compiled; readonly description: RawText },
    Compiler.CompileError
  > {
    return Compiler.run(() => {
      const w = new Compiler.Writer(dialect, registry)
      const source = this.source
      let sql: string
      if (source._tag === "Query") {
        sql = Compiler.raw(w, source.sql, source.args)
      } else {
        const { strings, args } = foldIdentifiers(dialect, source.strings, source.args)
        sql = Compiler.template(w, strings, args)
      }
      const description = describeRaw(sql, dialect)
      if (description.statements > 1) {
        throw new QueryBuildError({
          reason: `Raw SQL holds ${description.statements} statements; multi-statement execution is off: run each in its own call, or use Raw.script`
        })
      }
      if (this.schema !== undefined) {
        const model = registry.get(this.schema)
        if (Either.isRight(model) && model.right.fields.some((f) => f.sensitive)) w.sensitive = true
      }
      for (const table of registry.sensitiveTables()) {
        if (mentions(sql, table)) w.sensitive = true
      }
      const statement = Compiler.statement(w, sql)
      const display = w.sensitive ? withoutLiterals(sql, dialect) : sql
      return { statement: display === sql ? statement : { ...statement, display }, description }
    })
  }

  /** The entity model of the schema, when it is an entity. */
  private model(ex: ExecutorService): EntityModel | undefined {
    if (this.schema === undefined) return undefined
    const model = ex.session.registry.get(this.schema)
    return Either.isRight(model) ? (model.right as EntityModel) : undefined
  }

  private execute(
    expects: "rows" | "exec"
  ): Effect.Effect<
    { readonly result: QueryResult; readonly model: EntityModel | undefined },
    RawError,
    Executor
  > {
    return Effect.flatMap(Executor, (ex) =>
      Effect.flatMap(this.prepare(ex.session.dialect, ex.session.registry), ({ statement, description }) => {
        const model = this.model(ex)
        return Effect.map(
          ex.execute({
            type: "RAW",
            model,
            table: model?.table ?? "",
            statement,
            description,
            expects,
            session: ex.session
          }),
          (result) => ({ result, model })
        )
      })
    )
  }

  /** Every row, decoded. */
  getMulti(): Effect.Effect<ReadonlyArray<A>, RawError | DecodeError, Executor> {
    return Effect.flatMap(this.execute("rows"), ({ result, model }) => this.decode(result.rows, model))
  }

  /** The first row, decoded, or `NoRowsError`. The SQL is sent as written: add your own LIMIT. */
  get(): Effect.Effect<A, RawError | DecodeError | NoRowsError, Executor> {
    return Effect.flatMap(this.execute("rows"), ({ result, model }) =>
      Effect.flatMap(this.decode(result.rows.slice(0, 1), model), (rows) =>
        rows.length === 0
          ? new NoRowsError({ table: model?.table ?? "raw query" })
          : Effect.succeed(rows[0] as A)
      )
    )
  }

  /**
   * Runs a statement for its counts. `rowsAffected` is the database's count; `lastInsertId` is the
   * driver's value as is (MySQL/MariaDB: the first id of the last insert; SQLite: the connection's
   * last rowid, even after a statement that inserted nothing; PostgreSQL: none).
   */
  exec(): Effect.Effect<ExecResult, RawError, Executor> {
    return Effect.map(this.execute("exec"), ({ result }) =>
      result._tag === "Exec"
        ? { rowsAffected: result.rowsAffected, lastInsertId: result.lastInsertId }
        : { rowsAffected: result.rows.length, lastInsertId: undefined }
    )
  }

  private decode(
    rows: ReadonlyArray<Row>,
    model: EntityModel | undefined
  ): Either.Either<ReadonlyArray<A>, DecodeError> {
    const decode = this.decodeRow
    if (decode === undefined) return Either.right(rows as ReadonlyArray<A>)
    const table = model?.table ?? "raw query"
    const out: Array<A> = []
    for (const row of rows) {
      const decoded = decode(model === undefined ? row : byField(row, model))
      if (Either.isLeft(decoded)) {
        const issue = ParseResult.ArrayFormatter.formatErrorSync(decoded.left)[0]
        const key = issue?.path[0] === undefined ? undefined : String(issue.path[0])
        return Either.left(
          new DecodeError({
            table,
            column: key === undefined ? "<row>" : (model?.byField.get(key)?.column ?? key),
            detail: issue?.message ?? decoded.left.message,
            cause: decoded.left
          })
        )
      }
      out.push(decoded.right)
    }
    return Either.right(out)
  }
}

/** A row keyed by column → keyed by field; NULL in an optional field means the field is absent. */
const byField = (row: Row, model: EntityModel): Record<string, unknown> => {
  const input: Record<string, unknown> = {}
  for (const f of model.fields) {
    const value = f.column in row ? row[f.column] : row[f.field]
    if (!(f.optional && (value === null || value === undefined))) input[f.field] = value
  }
  return input
}

/**
 * Raw SQL with `?` placeholders, one per argument, decoded through `schema` (or returned as rows).
 *
 * @since 0.1.0 @category constructors
 */
export function query<A, I>(
  schema: Schema.Schema<A, I, never>,
  sql: string,
  args?: ReadonlyArray<unknown>
): RawBuilder<A>
export function query(sql: string, args?: ReadonlyArray<unknown>): RawBuilder<Row>
export function query(
  first: Schema.Schema.AnyNoContext | string,
  second?: string | ReadonlyArray<unknown>,
  third?: ReadonlyArray<unknown>
): RawBuilder<unknown> {
  if (typeof first === "string") {
    const args = (second as ReadonlyArray<unknown> | undefined) ?? []
    return new RawBuilder({ _tag: "Query", sql: first, args }, undefined, undefined)
  }
  return new RawBuilder(
    { _tag: "Query", sql: second as string, args: third ?? [] },
    first,
    Schema.decodeUnknownEither(first)
  )
}

const isTemplate = (u: unknown): u is TemplateStringsArray => Array.isArray(u) && "raw" in u

/**
 * A tagged template: each `${value}` is bound as a parameter, never written into the SQL.
 * `Raw.sql(User)\`...\`` decodes rows through `User`; `Raw.sql\`...\`` returns them as rows.
 *
 * @since 0.1.0 @category constructors
 */
export function sql<A, I>(
  schema: Schema.Schema<A, I, never>
): (strings: TemplateStringsArray, ...args: ReadonlyArray<unknown>) => RawBuilder<A>
export function sql(strings: TemplateStringsArray, ...args: ReadonlyArray<unknown>): RawBuilder<Row>
export function sql(
  first: Schema.Schema.AnyNoContext | TemplateStringsArray,
  ...args: ReadonlyArray<unknown>
):
  | RawBuilder<unknown>
  | ((strings: TemplateStringsArray, ...args: ReadonlyArray<unknown>) => RawBuilder<unknown>) {
  if (isTemplate(first))
    return new RawBuilder({ _tag: "Template", strings: [...first], args }, undefined, undefined)
  const decode = Schema.decodeUnknownEither(first)
  return (strings, ...values) =>
    new RawBuilder({ _tag: "Template", strings: [...strings], args: values }, first, decode)
}

/**
 * Several statements of raw SQL, asked for explicitly (a migration, a seed): the text is split at
 * top-level semicolons by the lexer (not those in strings or comments) and each statement runs on its
 * own through the Executor, so every middleware sees every statement, in the fiber's transaction or
 * in one of its own (all or nothing where the database allows: MySQL/MariaDB commit implicitly
 * around DDL). It takes no values: bind them with one `Raw.query` per statement. Nothing ever sends
 * several statements to the database in one call. Returns the statements' counts in order.
 *
 * @example
 * const migrate = Raw.script("CREATE TABLE a (id INT); CREATE TABLE b (id INT)")
 * @since 0.1.0 @category constructors
 */
export const script = (text: string): Effect.Effect<ReadonlyArray<ExecResult>, RawError, Executor> =>
  Effect.flatMap(Executor, (ex) =>
    Effect.flatMap(
      Compiler.run(() => splitStatements(text, ex.session.dialect)),
      (statements) =>
        Batch.atomically(
          ex.session,
          Effect.forEach(statements, (statement) => query(statement).exec())
        )
    )
  )
