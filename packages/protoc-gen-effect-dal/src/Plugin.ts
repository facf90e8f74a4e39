/**
 * `protoc-gen-effect-dal`: a protoc / buf plugin that turns every message of a .proto file into an
 * Effect `Schema.Class` entity carrying this library's `Entity` annotations.
 *
 * @since 0.1.0
 */

import { createRequire } from "node:module"
import { create, protoInt64 } from "@bufbuild/protobuf"
import {
  type CodeGeneratorRequest,
  type CodeGeneratorResponse,
  CodeGeneratorResponse_Feature,
  CodeGeneratorResponseSchema
} from "@bufbuild/protobuf/wkt"
import { createEcmaScriptPlugin, type Plugin, runNodeJs } from "@bufbuild/protoplugin"
import { Either } from "effect"
import { CodegenErrors } from "./CodegenError.js"
import * as EntityFile from "./EntityFile.js"
import * as PluginOptions from "./PluginOptions.js"

/** @since 0.1.0 @category constants */
export const name = "protoc-gen-effect-dal"

/** The plugin package's own manifest: `src/` and `dist/` both sit next to it. */
const packageJson = createRequire(import.meta.url)("../package.json") as { readonly version: string }

const generator = createEcmaScriptPlugin<PluginOptions.PluginOptions>({
  name,
  version: `v${packageJson.version}`,
  parseOptions: (raw) => Either.getOrThrowWith(PluginOptions.parse(raw), (error) => error),
  generateTs: (schema) => {
    if (schema.targets.length !== 1 || schema.targets[0] !== "ts") {
      throw new PluginOptions.PluginOptionsError({
        option: "target",
        reason: "protoc-gen-effect-dal generates TypeScript only: use target=ts (the default)"
      })
    }
    const rendered = schema.files.map((file) => ({ file, output: EntityFile.render(file, schema.options) }))
    const errors = rendered.flatMap(({ output }) => (Either.isLeft(output) ? output.left : []))
    if (errors.length > 0) throw new CodegenErrors({ errors })
    for (const { file, output } of rendered) {
      if (Either.isRight(output) && output.right.content !== "") {
        const generated = schema.generateFile(output.right.name)
        generated.preamble(file)
        generated.print(output.right.content.trimEnd())
      }
    }
  }
})

/** protoplugin defaults to `target=js+dts`; this plugin's output is TypeScript, so `ts` is the default. */
const withDefaultTarget = (request: CodeGeneratorRequest): CodeGeneratorRequest =>
  /(^|,)\s*target=/.test(request.parameter)
    ? request
    : { ...request, parameter: request.parameter === "" ? "target=ts" : `target=ts,${request.parameter}` }

/** Problems in the input are reported in the response, as the protocol asks; anything else is a crash. */
const isInputError = (error: unknown): error is Error =>
  error instanceof CodegenErrors ||
  error instanceof PluginOptions.PluginOptionsError ||
  (error instanceof Error && error.name === "PluginOptionError")

/**
 * The plugin: a CodeGeneratorRequest in, a CodeGeneratorResponse out. Bad annotations, unsupported
 * types and bad options come back as the response's `error`, one line per problem.
 *
 * @since 0.1.0 @category plugin
 */
export const plugin: Plugin = {
  name,
  version: generator.version,
  run: (request: CodeGeneratorRequest): CodeGeneratorResponse => {
    try {
      return generator.run(withDefaultTarget(request))
    } catch (error) {
      if (!isInputError(error)) throw error
      return create(CodeGeneratorResponseSchema, {
        error: error.message,
        supportedFeatures: protoInt64.parse(CodeGeneratorResponse_Feature.PROTO3_OPTIONAL)
      })
    }
  }
}

/** Runs the plugin on stdin/stdout, as protoc and buf call it. @since 0.1.0 @category plugin */
export const main = (): void => runNodeJs(plugin)
