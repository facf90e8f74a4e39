/**
 * Type-level tests: `npm run typecheck` checks this file, so every `@ts-expect-error` below must
 * meet a real compile error (an unused one is itself an error). The runtime assertions show the
 * well-typed forms build the expected nodes.
 */
import { describe, expect, it } from "@effect/vitest"
import { Schema } from "effect"
import * as Expr from "../../src/Query/Expr.js"
import * as Select from "../../src/Query/Select.js"

class User extends Schema.Class<User>("User")({
  id: Schema.Number,
  name: Schema.String,
  email: Schema.NullOr(Schema.String),
  age: Schema.Number
}) {}

const C = Expr.columns(User)

describe("column references are checked by the compiler", () => {
  it("a misspelled column is a compile error", () => {
    // @ts-expect-error "agee" is not a field of User
    C("agee")
    // @ts-expect-error the typed callback has no such property either
    Select.from(User).where((u) => u.agee.gt(1))
    // @ts-expect-error nor does orderBy by name
    Select.from(User).orderBy("nmae")
    // @ts-expect-error nor columns()
    Select.from(User).columns("id", "emial")
    expect(C("age").node).toEqual({ _tag: "Column", source: undefined, field: "age" })
  })

  it("a value of the wrong type is a compile error", () => {
    // @ts-expect-error a string compared with a number column
    C("age").eq("18")
    // @ts-expect-error a number compared with a string column
    Select.from(User).where((u) => u.name.gt(3))
    // @ts-expect-error LIKE needs a string column
    C("age").like("1%")
    // @ts-expect-error IN takes values of the column's type
    C("id").in(["1"])
    // @ts-expect-error two columns of different types
    C("age").eq(C("name"))
    // @ts-expect-error arithmetic needs a number column
    C("name").add(1)
    expect(C("age").eq(18).node).toEqual({
      _tag: "Binary",
      op: "=",
      left: { _tag: "Column", source: undefined, field: "age" },
      right: { _tag: "Value", value: 18 }
    })
  })

  it("null is accepted only by nullable columns", () => {
    // @ts-expect-error age is not nullable
    C("age").eq(null)
    expect(C("email").eq(null).node._tag).toBe("IsNull")
  })

  it("projections decode to the caller's schema type, chosen columns to a Pick", () => {
    const picked: Select.SelectBuilder<User, Pick<User, "id" | "name">> = Select.from(User).columns(
      "id",
      "name"
    )
    const counted: Select.SelectBuilder<User, { readonly n: number }> = Select.from(User).select(
      { n: Expr.count() },
      Schema.Struct({ n: Schema.Number })
    )
    // @ts-expect-error a Pick of other fields is not assignable
    const wrong: Select.SelectBuilder<User, Pick<User, "email">> = Select.from(User).columns("id")
    expect([
      picked.node.selection?.length,
      counted.node.selection?.length,
      wrong.node.selection?.length
    ]).toEqual([2, 1, 1])
  })
})
