/**
 * What a statement is, decided once when it is built and read by every middleware: the builder's
 * node for SELECT, INSERT, UPDATE and DELETE, and for raw SQL text its operation, the tables it
 * writes and whether a write has no WHERE, from a lexer that skips comments and string literals and
 * understands `WITH`. No middleware re-parses SQL text.
 *
 * Raw text is read conservatively: a statement whose writes cannot be named (DDL, `CALL`, `DO`,
 * multi-table UPDATE/DELETE, `SELECT ... INTO`, anything unrecognised) has `writes: undefined`,
 * which a cache reads as "any table of the database may have changed".
 *
 * @since 0.1.0
 */
import type { DeleteNode, InsertNode, SelectNode, UpdateNode } from "./Ast.js"
import type { Dialect } from "./Dialect.js"
import { LexError, type Token, tokenize } from "./internal/lexer.js"
import { QueryBuildError } from "./QueryError.js"

/** The kind of write a table receives. @since 0.1.0 @category models */
export type WriteType = "INSERT" | "UPDATE" | "DELETE"

/** One table a raw statement writes. @since 0.1.0 @category models */
export interface RawWrite {
  readonly table: string
  readonly type: WriteType
  /** An UPDATE or DELETE with no WHERE (or a TRUNCATE): every row of the table. */
  readonly unconditional: boolean
}

/** What raw SQL text does. @since 0.1.0 @category models */
export interface RawText {
  readonly _tag: "Raw"
  /** The keyword of the statement after comments, parentheses and `WITH ...` (`SELECT`, `DELETE`, `CALL`...). */
  readonly operation: string
  /** The tables written (empty for a read); `undefined` when it may write tables that cannot be named. */
  readonly writes: ReadonlyArray<RawWrite> | undefined
  /** How many statements the text holds (more than one is refused unless asked for). */
  readonly statements: number
}

/**
 * A statement as the Executor and its middleware see it.
 *
 * @since 0.1.0 @category models
 */
export type Description =
  | { readonly _tag: "Select"; readonly node: SelectNode }
  | { readonly _tag: "Insert"; readonly node: InsertNode }
  | { readonly _tag: "Update"; readonly node: UpdateNode }
  | { readonly _tag: "Delete"; readonly node: DeleteNode }
  | RawText

/** Statements that write nothing by themselves (what they contain is still scanned). */
const nonWriting = new Set([
  "SELECT",
  "VALUES",
  "TABLE",
  "SHOW",
  "EXPLAIN",
  "DESCRIBE",
  "DESC",
  "PRAGMA",
  "SET",
  "BEGIN",
  "START",
  "COMMIT",
  "ROLLBACK",
  "SAVEPOINT",
  "RELEASE",
  "USE",
  "ANALYZE"
])

/** Statements that write rows of the table they name. */
const dml = new Set(["INSERT", "REPLACE", "UPDATE", "DELETE", "TRUNCATE", "MERGE"])

const isWord = (t: Token | undefined, ...words: ReadonlyArray<string>): boolean =>
  t?._tag === "Word" && words.includes(t.upper)

const isPunct = (t: Token | undefined, char: string): boolean => t?._tag === "Punct" && t.char === char

/**
 * Reads a possibly qualified table name at `i`: its last part, as written (folded to lower case
 * when unquoted on a dialect that folds), and the index after it.
 */
const tableAt = (
  text: string,
  tokens: ReadonlyArray<Token>,
  i: number,
  fold: boolean
): { readonly name: string; readonly next: number } | undefined => {
  let name: string | undefined
  let j = i
  for (;;) {
    const t = tokens[j]
    if (t?._tag === "Word") {
      const written = text.slice(t.start, t.start + t.upper.length)
      name = fold ? written.toLowerCase() : written
    } else if (t?._tag === "Quoted") {
      name = t.name
    } else {
      return undefined
    }
    j++
    if (!isPunct(tokens[j], ".")) break
    j++
  }
  return name === undefined ? undefined : { name, next: j }
}

/** Whether a WHERE follows at `depth` before the statement (or its parenthesised part) ends. */
const hasWhere = (tokens: ReadonlyArray<Token>, from: number, depth: number): boolean => {
  for (let j = from; j < tokens.length; j++) {
    const t = tokens[j] as Token
    if (t.depth < depth || (t.depth === depth && isPunct(t, ")"))) return false
    if (t.depth === depth && isWord(t, "WHERE")) return true
  }
  return false
}

