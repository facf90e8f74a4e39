/**
 * Turns driver rows into typed values: entity rows through the entity schema (columns mapped back
 * to fields), projections through the schema the caller gave. A row that does not decode fails with
 * a `DecodeError` naming the table and the column.
 *
 * @since 0.1.0
 */
import { Either, ParseResult } from "effect"
import type { EntityModel } from "../Schema/EntityModel.js"
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
  columnOf: (key: string) => string
): DecodeError => {
  const issue = ParseResult.ArrayFormatter.formatErrorSync(error)[0]
  const key = issue?.path[0]
  return new DecodeError({
    table,
    column: key === undefined ? "<row>" : columnOf(String(key)),
    detail: issue?.message ?? error.message,
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
    const persisted =
      fields === undefined ? model.fields : model.fields.filter((f) => fields.includes(f.field))
    const toInput = (row: Row) => {
      const input: Record<string, unknown> = {}
      for (const f of persisted) {
        const value = row[f.column]
        if (!(f.optional && (value === null || value === undefined))) input[f.field] = value
      }
      return Either.right(input)
    }
    return decodeAll(rows, toInput, decode ?? (model.decode as Decode<A>), (e) =>
      decodeError(model.table, e, (key) => model.byField.get(key)?.column ?? key)
    )
  }
})

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
