/**
 * The options of `protoc-gen-effect-dal` (`opt:` in buf.gen.yaml, `--effect-dal_opt=` for protoc).
 *
 * @since 0.1.0
 */
import { Data, Either } from "effect"

/** @since 0.1.0 @category models */
export interface PluginOptions {
  /** How 64-bit integers appear in memory: `bigint` (default) or `string` (decimal digits). */
  readonly int64: "bigint" | "string"
  /**
   * The module the generated files import `{ Entity }` from. A path starting with `./` or `../` is
   * relative to the output directory and rewritten for each generated file.
   */
  readonly importPath: string
}

/** @since 0.1.0 @category constructors */
export const defaults: PluginOptions = { int64: "bigint", importPath: "effect-dal" }

/** An option the plugin does not know, or a value it does not accept. @since 0.1.0 @category errors */
export class PluginOptionsError extends Data.TaggedError("PluginOptionsError")<{
  readonly option: string
  readonly reason: string
}> {
  /** Only the reason: protoplugin prefixes it with `invalid option "<raw option>"`. */
  override get message(): string {
    return this.reason
  }
}

/** Parses the plugin's own options (the standard `target=` etc. are parsed by protoplugin). @since 0.1.0 @category parsing */
export const parse = (
  raw: ReadonlyArray<{ readonly key: string; readonly value: string }>
): Either.Either<PluginOptions, PluginOptionsError> => {
  let options = defaults
  for (const { key, value } of raw) {
    switch (key) {
      case "int64":
        if (value !== "bigint" && value !== "string") {
          return Either.left(
            new PluginOptionsError({ option: key, reason: "expected int64=bigint or int64=string" })
          )
        }
        options = { ...options, int64: value }
        break
      case "import_path":
        if (value.trim() === "" || value !== value.trim()) {
          return Either.left(new PluginOptionsError({ option: key, reason: "expected a module specifier" }))
        }
        options = { ...options, importPath: value }
        break
      default:
        return Either.left(
          new PluginOptionsError({ option: key, reason: "unknown option; expected int64 or import_path" })
        )
    }
  }
  return Either.right(options)
}