const skipWords = (tokens: ReadonlyArray<Token>, i: number, words: ReadonlyArray<string>): number => {
  let j = i
  while (isWord(tokens[j], ...words)) j++
  return j
}

/** The writes of one statement's tokens; `undefined` when some cannot be named. */
const writesOf = (
  text: string,
  tokens: ReadonlyArray<Token>,
  operation: string,
  fold: boolean
): ReadonlyArray<RawWrite> | undefined => {
  const writes: Array<RawWrite> = []
  const table = (i: number) => tableAt(text, tokens, i, fold)
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i] as Token
    if (t._tag !== "Word") continue
    const prev = tokens[i - 1]
    switch (t.upper) {
      case "INSERT": {
        let j = skipWords(tokens, i + 1, ["LOW_PRIORITY", "DELAYED", "HIGH_PRIORITY", "IGNORE"])
        if (isWord(tokens[j], "OR")) j += 2
        if (isWord(tokens[j], "INTO")) j++
        const target = table(j)
        if (target === undefined) return undefined
        writes.push({ table: target.name, type: "INSERT", unconditional: false })
        break
      }
      case "REPLACE": {
        // REPLACE(...) is a function; INSERT OR REPLACE is an insert already counted.
        if (isPunct(tokens[i + 1], "(") || isWord(prev, "OR")) break
        let j = skipWords(tokens, i + 1, ["LOW_PRIORITY", "DELAYED"])
        if (isWord(tokens[j], "INTO")) j++
        const target = table(j)
        if (target === undefined) return undefined
        writes.push({ table: target.name, type: "INSERT", unconditional: false })
        break
      }
      case "UPDATE": {
        // FOR UPDATE, ON DUPLICATE KEY UPDATE, DO UPDATE, ON UPDATE CASCADE / CURRENT_TIMESTAMP.
        if (isWord(prev, "FOR", "KEY", "DO", "ON", "NO")) break
        let j = skipWords(tokens, i + 1, ["LOW_PRIORITY", "IGNORE", "ONLY"])
        if (isWord(tokens[j], "OR")) j += 2
        const target = table(j)
        if (target === undefined) return undefined
        let k = target.next
        if (isWord(tokens[k], "AS")) k++
        if (tokens[k]?._tag === "Word" && !isWord(tokens[k], "SET")) k++
        else if (tokens[k]?._tag === "Quoted") k++
        // Anything but SET here is a multi-table UPDATE (a join or a list): its targets are not named.
        if (!isWord(tokens[k], "SET")) return undefined
        writes.push({ table: target.name, type: "UPDATE", unconditional: !hasWhere(tokens, k, t.depth) })
        break
      }
      case "DELETE": {
        if (isWord(prev, "ON")) break
        let j = skipWords(tokens, i + 1, ["LOW_PRIORITY", "QUICK", "IGNORE"])
        if (!isWord(tokens[j], "FROM")) return undefined
        j = skipWords(tokens, j + 1, ["ONLY"])
        const target = table(j)
        if (target === undefined) return undefined
        let k = target.next
        if (isWord(tokens[k], "AS")) k++
        if (
          tokens[k]?._tag === "Quoted" ||
          (tokens[k]?._tag === "Word" &&
            !isWord(tokens[k], "WHERE", "USING", "RETURNING", "ORDER", "LIMIT", "PARTITION"))
        ) {
          k++
        }
        // A list, a join or USING: a multi-table DELETE whose targets are not all named.
        if (
          isPunct(tokens[k], ",") ||
          isWord(tokens[k], "USING", "JOIN", "INNER", "LEFT", "RIGHT", "CROSS")
        ) {
          return undefined
        }
        writes.push({ table: target.name, type: "DELETE", unconditional: !hasWhere(tokens, k, t.depth) })
        break
      }
      case "TRUNCATE": {
        let j = skipWords(tokens, i + 1, ["TABLE", "ONLY"])
        for (;;) {
          const target = table(j)
          if (target === undefined) return undefined
          writes.push({ table: target.name, type: "DELETE", unconditional: true })
          if (!isPunct(tokens[target.next], ",")) break
          j = target.next + 1
        }
        break
      }
      case "MERGE": {
        if (!isWord(tokens[i + 1], "INTO")) break
        const target = table(i + 2)
        if (target === undefined) return undefined
        writes.push({ table: target.name, type: "UPDATE", unconditional: false })
        break
      }
      case "INTO": {
        // SELECT ... INTO creates a table (PostgreSQL) or writes a file or variables (MySQL).
        if (operation === "SELECT" && !isWord(prev, "INSERT", "REPLACE", "MERGE", "IGNORE", "DELAYED")) {
          return undefined
        }
        break
      }
    }
  }
  return writes
}

