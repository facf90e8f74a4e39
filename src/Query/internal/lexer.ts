/**
 * A small SQL lexer: enough to find what raw SQL text does without being fooled by what it only
 * mentions. It skips comments (`--`, `/* *\/`, `#` on MySQL; nested block comments on PostgreSQL)
 * and string literals (`'...'`, PostgreSQL `E'...'` and dollar quoting), reads quoted identifiers,
 * and reports words, punctuation and `?` placeholders with their position and parenthesis depth.
 * MySQL's executable comments (`/*! ... *\/`, `/*M! ... *\/`) are read as code, since the server runs them.
 *
 * @internal
 */

/** How a dialect writes comments, strings and identifiers (`Dialect.LexicalRules`). @since 0.1.0 @category models */
export interface LexicalRules {
  /** `#` starts a line comment, and `--` only when followed by whitespace (MySQL). */
  readonly mysqlComments: boolean
  /** A backslash escapes the next character in `'...'` (MySQL without NO_BACKSLASH_ESCAPES). */
  readonly backslashEscapes: boolean
  /** `$tag$ ... $tag$` strings and `E'...'` strings (PostgreSQL). */
  readonly dollarQuotes: boolean
  /** Block comments nest (PostgreSQL). */
  readonly nestedComments: boolean
  /** Unquoted identifiers are case-insensitive and read in lower case (PostgreSQL, SQLite). */
  readonly foldsIdentifiers: boolean
}

/** @internal */
export type Token =
  | { readonly _tag: "Word"; readonly upper: string; readonly start: number; readonly depth: number }
  | { readonly _tag: "Quoted"; readonly name: string; readonly start: number; readonly depth: number }
  | { readonly _tag: "String"; readonly start: number; readonly end: number; readonly depth: number }
  | { readonly _tag: "Number"; readonly start: number; readonly end: number; readonly depth: number }
  | { readonly _tag: "Placeholder"; readonly start: number; readonly depth: number }
  | { readonly _tag: "Punct"; readonly char: string; readonly start: number; readonly depth: number }

/** The text cannot be read as SQL (an unterminated string, comment or quoted identifier). @internal */
export class LexError {
  readonly reason: string
  constructor(reason: string) {
    this.reason = reason
  }
}

const isWordStart = (c: string) => /[A-Za-z_\u0080-\uffff]/.test(c)
const isWordPart = (c: string) => /[A-Za-z0-9_$\u0080-\uffff]/.test(c)
const isSpace = (c: string | undefined) => c !== undefined && /\s/.test(c)

/**
 * The tokens of `text`. Throws `LexError` for unterminated strings, comments or identifiers.
 *
 * @internal
 */
export const tokenize = (text: string, rules: LexicalRules): ReadonlyArray<Token> => {
  const tokens: Array<Token> = []
  let depth = 0
  let i = 0
  const n = text.length
  /** The end of a `q`-quoted run starting after `i` (a doubled quote is part of it). */
  const quoted = (q: string, from: number, backslash: boolean): number => {
    let j = from
    while (j < n) {
      const c = text[j]
      if (backslash && c === "\\") {
        j += 2
        continue
      }
      if (c === q) {
        if (text[j + 1] === q) {
          j += 2
          continue
        }
        return j + 1
      }
      j++
    }
    throw new LexError(`unterminated ${q === "'" ? "string literal" : "quoted identifier"}`)
  }
  while (i < n) {
    const c = text[i] as string
    const next = text[i + 1]
    if (isSpace(c)) {
      i++
      continue
    }
    // Line comments.
    if (
      (c === "-" && next === "-" && (!rules.mysqlComments || i + 2 === n || isSpace(text[i + 2]))) ||
      (c === "#" && rules.mysqlComments)
    ) {
      const end = text.indexOf("\n", i)
      i = end === -1 ? n : end + 1
      continue
    }
    // Block comments; MySQL runs the body of /*! ... */ and /*M! ... */, so it is code.
    if (c === "/" && next === "*") {
      if (rules.mysqlComments && (text[i + 2] === "!" || (text[i + 2] === "M" && text[i + 3] === "!"))) {
        i += text[i + 2] === "!" ? 3 : 4
        // The optional version number is not code.
        while (i < n && /[0-9]/.test(text[i] as string)) i++
        continue
      }
      let level = 1
      let j = i + 2
      while (j < n && level > 0) {
        if (text[j] === "*" && text[j + 1] === "/") {
          level--
          j += 2
        } else if (rules.nestedComments && text[j] === "/" && text[j + 1] === "*") {
          level++
          j += 2
        } else {
          j++
        }
      }
      if (level > 0) throw new LexError("unterminated comment")
      i = j
      continue
    }
    // The end of an executable comment.
    if (rules.mysqlComments && c === "*" && next === "/") {
      i += 2
      continue
    }
    if (c === "'") {
      const end = quoted("'", i + 1, rules.backslashEscapes)
      tokens.push({ _tag: "String", start: i, end, depth })
      i = end
      continue
    }
    if (rules.dollarQuotes && (c === "E" || c === "e") && next === "'") {
      const end = quoted("'", i + 2, true)
      tokens.push({ _tag: "String", start: i, end, depth })
      i = end
      continue
    }
    if (rules.dollarQuotes && c === "$") {
      const tag = /^\$([A-Za-z_][A-Za-z0-9_]*)?\$/.exec(text.slice(i, i + 66))
      if (tag !== null) {
        const end = text.indexOf(tag[0], i + tag[0].length)
        if (end === -1) throw new LexError("unterminated dollar-quoted string")
        tokens.push({ _tag: "String", start: i, end: end + tag[0].length, depth })
        i = end + tag[0].length
        continue
      }
    }
    if (c === '"' || c === "`") {
      // MySQL reads "..." as a string unless ANSI_QUOTES: a backslash escapes there too.
      const end = quoted(c, i + 1, c === '"' && rules.mysqlComments && rules.backslashEscapes)
      tokens.push({ _tag: "Quoted", name: text.slice(i + 1, end - 1).replaceAll(c + c, c), start: i, depth })
      i = end
      continue
    }
    if (c === "[" && !rules.dollarQuotes && !rules.mysqlComments) {
      // SQLite also quotes identifiers in brackets.
      const end = text.indexOf("]", i)
      if (end === -1) throw new LexError("unterminated quoted identifier")
      tokens.push({ _tag: "Quoted", name: text.slice(i + 1, end), start: i, depth })
      i = end + 1
      continue
    }
    if (isWordStart(c)) {
      let j = i + 1
      while (j < n && isWordPart(text[j] as string)) j++
      tokens.push({ _tag: "Word", upper: text.slice(i, j).toUpperCase(), start: i, depth })
      i = j
      continue
    }
    if (/[0-9]/.test(c)) {
      let j = i + 1
      while (j < n && /[0-9A-Za-z_.]/.test(text[j] as string)) j++
      tokens.push({ _tag: "Number", start: i, end: j, depth })
      i = j
      continue
    }
    if (c === "?") {
      tokens.push({ _tag: "Placeholder", start: i, depth })
      i++
      continue
    }
    if (c === "(") {
      tokens.push({ _tag: "Punct", char: c, start: i, depth })
      depth++
      i++
      continue
    }
    if (c === ")") {
      depth = Math.max(0, depth - 1)
      tokens.push({ _tag: "Punct", char: c, start: i, depth })
      i++
      continue
    }
    tokens.push({ _tag: "Punct", char: c, start: i, depth })
    i++
  }
  return tokens
}
