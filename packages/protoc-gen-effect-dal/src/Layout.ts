/**
 * A small Wadler-style document printer with Prettier's fitting rules, so generated code comes out
 * the way Biome (a Prettier-compatible formatter) would print it, without running a formatter.
 *
 * @since 0.1.0
 */

/** A document: text, a sequence, a line break opportunity, a group, or indented content. @since 0.1.0 @category models */
export type Doc = string | ReadonlyArray<Doc> | Line | Group | Indent | IndentIfBreak

/** @since 0.1.0 @category models */
export interface Line {
  readonly _tag: "Line"
  /** Printed as nothing (soft) or a space when its group fits on one line. */
  readonly soft: boolean
  /** Always a newline; breaks every enclosing group. */
  readonly hard: boolean
}

/** Content printed on one line when it fits, otherwise with every line of its own level broken. @since 0.1.0 @category models */
export interface Group {
  readonly _tag: "Group"
  readonly contents: Doc
  readonly id: symbol | undefined
}

/** @since 0.1.0 @category models */
export interface Indent {
  readonly _tag: "Indent"
  readonly contents: Doc
}

/** Indented only when the group `groupId` is broken (Prettier's `indentIfBreak`). @since 0.1.0 @category models */
export interface IndentIfBreak {
  readonly _tag: "IndentIfBreak"
  readonly contents: Doc
  readonly groupId: symbol
}

/** A space, or a newline when the group breaks. @since 0.1.0 @category constructors */
export const line: Line = { _tag: "Line", soft: false, hard: false }
/** Nothing, or a newline when the group breaks. @since 0.1.0 @category constructors */
export const softline: Line = { _tag: "Line", soft: true, hard: false }
/** A newline that breaks every enclosing group. @since 0.1.0 @category constructors */
export const hardline: Line = { _tag: "Line", soft: false, hard: true }

/** @since 0.1.0 @category constructors */
export const group = (contents: Doc, id?: symbol): Group => ({ _tag: "Group", contents, id })
/** @since 0.1.0 @category constructors */
export const indent = (contents: Doc): Indent => ({ _tag: "Indent", contents })
/** @since 0.1.0 @category constructors */
export const indentIfBreak = (contents: Doc, groupId: symbol): IndentIfBreak => ({
  _tag: "IndentIfBreak",
  contents,
  groupId
})

/** Puts `separator` between the documents. @since 0.1.0 @category combinators */
export const join = (separator: Doc, docs: ReadonlyArray<Doc>): Doc =>
  docs.flatMap((doc, i) => (i === 0 ? [doc] : [separator, doc]))

/** Multi-line text (a comment, a fixed block) whose lines follow the current indentation. @since 0.1.0 @category combinators */
export const lines = (text: string): Doc => join(hardline, text.split("\n"))

/** `callee(arg, ...)`, arguments on one line or one per line. @since 0.1.0 @category combinators */
export const call = (callee: Doc, args: ReadonlyArray<Doc>): Doc =>
  args.length === 0
    ? [callee, "()"]
    : [callee, group(["(", indent([softline, join([",", line], args)]), softline, ")"])]

/**
 * `left<operator> right` in Prettier's "fluid" assignment layout: the right side moves to the next
 * line only when its first line does not fit after the operator.
 *
 * @since 0.1.0 @category combinators
 */
export const assignment = (left: Doc, operator: string, right: Doc): Doc => {
  const id = Symbol("assignment")
  return group([left, operator, group(indent(line), id), indentIfBreak(right, id)])
}

/** An object literal with one property per line. @since 0.1.0 @category combinators */
export const objectLines = (properties: ReadonlyArray<Doc>): Doc =>
  properties.length === 0
    ? "{}"
    : group(["{", indent([hardline, join([",", hardline], properties)]), hardline, "}"])

type Mode = "flat" | "break"

interface Command {
  readonly indentation: number
  readonly mode: Mode
  readonly doc: Doc
}

/** Whether a document contains a hard line; such groups can never print flat. */
const breaksCache = new WeakMap<object, boolean>()
const containsHardline = (doc: Doc): boolean => {
  if (typeof doc === "string") return false
  const cached = breaksCache.get(doc)
  if (cached !== undefined) return cached
  const result = isDocArray(doc)
    ? doc.some(containsHardline)
    : doc._tag === "Line"
      ? doc.hard
      : containsHardline(doc.contents)
  breaksCache.set(doc, result)
  return result
}

const isDocArray = (doc: Doc): doc is ReadonlyArray<Doc> => Array.isArray(doc)

/** Prettier's `fits`: does `next` fit in `width`, counting the rest up to its first possible newline. */
const fits = (next: Command, rest: ReadonlyArray<Command>, width: number): boolean => {
  let remaining = width
  let restIndex = rest.length
  const stack: Array<Command> = [next]
  while (remaining >= 0) {
    const command = stack.pop()
    if (command === undefined) {
      if (restIndex === 0) return true
      restIndex -= 1
      const restCommand = rest[restIndex]
      if (restCommand !== undefined) stack.push(restCommand)
      continue
    }
    const { doc, indentation, mode } = command
    if (typeof doc === "string") {
      remaining -= doc.length
    } else if (isDocArray(doc)) {
      for (let i = doc.length - 1; i >= 0; i--) {
        const part = doc[i]
        if (part !== undefined) stack.push({ indentation, mode, doc: part })
      }
    } else if (doc._tag === "Line") {
      if (mode === "break" || doc.hard) return true
      if (!doc.soft) remaining -= 1
    } else if (doc._tag === "Group") {
      stack.push({ indentation, mode: containsHardline(doc.contents) ? "break" : mode, doc: doc.contents })
    } else {
      stack.push({ indentation, mode, doc: doc.contents })
    }
  }
  return false
}

/** Prints a document within `width` columns, indenting by two spaces. @since 0.1.0 @category rendering */
export const render = (doc: Doc, width: number): string => {
  const out: Array<string> = []
  let position = 0
  const groupModes = new Map<symbol, Mode>()
  const commands: Array<Command> = [{ indentation: 0, mode: "break", doc }]
  for (let command = commands.pop(); command !== undefined; command = commands.pop()) {
    const { doc: current, indentation, mode } = command
    if (typeof current === "string") {
      out.push(current)
      position += current.length
    } else if (isDocArray(current)) {
      for (let i = current.length - 1; i >= 0; i--) {
        const part = current[i]
        if (part !== undefined) commands.push({ indentation, mode, doc: part })
      }
    } else if (current._tag === "Indent") {
      commands.push({ indentation: indentation + 2, mode, doc: current.contents })
    } else if (current._tag === "IndentIfBreak") {
      const extra = groupModes.get(current.groupId) === "break" ? 2 : 0
      commands.push({ indentation: indentation + extra, mode, doc: current.contents })
    } else if (current._tag === "Group") {
      const flat: Command = { indentation, mode: "flat", doc: current.contents }
      const chosen =
        !containsHardline(current.contents) && (mode === "flat" || fits(flat, commands, width - position))
          ? flat
          : { indentation, mode: "break" as const, doc: current.contents }
      if (current.id !== undefined) groupModes.set(current.id, chosen.mode)
      commands.push(chosen)
    } else if (mode === "flat" && !current.hard) {
      if (!current.soft) {
        out.push(" ")
        position += 1
      }
    } else {
      const last = out.length - 1
      if (last >= 0) out[last] = (out[last] ?? "").replace(/[ \t]+$/, "")
      out.push(`\n${" ".repeat(indentation)}`)
      position = indentation
    }
  }
  return out.join("")
}