/** The main keyword of a statement: after parentheses and any `WITH name AS (...)` list. */
const operationOf = (tokens: ReadonlyArray<Token>): string => {
  let i = 0
  while (isPunct(tokens[i], "(")) i++
  const first = tokens[i]
  if (!isWord(first, "WITH")) return first?._tag === "Word" ? first.upper : ""
  // The main statement is the first word at the depth of WITH after its CTE list.
  const depth = (first as Token).depth
  for (let j = i + 1; j < tokens.length; j++) {
    const t = tokens[j] as Token
    if (t.depth !== depth || t._tag !== "Word") continue
    if (["RECURSIVE", "AS", "NOT", "MATERIALIZED", "SEARCH", "CYCLE"].includes(t.upper)) continue
    // A CTE name is followed by AS or a column list; the main keyword is not.
    const after = tokens[j + 1]
    if (isWord(after, "AS") || isPunct(after, "(")) continue
    return t.upper
  }
  return ""
}

/** Splits tokens into statements at top-level semicolons; empty statements are dropped. */
const statementsOf = (tokens: ReadonlyArray<Token>): ReadonlyArray<ReadonlyArray<Token>> => {
  const out: Array<Array<Token>> = [[]]
  for (const t of tokens) {
    if (isPunct(t, ";")) out.push([])
    else (out[out.length - 1] as Array<Token>).push(t)
  }
  return out.filter((s) => s.length > 0)
}

const describeWith = (text: string, dialect: Dialect, backslashEscapes: boolean): RawText => {
  const tokens = tokenize(text, { ...dialect.lexical, backslashEscapes })
  const statements = statementsOf(tokens)
  const writes: Array<RawWrite> = []
  let known = true
  for (const statement of statements) {
    const operation = operationOf(statement)
    // DDL, CALL, DO, COPY and anything unrecognised: what they write cannot be named.
    if (!nonWriting.has(operation) && !dml.has(operation)) {
      known = false
      continue
    }
    const found = writesOf(text, statement, operation, dialect.lexical.foldsIdentifiers)
    if (found === undefined) known = false
    else writes.push(...found)
  }
  const first = statements[0]
  return {
    _tag: "Raw",
    operation: first === undefined ? "" : operationOf(first),
    writes: known ? writes : undefined,
    statements: statements.length
  }
}

const sameWrites = (a: RawText, b: RawText) => JSON.stringify(a) === JSON.stringify(b)

/**
 * Describes raw SQL text for `dialect`. Text that cannot be read (an unterminated string or comment)
 * fails with `QueryBuildError`. On MySQL a backslash in a string reads differently under
 * `NO_BACKSLASH_ESCAPES`: when the two readings differ, the writes are unknown.
 *
 * @since 0.1.0 @category constructors
 */
export const describeRaw = (text: string, dialect: Dialect): RawText => {
  try {
    const escapes = dialect.lexical.backslashEscapes
    const described = describeWith(text, dialect, escapes)
    if (!escapes || !text.includes("\\")) return described
    const other = describeWith(text, dialect, false)
    return sameWrites(described, other) ? described : { ...described, writes: undefined }
  } catch (e) {
    if (e instanceof LexError) throw new QueryBuildError({ reason: `Raw SQL cannot be read: ${e.reason}` })
    throw e
  }
}

/**
 * The offsets of the `?` placeholders of raw SQL text (not those inside strings or comments).
 * On MySQL both readings of backslashes must agree, or the text is refused.
 *
 * @since 0.1.0 @category constructors
 */
export const placeholders = (text: string, dialect: Dialect): ReadonlyArray<number> => {
  const find = (backslashEscapes: boolean) =>
    tokenize(text, { ...dialect.lexical, backslashEscapes })
      .filter((t) => t._tag === "Placeholder")
      .map((t) => t.start)
  try {
    const found = find(dialect.lexical.backslashEscapes)
    if (dialect.lexical.backslashEscapes && text.includes("\\")) {
      const other = find(false)
      if (other.join() !== found.join()) {
        throw new QueryBuildError({
          reason:
            "Raw SQL has a backslash in a string that changes where its placeholders are (NO_BACKSLASH_ESCAPES): bind the value instead"
        })
      }
    }
    return found
  } catch (e) {
    if (e instanceof LexError) throw new QueryBuildError({ reason: `Raw SQL cannot be read: ${e.reason}` })
    throw e
  }
}

