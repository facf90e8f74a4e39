import { describe, expect, it } from "@effect/vitest"
import { Either, Schema } from "effect"
import * as Entity from "../../src/Schema/Entity.js"
import * as EntityModel from "../../src/Schema/EntityModel.js"

const model = <A, I>(schema: Schema.Schema<A, I, never>) => {
  const result = EntityModel.make(schema)
  if (Either.isLeft(result)) throw new Error(result.left.message)
  return result.right
}

const failure = <A, I>(schema: Schema.Schema<A, I, never>) => {
  const result = EntityModel.make(schema)
  if (Either.isRight(result)) throw new Error("expected InvalidEntityError")
  return result.left
}

describe("EntityModel", () => {
  it("snake_cases identifiers and fields by default", () => {
    expect(EntityModel.snakeCase("UserProfile")).toBe("user_profile")
    expect(EntityModel.snakeCase("firstName")).toBe("first_name")
    expect(EntityModel.snakeCase("HTTPServer")).toBe("http_server")
    expect(EntityModel.snakeCase("userID2Name")).toBe("user_id2_name")
  })

  it("derives table, columns, primary key and generated fields from a Schema.Class", () => {
    class UserProfile extends Schema.Class<UserProfile>("UserProfile")({
      id: Schema.Number.pipe(Entity.generated),
      firstName: Schema.String,
      email: Schema.String.pipe(Entity.column("mail"), Entity.sensitive),
      nickname: Schema.optional(Schema.String).pipe(Entity.ignore)
    }) {}
    const m = model(UserProfile)
    expect(m.name).toBe("UserProfile")
    expect(m.table).toBe("user_profile")
    expect(m.fields.map((f) => [f.field, f.column])).toEqual([
      ["id", "id"],
      ["firstName", "first_name"],
      ["email", "mail"]
    ])
    expect(m.primaryKey.map((f) => f.field)).toEqual(["id"])
    expect(m.generated.map((f) => f.field)).toEqual(["id"])
    expect(m.ignored).toEqual(["nickname"])
    expect(m.byColumn.get("mail")?.sensitive).toBe(true)
    expect(m.byField.get("firstName")?.sensitive).toBe(false)
  })

  it("reads a table annotation and composite primary keys on a Struct", () => {
    const Membership = Schema.Struct({
      userId: Schema.Number.pipe(Entity.primaryKey),
      groupId: Schema.Number.pipe(Entity.primaryKey),
      role: Schema.String
    }).annotations({ identifier: "Membership", ...Entity.table("memberships") })
    const m = model(Membership)
    expect(m.table).toBe("memberships")
    expect(m.primaryKey.map((f) => f.column)).toEqual(["user_id", "group_id"])
  })

  it("applies overrides over annotations", () => {
    const Thing = Schema.Struct({ id: Schema.Number, label: Schema.String }).annotations({
      identifier: "Thing"
    })
    const m = EntityModel.make(Thing, { table: "things_v2", columns: { label: "title" } })
    expect(Either.map(m, (x) => [x.table, x.byField.get("label")?.column])).toEqual(
      Either.right(["things_v2", "title"])
    )
  })

  it("encodes values through fields whose type differs from what they store, and only those", () => {
    const Event = Schema.Struct({ id: Schema.Number, at: Schema.Date }).annotations({ identifier: "Event" })
    const m = model(Event)
    expect(m.byField.get("id")?.encode).toBeUndefined()
    const encode = m.byField.get("at")?.encode
    expect(encode?.(new Date("2026-01-01T00:00:00.000Z"))).toEqual(Either.right("2026-01-01T00:00:00.000Z"))
  })

  it("encodes optionalWith fields through their encoded-side schema", () => {
    const Post = Schema.Struct({
      id: Schema.Number,
      at: Schema.optionalWith(Schema.Date, { default: () => new Date(0) })
    }).annotations({ identifier: "Post" })
    const encode = model(Post).byField.get("at")?.encode
    expect(encode?.(new Date("2026-01-01T00:00:00.000Z"))).toEqual(Either.right("2026-01-01T00:00:00.000Z"))
  })

  it("fails on a schema that is not a struct", () => {
    expect(failure(Schema.String)).toMatchObject({
      _tag: "InvalidEntityError",
      reason: expect.stringContaining("Struct")
    })
  })

  it("fails without a primary key, naming the entity", () => {
    const NoKey = Schema.Struct({ name: Schema.String }).annotations({ identifier: "NoKey" })
    expect(failure(NoKey).message).toBe(
      "Invalid entity NoKey: no primary key: annotate one with Entity.primaryKey or name a field id"
    )
  })

  it("fails when two fields map to one column, naming the field", () => {
    const Clash = Schema.Struct({
      id: Schema.Number,
      firstName: Schema.String,
      first_name: Schema.String
    }).annotations({ identifier: "Clash" })
    expect(failure(Clash)).toMatchObject({ entity: "Clash", field: "first_name" })
  })

  it("fails when an ignored field is required", () => {
    const Bad = Schema.Struct({ id: Schema.Number, cache: Schema.String.pipe(Entity.ignore) }).annotations({
      identifier: "Bad"
    })
    expect(failure(Bad)).toMatchObject({ entity: "Bad", field: "cache" })
  })

  it("fails without a table name when the schema has no identifier", () => {
    expect(failure(Schema.Struct({ id: Schema.Number })).reason).toContain("no table name")
  })

  it("decodes an object keyed by field names", () => {
    const Row = Schema.Struct({ id: Schema.Number, name: Schema.String }).annotations({ identifier: "Row" })
    expect(model(Row).decode({ id: 1, name: "a" })).toEqual(Either.right({ id: 1, name: "a" }))
    expect(Either.isLeft(model(Row).decode({ id: "x", name: "a" }))).toBe(true)
  })
})
