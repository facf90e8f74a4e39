/**
 * The table-creation annotations as EntityModel reads them, and the misuses that must not compile.
 */
import { describe, expect, it } from "@effect/vitest"
import { Either, Schema } from "effect"
import * as Entity from "../../src/Schema/Entity.js"
import * as EntityModel from "../../src/Schema/EntityModel.js"

class Team extends Schema.Class<Team>("Team")(
  { id: Schema.Number.pipe(Entity.generated), name: Schema.String },
  Entity.table("teams")
) {}

describe("Entity DDL annotations", () => {
  it("EntityModel reads types, defaults, unique, indexes, references and renames", () => {
    class Player extends Schema.Class<Player>("Player")(
      {
        id: Schema.Number.pipe(Entity.generated),
        teamId: Schema.Number.pipe(Entity.references(Team, "id", { onDelete: "cascade" })),
        coachId: Schema.NullOr(Schema.Number).pipe(Entity.referencesSelf("id")),
        nick: Schema.String.pipe(Entity.unique, Entity.renamedFrom("nickname")),
        rating: Schema.Int.pipe(Entity.default(1000), Entity.indexed),
        code: Schema.optional(Schema.String).pipe(Entity.columnType({ mysql: "CHAR(2)" }))
      },
      Entity.table("players", { indexes: [Entity.index(["teamId", "nick"], { unique: true })] })
    ) {}
    const model = Either.getOrThrow(EntityModel.make(Player))
    const ddl = (field: string) => model.byField.get(field)?.ddl
    expect(ddl("teamId")?.references?.entity()).toBe(Team)
    expect(ddl("teamId")?.references?.onDelete).toBe("cascade")
    expect(ddl("coachId")?.references?.entity()).toBeUndefined()
    expect(ddl("nick")).toMatchObject({ unique: true, renamedFrom: "nickname" })
    expect(ddl("rating")).toMatchObject({ indexed: true, default: { _tag: "Literal", value: 1000 } })
    expect(ddl("code")?.columnType).toEqual({ mysql: "CHAR(2)" })
    expect(model.indexes).toEqual([{ fields: ["teamId", "nick"], unique: true, name: undefined }])
  })

  it("an index over an unknown field fails with InvalidEntityError", () => {
    const schema = Schema.Struct({ id: Schema.Number }).annotations(
      Entity.table("t", { indexes: [Entity.index(["nope"])] })
    )
    const result = EntityModel.make(schema)
    expect(Either.isLeft(result) && result.left.message).toContain('unknown or unpersisted field "nope"')
  })

  it("a reference names a field of the referenced entity (type-level)", () => {
    // @ts-expect-error: Team has no field "teamName"
    const bad = Entity.references(Team, "teamName")
    // @ts-expect-error: not a referential action
    const action = Entity.references(Team, "id", { onDelete: "explode" })
    expect([typeof bad, typeof action]).toEqual(["function", "function"])
  })
})
