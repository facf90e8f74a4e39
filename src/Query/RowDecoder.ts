/**
 * Turns driver rows into typed values: entity rows through the entity schema (columns mapped back
 * to fields), projections through the schema the caller gave. A row that does not decode fails with
 * a `DecodeError` naming the table and the column.
 *
 * @since 0.1.0
 */
import { Either, ParseResult, Schema, SchemaAST } from "effect"
import { globalValue } from "effect/GlobalValue"
import type { EntityModel, EntitySchema } from "../Schema/EntityModel.js"
import type { Row } from "./Executor.js"
import { DecodeError } from "./QueryError.js"

/** Decodes one value; a row is an object keyed by field or alias. @since 0.1.0 @category models */
export type Decode<A> = (input: unknown) => Either.Either<A, ParseResult.ParseError>

/** How the rows of a statement become values. @since 0.1.0 @category models */
export interface RowDecoder<A> {
  readonly decode: (rows: ReadonlyArray<Row>, model: EntityModel) => Either.Either<Array<A>, DecodeError>
}

const decodeError = (
  table: string,
  error: ParseResult.ParseError,
  columnOf: (key: string) => string,
  isSensitive: (key: string) => boolean = () => false
): DecodeError => {
  const issue = ParseResult.ArrayFormatter.formatErrorSync(error)[0]
  const key = issue?.path[0]
  return new DecodeError({
    table,
    column: key === undefined ? "<row>" : columnOf(String(key)),
    detail:
      key !== undefined && isSensitive(String(key))
        ? "invalid value of a sensitive field (not shown)"
        : (issue?.message ?? error.message),
    cause: error
  })
}

const decodeAll = <A>(
  rows: ReadonlyArray<Row>,
  toInput: (row: Row) => Either.Either<unknown, DecodeError>,
  decode: Decode<A>,
  fail: (e: ParseResult.ParseError) => DecodeError
): Either.Either<Array<A>, DecodeError> => {
  const out: Array<A> = new Array(rows.length)
  for (let i = 0; i < rows.length; i++) {
    const input = toInput(rows[i] as Row)
    if (Either.isLeft(input)) return Either.left(input.left)
    const decoded = decode(input.right)
    if (Either.isLeft(decoded)) return Either.left(fail(decoded.left))
    out[i] = decoded.right
  }
  return Either.right(out)
}

/**
 * Rows keyed by column → values keyed by field, decoded with `decode` (the entity's by default).
 * NULL in an optional field means the field is absent.
 *
 * @since 0.1.0 @category constructors
 */
export const entity = <A>(decode?: Decode<A>, fields?: ReadonlyArray<string>): RowDecoder<A> => ({
  decode: (rows, model) => {
    const { persisted, trusted } = plan(model, decode === undefined ? undefined : fields)
    const full = decode ?? (model.decode as Decode<A>)
    const toInput = (row: Row) => {
      const input: Record<string, unknown> = {}
      for (const f of persisted) {
        const value = row[f.column]
        if (!(f.optional && (value === null || value === undefined))) input[f.field] = value
      }
      return Either.right(input)
    }
    const fail = (e: ParseResult.ParseError) =>
      decodeError(
        model.table,
        e,
        (key) => model.byField.get(key)?.column ?? key,
        (key) => model.byField.get(key)?.sensitive === true
      )
    if (trusted === undefined) return decodeAll(rows, toInput, full, fail)
    const out: Array<A> = new Array(rows.length)
    for (let i = 0; i < rows.length; i++) {
      const row = rows[i] as Row
      const built = trusted(row) as A | undefined
      if (built !== undefined) {
        out[i] = built
        continue
      }
      // The fast check refused the row: the full decoder says why (or accepts what the check could not judge).
      const decoded = full(Either.getOrThrow(toInput(row)))
      if (Either.isLeft(decoded)) return Either.left(fail(decoded.left))
      out[i] = decoded.right
    }
    return Either.right(out)
  }
})

/**
 * The fast path: a struct decodes field by field and a class is then constructed from the decoded
 * fields, so this does the same work without the generic machinery. Plain strings, numbers,
 * booleans, literals and unions of them (nullable, optional) decode to themselves: a `typeof` check
 * replaces their decode; other fields run their own schema. Returns `undefined` for a row it
 * refuses, to be judged (and explained) by the full decoder.
 */
type Trusted = (row: Row) => unknown

interface Plan {
  readonly persisted: ReadonlyArray<EntityModel["fields"][number]>
  readonly trusted: Trusted | undefined
}

const plans = globalValue(
  Symbol.for("effect-dal/RowDecoder/plans"),
  () => new WeakMap<EntityModel, { whole?: Plan; readonly picks: Map<string, Plan> }>()
)

/**
 * The fields read and the fast path, made once per model (whole entity) or per model and field list
 * (`columns(...)`): builders are made per query, so this must not be.
 */