/**
 * Whether a statement may change rows: a builder's INSERT, UPDATE or DELETE, or raw text that writes
 * a table or whose writes are unknown.
 *
 * @since 0.1.0 @category predicates
 */
export const writes = (description: Description): boolean =>
  description._tag === "Raw"
    ? description.writes === undefined || description.writes.length > 0
    : description._tag !== "Select"

const prefixOperators = ["NOT", "DISTINCT", "PRIOR", "BINARY", "COLLATE", "INTERVAL"]

/**
 * Whether raw SQL text is one operand as written: a number, a string, a placeholder, a possibly
 * qualified identifier, or a function call whose parentheses enclose the rest (`COALESCE(a, ?)`).
 * Anything else (an operator, a keyword such as OR, a list) is not.
 *
 * @since 0.1.0 @category predicates
 */
export const isAtomic = (text: string, dialect: Dialect): boolean => {
  let tokens: ReadonlyArray<Token>
  try {
    tokens = tokenize(text, dialect.lexical)
  } catch {
    return false
  }
  if (tokens.length === 0) return false
  if (tokens.length === 1) return tokens[0]?._tag !== "Punct" && !isWord(tokens[0], ...prefixOperators)
  // NOT(x) = y would read as NOT ((x) = y): a prefix operator is not a call.
  if (isWord(tokens[0], ...prefixOperators)) return false
  let i = 0
  // A qualified name: name(.name)*, then optionally one call's parentheses.
  for (;;) {
    const t = tokens[i]
    if (t === undefined || (t._tag !== "Word" && t._tag !== "Quoted")) return false
    i++
    if (!isPunct(tokens[i], ".")) break
    i++
  }
  if (i === tokens.length) return true
  if (!isPunct(tokens[i], "(") || (tokens[i] as Token).depth !== 0) return false
  const last = tokens[tokens.length - 1] as Token
  if (!isPunct(last, ")") || last.depth !== 0) return false
  // The call's closing parenthesis is the first to come back to depth 0.
  return tokens.slice(i + 1, -1).every((t) => t.depth > 0)
}

/**
 * Raw SQL text with its literals (strings, numbers) replaced by `?`: what logs, spans and errors show
 * of a raw statement that touches an entity with a sensitive field, whose literals may be its values.
 * Text the lexer cannot read is replaced whole.
 *
 * @since 0.1.0 @category redaction
 */
export const withoutLiterals = (text: string, dialect: Dialect): string => {
  let tokens: ReadonlyArray<Token>
  try {
    tokens = tokenize(text, dialect.lexical)
  } catch {
    return "<unreadable SQL redacted>"
  }
  let out = ""
  let from = 0
  for (const t of tokens) {
    // `$1` is a PostgreSQL parameter, not a literal.
    if (t._tag !== "String" && (t._tag !== "Number" || text[t.start - 1] === "$")) continue
    out += `${text.slice(from, t.start)}?`
    from = t.end
  }
  return out + text.slice(from)
}

/**
 * Splits raw SQL text into its statements at top-level semicolons (not those in strings or
 * comments); empty statements are dropped. Fails with `QueryBuildError` when the text cannot be read.
 *
 * @since 0.1.0 @category constructors
 */
export const splitStatements = (text: string, dialect: Dialect): ReadonlyArray<string> => {
  let tokens: ReadonlyArray<Token>
  try {
    tokens = tokenize(text, dialect.lexical)
  } catch (e) {
    if (e instanceof LexError) throw new QueryBuildError({ reason: `Raw SQL cannot be read: ${e.reason}` })
    throw e
  }
  const out: Array<string> = []
  let from = 0
  let tokensSince = 0
  for (const t of [...tokens, undefined]) {
    if (t !== undefined && !(isPunct(t, ";") && t.depth === 0)) {
      tokensSince++
      continue
    }
    const end = t === undefined ? text.length : t.start
    if (tokensSince > 0) out.push(text.slice(from, end).trim())
    from = end + 1
    tokensSince = 0
  }
  return out
}
