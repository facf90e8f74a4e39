import { describe, expect, it } from "@effect/vitest"
import { Either, Schema } from "effect"
import * as RowDecoder from "../../src/Query/RowDecoder.js"
import * as Entity from "../../src/Schema/Entity.js"
import * as EntityModel from "../../src/Schema/EntityModel.js"

class Person extends Schema.Class<Person>("Person")(
  {
    id: Schema.Number,
    name: Schema.String.pipe(Entity.column("full_name")),
    nick: Schema.optional(Schema.String),
    email: Schema.NullOr(Schema.String),
    active: Schema.Boolean,
    kind: Schema.Literal("a", "b")
  },
  Entity.table("people")
) {}

const Event = Schema.Struct({ id: Schema.Number, at: Schema.Date }).annotations({ identifier: "Event" })

const model = <A, I>(schema: Schema.Schema<A, I, never>) => Either.getOrThrow(EntityModel.make(schema))

const row = { id: 1, full_name: "Ann", nick: null, email: null, active: true, kind: "a" }

/** A class over a filtered struct: the filter is the class's own, over several fields. */
class Range extends Schema.Class<Range>("Range")(
  Schema.Struct({ id: Schema.Number, lo: Schema.Number, hi: Schema.Number }).pipe(
    Schema.filter((r) => r.lo <= r.hi, { message: () => "lo must not exceed hi" })
  ),
  Entity.table("ranges")
) {}

const Secretive = Schema.Struct({ id: Schema.Number, pin: Schema.Number.pipe(Entity.sensitive) }).annotations(
  {
    identifier: "Secretive"
  }
)

describe("RowDecoder.entity", () => {
  it("runs a class-level filter: the fast path never builds a class the filter refuses", () => {
    const ok = RowDecoder.entity<Range>().decode([{ id: 1, lo: 1, hi: 2 }], model(Range))
    expect(Either.map(ok, (rows) => rows[0] instanceof Range)).toEqual(Either.right(true))
    const bad = RowDecoder.entity<Range>().decode([{ id: 2, lo: 5, hi: 1 }], model(Range))
    expect(bad).toEqual(Either.left(expect.objectContaining({ _tag: "DecodeError", table: "ranges" })))
  })

  it("does not quote a sensitive field's value in its DecodeError", () => {
    const bad = RowDecoder.entity().decode([{ id: 1, pin: "1234-secret" }], model(Secretive))
    expect(Either.isLeft(bad) && bad.left.column).toBe("pin")
    expect(Either.isLeft(bad) && bad.left.message).not.toContain("1234-secret")
  })

  it("maps columns back to fields and builds the class, omitting NULL optional fields", () => {
    const [person] = Either.getOrThrow(RowDecoder.entity<Person>().decode([row], model(Person)))
    expect(person).toBeInstanceOf(Person)
    expect(person).toEqual(new Person({ id: 1, name: "Ann", email: null, active: true, kind: "a" }))
    expect(person !== undefined && "nick" in person).toBe(false)
  })

  it("refuses a value of the wrong type with DecodeError naming table and column", () => {
    const result = RowDecoder.entity<Person>().decode([row, { ...row, full_name: 42 }], model(Person))
    expect(result).toEqual(
      Either.left(expect.objectContaining({ _tag: "DecodeError", table: "people", column: "full_name" }))
    )
    const literal = RowDecoder.entity<Person>().decode([{ ...row, kind: "c" }], model(Person))
    expect(literal).toEqual(Either.left(expect.objectContaining({ column: "kind" })))
  })

  it("decodes fields that transform (a Date stored as text) through the full schema", () => {
    const [event] = Either.getOrThrow(
      RowDecoder.entity<typeof Event.Type>().decode([{ id: 1, at: "2026-01-02T00:00:00.000Z" }], model(Event))
    )
    expect(event?.at).toEqual(new Date("2026-01-02T00:00:00.000Z"))
  })

  it("decodes a subset of fields to a plain object", () => {
    const picked = Schema.Struct({ id: Schema.Number, name: Schema.String })
    const decode: RowDecoder.Decode<typeof picked.Type> = Schema.decodeUnknownEither(picked)
    const [value] = Either.getOrThrow(RowDecoder.entity(decode, ["id", "name"]).decode([row], model(Person)))
    expect(value).toEqual({ id: 1, name: "Ann" })
    expect(value).not.toBeInstanceOf(Person)
  })
})

describe("RowDecoder.projection", () => {
  const Stats = Schema.Struct({ n: Schema.Number, total: Schema.NullOr(Schema.Number) })
  const decoder = RowDecoder.projection(Schema.decodeUnknownEither(Stats), new Set(["n", "total"]))

  it("reads COUNT/SUM/AVG text and bigints as numbers", () => {
    expect(decoder.decode([{ n: 3n, total: "12.5000" }], model(Person))).toEqual(
      Either.right([{ n: 3, total: 12.5 }])
    )
    expect(decoder.decode([{ n: "0", total: null }], model(Person))).toEqual(
      Either.right([{ n: 0, total: null }])
    )
  })

  it("refuses an integer beyond 2^53 instead of rounding it", () => {
    const result = decoder.decode([{ n: 1, total: "9007199254740993" }], model(Person))
    expect(result).toEqual(Either.left(expect.objectContaining({ _tag: "DecodeError", column: "total" })))
  })
})