const plan = (model: EntityModel, fields: ReadonlyArray<string> | undefined): Plan => {
  let perModel = plans.get(model)
  if (perModel === undefined) {
    perModel = { picks: new Map() }
    plans.set(model, perModel)
  }
  if (fields === undefined) {
    perModel.whole ??= { persisted: model.fields, trusted: makeTrusted(model, model.fields, true) }
    return perModel.whole
  }
  const key = fields.join("\0")
  let found = perModel.picks.get(key)
  if (found === undefined) {
    const persisted = model.fields.filter((f) => fields.includes(f.field))
    found = { persisted, trusted: makeTrusted(model, persisted, false) }
    perModel.picks.set(key, found)
  }
  return found
}

/** A class schema's constructor, or `undefined` for a struct (whose decode is the object itself). */
const classConstructor = (
  schema: EntityModel["schema"]
): (new (props: Record<string, unknown>, disableValidation: boolean) => unknown) | undefined | null => {
  const ast = schema.ast
  if (SchemaAST.isTypeLiteral(ast)) return undefined
  // A class over a plain struct only: a class over a filtered struct (a class-level filter) has a
  // Refinement there, which constructing without validation would skip.
  const isClass =
    typeof schema === "function" &&
    SchemaAST.isTransformation(ast) &&
    SchemaAST.isTypeLiteral(ast.from) &&
    SchemaAST.isDeclaration(ast.to) &&
    ast.to.typeParameters.every(SchemaAST.isTypeLiteral)
  // Anything else (refinements, transformations of the whole entity) needs the full decoder.
  return isClass
    ? (schema as unknown as new (
        props: Record<string, unknown>,
        disable: boolean
      ) => unknown)
    : null
}

const makeTrusted = (
  model: EntityModel,
  fields: ReadonlyArray<EntityModel["fields"][number]>,
  wholeEntity: boolean
): Trusted | undefined => {
  const declared = (model.schema as EntitySchema).fields
  const decoders: Array<(u: unknown) => Either.Either<unknown, unknown>> = []
  for (const f of fields) {
    const def = declared[f.field]
    // A property signature that transforms (optionalWith defaults...) needs the struct's own decode.
    if (
      def === undefined ||
      (Schema.isPropertySignature(def) && def.ast._tag !== "PropertySignatureDeclaration")
    ) {
      return undefined
    }
    const check = f.guard
    decoders.push(
      check === undefined
        ? Schema.decodeUnknownEither(Schema.make(f.ast))
        : (u) => (check(u) ? Either.right(u) : Either.left(u))
    )
  }
  const ctor = wholeEntity ? classConstructor(model.schema) : undefined
  if (ctor === null) return undefined
  // A subset of a class's fields (`columns(...)`) decodes to a plain struct, so no constructor then.
  return (row) => {
    const props: Record<string, unknown> = {}
    for (let i = 0; i < fields.length; i++) {
      const f = fields[i] as EntityModel["fields"][number]
      const value = row[f.column]
      if (f.optional && (value === null || value === undefined)) continue
      const decoded = (decoders[i] as (u: unknown) => Either.Either<unknown, unknown>)(value)
      if (Either.isLeft(decoded)) return undefined
      props[f.field] = decoded.right
    }
    return ctor === undefined ? props : new ctor(props, true)
  }
}

/**
 * A SUM or AVG value as a number: drivers return DECIMAL and BIGINT as text or bigint. An integer a
 * number cannot hold exactly is refused rather than rounded.
 */
const numeric = (value: unknown): Either.Either<unknown, string> => {
  if (typeof value === "bigint") {
    return Number.isSafeInteger(Number(value))
      ? Either.right(Number(value))
      : Either.left(`${value} exceeds 2^53`)
  }
  if (typeof value !== "string") return Either.right(value)
  const n = Number(value)
  if (Number.isNaN(n)) return Either.left(`"${value}" is not a number`)
  return /^-?\d+(\.0*)?$/.test(value) && !Number.isSafeInteger(n)
    ? Either.left(`${value} exceeds 2^53`)
    : Either.right(n)
}

/**
 * Rows keyed by alias, decoded with the caller's schema; aliases of COUNT/SUM/AVG are read as numbers.
 *
 * @since 0.1.0 @category constructors
 */
export const projection = <A>(decode: Decode<A>, numericAliases: ReadonlySet<string>): RowDecoder<A> => ({
  decode: (rows, model) => {
    const toInput = (row: Row): Either.Either<unknown, DecodeError> => {
      if (numericAliases.size === 0) return Either.right(row)
      const input: Record<string, unknown> = { ...row }
      for (const alias of numericAliases) {
        const converted = numeric(input[alias])
        if (Either.isLeft(converted)) {
          return Either.left(
            new DecodeError({
              table: model.table,
              column: alias,
              detail: converted.left,
              cause: input[alias]
            })
          )
        }
        input[alias] = converted.right
      }
      return Either.right(input)
    }
    return decodeAll(rows, toInput, decode, (e) => decodeError(model.table, e, (key) => key))
  }
})
