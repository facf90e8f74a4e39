import { describe, expect, it } from "@effect/vitest"
import { Either } from "effect"
import * as PluginOptions from "../../packages/protoc-gen-effect-dal/src/PluginOptions.js"

describe("PluginOptions.parse", () => {
  it("defaults to bigint int64 and the effect-dal package", () => {
    expect(PluginOptions.parse([])).toEqual(Either.right({ int64: "bigint", importPath: "effect-dal" }))
  })

  it("reads int64 and import_path; the last occurrence wins", () => {
    expect(
      PluginOptions.parse([
        { key: "int64", value: "bigint" },
        { key: "import_path", value: "../src/db.js" },
        { key: "int64", value: "string" }
      ])
    ).toEqual(Either.right({ int64: "string", importPath: "../src/db.js" }))
  })

  it("rejects an int64 mode other than bigint or string", () => {
    const result = PluginOptions.parse([{ key: "int64", value: "number" }])
    expect(Either.isLeft(result) && result.left).toMatchObject({
      option: "int64",
      message: "expected int64=bigint or int64=string"
    })
  })

  it("rejects an empty or padded import path", () => {
    expect(Either.isLeft(PluginOptions.parse([{ key: "import_path", value: "" }]))).toBe(true)
    expect(Either.isLeft(PluginOptions.parse([{ key: "import_path", value: " effect-dal" }]))).toBe(true)
  })

  it("rejects unknown options", () => {
    const result = PluginOptions.parse([{ key: "int_64", value: "string" }])
    expect(Either.isLeft(result) && result.left).toMatchObject({
      option: "int_64",
      message: "unknown option; expected int64 or import_path"
    })
  })
})
