import { describe, expect, it } from "@effect/vitest"
import * as Layout from "../../packages/protoc-gen-effect-dal/src/Layout.js"

const pipe = (head: Layout.Doc, annotations: ReadonlyArray<string>) =>
  Layout.call([head, ".pipe"], annotations)

describe("Layout.render", () => {
  it("keeps a call on one line when it fits, counting the text that follows up to the next line", () => {
    const doc = ["x: ", pipe("S.String", ["E.column(1)", "E.pk"]), ","]
    expect(Layout.render(doc, 36)).toBe("x: S.String.pipe(E.column(1), E.pk),")
    expect(Layout.render(doc, 35)).toBe("x: S.String.pipe(\n  E.column(1),\n  E.pk\n),")
  })

  it("breaks the outermost group first and keeps inner groups flat when they fit", () => {
    const doc = pipe(Layout.call("$Optional", ["Address"]), ["E.column(1)", "E.sensitive"])
    expect(Layout.render(doc, 30)).toBe("$Optional(Address).pipe(\n  E.column(1),\n  E.sensitive\n)")
  })

  it("breaks an earlier call when even its opening does not fit", () => {
    const doc = pipe(Layout.call("$Optional", ["SomeLongType"]), ["E.c"])
    expect(Layout.render(doc, 12)).toBe("$Optional(\n  SomeLongType\n).pipe(E.c)")
  })

  it("moves an assignment's right side to the next line only when its first line does not fit", () => {
    const right = Layout.call("f", ["a", "b"])
    expect(Layout.render(Layout.assignment("key", ":", right), 20)).toBe("key: f(a, b)")
    expect(Layout.render(Layout.assignment("longerKey", ":", right), 14)).toBe("longerKey: f(\n  a,\n  b\n)")
    expect(Layout.render(Layout.assignment("longerKey", ":", right), 11)).toBe("longerKey:\n  f(a, b)")
    expect(Layout.render(Layout.assignment("longerKey", ":", right), 4)).toBe(
      "longerKey:\n  f(\n    a,\n    b\n  )"
    )
  })

  it("a hard line breaks every enclosing group", () => {
    const doc = Layout.call("C", [Layout.objectLines(["a: 1", "b: 2"]), "t"])
    expect(Layout.render(doc, 80)).toBe("C(\n  {\n    a: 1,\n    b: 2\n  },\n  t\n)")
    expect(Layout.render(Layout.call("C", [Layout.objectLines([]), "t"]), 80)).toBe("C({}, t)")
  })

  it("indents multi-line text and leaves no trailing spaces on blank lines", () => {
    const doc = Layout.objectLines([[Layout.lines("/**\n * doc\n */"), Layout.hardline, "a: 1"]])
    expect(Layout.render(doc, 80)).toBe("{\n  /**\n   * doc\n   */\n  a: 1\n}")
    expect(Layout.render(["a", Layout.indent([Layout.hardline, Layout.hardline, "b"])], 80)).toBe("a\n\n  b")
  })
})
