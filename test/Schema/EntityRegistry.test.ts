import { describe, expect, it } from "@effect/vitest"
import { Either, Schema } from "effect"
import * as EntityRegistry from "../../src/Schema/EntityRegistry.js"

const User = Schema.Struct({ id: Schema.Number, name: Schema.String }).annotations({ identifier: "User" })

describe("EntityRegistry", () => {
  it("derives a model once and returns the cached one after", () => {
    const registry = EntityRegistry.make()
    const first = Either.getOrThrow(registry.get(User))
    expect(Either.getOrThrow(registry.get(User))).toBe(first)
  })

  it("keeps overrides per registry: each database is its own isolation unit", () => {
    const a = EntityRegistry.make()
    const b = EntityRegistry.make()
    a.override(User, { table: "users_a" })
    expect(Either.map(a.get(User), (m) => m.table)).toEqual(Either.right("users_a"))
    expect(Either.map(b.get(User), (m) => m.table)).toEqual(Either.right("user"))
  })

  it("reports an invalid entity without caching it", () => {
    const registry = EntityRegistry.make()
    const NoKey = Schema.Struct({ name: Schema.String }).annotations({ identifier: "NoKey" })
    expect(Either.isLeft(registry.get(NoKey))).toBe(true)
    expect(Either.isRight(registry.override(NoKey, { columns: {} }))).toBe(false)
  })
})
