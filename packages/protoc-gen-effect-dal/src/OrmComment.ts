/**
 * Parses `@orm:` annotations in .proto comments, the syntax of a modified protoc-gen-go:
 * `//@orm:column=user_name` (leading or trailing), several entries separated by `;`. Besides names and
 * keys, a field can say how its table is created: `type=VARCHAR(32)`, `unique`, `index`.
 *
 * @since 0.1.0
 */
import { Data, Either } from "effect"

/** @since 0.1.0 @category models */
export type Key =
  | "column"
  | "table"
  | "type"
  | "primary_key"
  | "auto_increment"
  | "ignore"
  | "sensitive"
  | "unique"
  | "index"

/** The annotations found in one element's comments. @since 0.1.0 @category models */
export interface OrmComment {
  /** Keys in the order written, for placement checks and messages. */
  readonly keys: ReadonlyArray<Key>
  readonly column: string | undefined
  readonly table: string | undefined
  /** The column's SQL type (`type=VARCHAR(32)`), for migrations. */
  readonly type: string | undefined
  readonly primaryKey: boolean
  readonly autoIncrement: boolean
  readonly ignore: boolean
  readonly sensitive: boolean
  readonly unique: boolean
  readonly index: boolean
}

/** A comment with no annotation. @since 0.1.0 @category constructors */
export const empty: OrmComment = {
  keys: [],
  column: undefined,
  table: undefined,
  type: undefined,
  primaryKey: false,
  autoIncrement: false,
  ignore: false,
  sensitive: false,
  unique: false,
  index: false
}

/** Why an `@orm:` annotation was rejected; the generator adds the file, line and element. @since 0.1.0 @category errors */
export class OrmCommentError extends Data.TaggedError("OrmCommentError")<{ readonly reason: string }> {
  override get message(): string {
    return this.reason
  }
}

const valueKeys: ReadonlyArray<Key> = ["column", "table", "type"]
const flagKeys: ReadonlyArray<Key> = [
  "primary_key",
  "auto_increment",
  "ignore",
  "sensitive",
  "unique",
  "index"
]
const allKeys: ReadonlyArray<Key> = [...valueKeys, ...flagKeys]
const isKey = (key: string): key is Key => (allKeys as ReadonlyArray<string>).includes(key)

const columnName = /^[A-Za-z_][A-Za-z0-9_]*$/
/** A type name with an optional size or precision, as `Entity.columnType` accepts: `VARCHAR(32)`, `NUMERIC(12, 4)`. */
const typeName = /^[A-Za-z][A-Za-z0-9_]*( [A-Za-z][A-Za-z0-9_]*)*( ?\( ?\d+ ?(, ?\d+ ?)?\))?$/
/** A table may be schema-qualified (`audit.events`). */
const tableName = /^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$/

const fail = (reason: string) => Either.left(new OrmCommentError({ reason }))

const parseEntry = (entry: string, comment: OrmComment): Either.Either<OrmComment, OrmCommentError> => {
  const equals = entry.indexOf("=")
  const key = (equals === -1 ? entry : entry.slice(0, equals)).trim()
  const value = equals === -1 ? undefined : entry.slice(equals + 1).trim()
  if (!isKey(key)) {
    return fail(`unknown @orm key "${key}"; expected one of ${allKeys.join(", ")}`)
  }
  if (comment.keys.includes(key)) {
    return fail(`@orm key "${key}" given twice`)
  }
  const keys = [...comment.keys, key]
  switch (key) {
    case "type": {
      if (value === undefined || value === "") return fail('@orm key "type" needs a value: type=VARCHAR(32)')
      if (!typeName.test(value)) {
        return fail(`@orm type "${value}" is not a plain SQL type name with an optional size`)
      }
      return Either.right({ ...comment, keys, type: value })
    }
    case "column":
    case "table": {
      if (value === undefined || value === "") {
        return fail(`@orm key "${key}" needs a value: ${key}=name`)
      }
      const pattern = key === "column" ? columnName : tableName
      if (!pattern.test(value)) {
        return fail(`@orm ${key} name "${value}" is not a plain SQL identifier (letters, digits, _)`)
      }
      return Either.right(
        key === "column" ? { ...comment, keys, column: value } : { ...comment, keys, table: value }
      )
    }
    default: {
      if (value !== undefined) {
        return fail(`@orm key "${key}" takes no value, got "${key}=${value}"`)
      }
      switch (key) {
        case "primary_key":
          return Either.right({ ...comment, keys, primaryKey: true })
        case "auto_increment":
          return Either.right({ ...comment, keys, autoIncrement: true })
        case "ignore":
          return Either.right({ ...comment, keys, ignore: true })
        case "sensitive":
          return Either.right({ ...comment, keys, sensitive: true })
        case "unique":
          return Either.right({ ...comment, keys, unique: true })
        case "index":
          return Either.right({ ...comment, keys, index: true })
      }
    }
  }
}

/**
 * Reads every line of `text` that starts with `@orm` (after the comment marker and spaces); other lines
 * are documentation. Pass the leading and trailing comments together so a key given in both is caught.
 *
 * @example
 * OrmComment.parse(" @orm:column=user_id;primary_key;auto_increment")
 * @since 0.1.0 @category parsing
 */
export const parse = (text: string): Either.Either<OrmComment, OrmCommentError> => {
  let comment = empty
  for (const rawLine of text.split("\n")) {
    const line = rawLine.trim()
    if (!line.startsWith("@orm")) continue
    if (!line.startsWith("@orm:")) {
      return fail(`malformed annotation "${line}"; expected @orm:key=value;flag`)
    }
    const entries = line
      .slice("@orm:".length)
      .split(";")
      .map((entry) => entry.trim())
      .filter((entry) => entry !== "")
    if (entries.length === 0) {
      return fail("empty @orm: annotation")
    }
    for (const entry of entries) {
      const next = parseEntry(entry, comment)
      if (Either.isLeft(next)) return next
      comment = next.right
    }
  }
  if (comment.ignore && comment.keys.length > 1) {
    const others = comment.keys.filter((key) => key !== "ignore")
    return fail(`@orm ignore cannot be combined with ${others.join(", ")}: an ignored field has no column`)
  }
  return Either.right(comment)
}

/** Checks that a message carries only `table`. @since 0.1.0 @category validation */
export const forMessage = (comment: OrmComment): Either.Either<OrmComment, OrmCommentError> => {
  const misplaced = comment.keys.filter((key) => key !== "table")
  return misplaced.length === 0
    ? Either.right(comment)
    : fail(`@orm ${misplaced.join(", ")} belongs on a field; a message takes only table=name`)
}

/** Checks that a field carries no `table`. @since 0.1.0 @category validation */
export const forField = (comment: OrmComment): Either.Either<OrmComment, OrmCommentError> =>
  comment.table === undefined
    ? Either.right(comment)
    : fail("@orm table belongs on a message, not on a field")

/** The text of a comment without its `@orm` lines, for documentation. @since 0.1.0 @category parsing */
export const documentation = (text: string): string =>
  text
    .split("\n")
    .filter((line) => !line.trim().startsWith("@orm"))
    .join("\n")
