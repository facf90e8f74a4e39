/**
 * The error that stops generation: names the .proto file, the line and column, and the element.
 *
 * @since 0.1.0
 */
import type { DescEnum, DescField, DescMessage } from "@bufbuild/protobuf"
import { getComments } from "@bufbuild/protoplugin"
import { Data } from "effect"

/** @since 0.1.0 @category errors */
export class CodegenError extends Data.TaggedError("CodegenError")<{
  /** The .proto file as the compiler names it (relative to its include path or module root). */
  readonly file: string
  /** 1-based; undefined when the request carries no source info for the file. */
  readonly line: number | undefined
  readonly column: number | undefined
  /** The element at fault, e.g. `field "email" of message shop.User`. */
  readonly element: string
  readonly reason: string
  readonly cause?: unknown
}> {
  override get message(): string {
    const position = this.line === undefined ? "" : `:${this.line}:${this.column ?? 1}`
    return `${this.file}${position}: ${this.element}: ${this.reason}`
  }
}

/** How an element is named in messages. @since 0.1.0 @category formatting */
export const describe = (desc: DescMessage | DescField | DescEnum): string => {
  switch (desc.kind) {
    case "message":
      return `message ${desc.typeName}`
    case "enum":
      return `enum ${desc.typeName}`
    case "field":
      return `field "${desc.name}" of message ${desc.parent.typeName}`
  }
}

/** An error located at `desc` through the file's source code info. @since 0.1.0 @category constructors */
export const at = (
  desc: DescMessage | DescField | DescEnum,
  reason: string,
  cause?: unknown
): CodegenError => {
  const file = desc.kind === "field" ? desc.parent.file : desc.file
  const path = getComments(desc).sourcePath
  const location = file.proto.sourceCodeInfo?.location.find(
    (candidate) =>
      candidate.path.length === path.length && candidate.path.every((part, i) => part === path[i])
  )
  const [line, column] = location?.span ?? []
  return new CodegenError({
    file: file.proto.name,
    line: line === undefined ? undefined : line + 1,
    column: column === undefined ? undefined : column + 1,
    element: describe(desc),
    reason,
    cause
  })
}

/** Every problem found in one run; generation stops and reports them all. @since 0.1.0 @category errors */
export class CodegenErrors extends Data.TaggedError("CodegenErrors")<{
  readonly errors: ReadonlyArray<CodegenError>
}> {
  override get message(): string {
    return this.errors.map((error) => error.message).join("\n")
  }
}
