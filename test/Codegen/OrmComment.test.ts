import { describe, expect, it } from "@effect/vitest"
import { Either } from "effect"
import * as OrmComment from "../../packages/protoc-gen-effect-dal/src/OrmComment.js"

const parsed = (text: string): OrmComment.OrmComment => {
  const result = OrmComment.parse(text)
  if (Either.isLeft(result))
    throw new Error(`expected ${JSON.stringify(text)} to parse: ${result.left.reason}`)
  return result.right
}

const reason = (result: Either.Either<OrmComment.OrmComment, OrmComment.OrmCommentError>): string => {
  if (Either.isRight(result)) throw new Error("expected a rejection")
  return result.left.reason
}

describe("OrmComment.parse", () => {
  it("reads a column, flags and a table; order of keys is kept", () => {
    expect(parsed(" @orm:column=user_id;primary_key;auto_increment")).toEqual({
      keys: ["column", "primary_key", "auto_increment"],
      column: "user_id",
      table: undefined,
      type: undefined,
      primaryKey: true,
      autoIncrement: true,
      ignore: false,
      sensitive: false,
      unique: false,
      index: false
    })
    expect(parsed("@orm:table=audit.events").table).toBe("audit.events")
    expect(parsed("@orm:sensitive").sensitive).toBe(true)
    expect(parsed("@orm:ignore").ignore).toBe(true)
  })

  it("reads what migrations create: type, unique, index; a type must be a plain SQL type", () => {
    const comment = parsed("@orm:type=NUMERIC(12, 4);unique;index")
    expect([comment.type, comment.unique, comment.index]).toEqual(["NUMERIC(12, 4)", true, true])
    expect(reason(OrmComment.parse("@orm:type=TEXT --x"))).toBe(
      '@orm type "TEXT --x" is not a plain SQL type name with an optional size'
    )
    expect(reason(OrmComment.parse("@orm:type"))).toBe('@orm key "type" needs a value: type=VARCHAR(32)')
    expect(reason(OrmComment.forMessage(parsed("@orm:unique")))).toContain("belongs on a field")
  })

  it("tolerates spaces around entries and a trailing semicolon", () => {
    const comment = parsed("  @orm: column = nick_name ; sensitive ;")
    expect(comment.column).toBe("nick_name")
    expect(comment.sensitive).toBe(true)
  })

  it("treats other lines as documentation and reads @orm lines anywhere in the comment", () => {
    const comment = parsed(" The user's e-mail.\n Unique per tenant.\n @orm:column=mail\n")
    expect(comment.column).toBe("mail")
    expect(OrmComment.documentation(" The user's e-mail.\n @orm:column=mail\n")).toBe(" The user's e-mail.\n")
  })

  it("returns the empty annotation for a comment without @orm", () => {
    expect(parsed(" just a comment")).toEqual(OrmComment.empty)
    expect(parsed("")).toEqual(OrmComment.empty)
  })

  it("rejects unknown keys, naming the known ones", () => {
    expect(reason(OrmComment.parse("@orm:colum=x"))).toBe(
      'unknown @orm key "colum"; expected one of column, table, type, primary_key, auto_increment, ignore, sensitive, unique, index'
    )
  })

  it("rejects a missing value, a value on a flag, and names that are not identifiers", () => {
    expect(reason(OrmComment.parse("@orm:column="))).toBe('@orm key "column" needs a value: column=name')
    expect(reason(OrmComment.parse("@orm:table"))).toBe('@orm key "table" needs a value: table=name')
    expect(reason(OrmComment.parse("@orm:primary_key=true"))).toBe(
      '@orm key "primary_key" takes no value, got "primary_key=true"'
    )
    expect(reason(OrmComment.parse("@orm:column=last name"))).toContain(
      '"last name" is not a plain SQL identifier'
    )
    expect(reason(OrmComment.parse("@orm:column=a.b"))).toContain('"a.b" is not a plain SQL identifier')
    expect(reason(OrmComment.parse("@orm:table=1users"))).toContain('"1users" is not a plain SQL identifier')
  })

  it("rejects a key given twice, also across the leading and the trailing comment", () => {
    expect(reason(OrmComment.parse("@orm:sensitive;sensitive"))).toBe('@orm key "sensitive" given twice')
    expect(reason(OrmComment.parse(" @orm:column=a\n\n @orm:column=b"))).toBe('@orm key "column" given twice')
  })

  it("rejects a malformed marker and an empty annotation", () => {
    expect(reason(OrmComment.parse("@orm column=x"))).toBe(
      'malformed annotation "@orm column=x"; expected @orm:key=value;flag'
    )
    expect(reason(OrmComment.parse("@orm: ;"))).toBe("empty @orm: annotation")
  })

  it("rejects ignore combined with anything else", () => {
    expect(reason(OrmComment.parse("@orm:ignore;column=x;sensitive"))).toBe(
      "@orm ignore cannot be combined with column, sensitive: an ignored field has no column"
    )
  })
})

describe("OrmComment placement", () => {
  it("a message takes only a table", () => {
    expect(Either.isRight(OrmComment.forMessage(parsed("@orm:table=users")))).toBe(true)
    expect(reason(OrmComment.forMessage(parsed("@orm:table=users;primary_key;column=x")))).toBe(
      "@orm primary_key, column belongs on a field; a message takes only table=name"
    )
  })

  it("a field takes no table", () => {
    expect(Either.isRight(OrmComment.forField(parsed("@orm:column=x;primary_key")))).toBe(true)
    expect(reason(OrmComment.forField(parsed("@orm:table=x")))).toBe(
      "@orm table belongs on a message, not on a field"
    )
  })
})
