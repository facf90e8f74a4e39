import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as DeadLetter from "../../src/Cache/DeadLetter.js"

/** A temporary directory removed with the scope. */
const tempDir = Effect.acquireRelease(
  Effect.sync(() => mkdtempSync(join(tmpdir(), "effect-dal-letters-"))),
  (dir) => Effect.sync(() => rmSync(dir, { recursive: true, force: true }))
)

const letter = (cache: string, key: string, value?: string): DeadLetter.Letter => ({
  cache,
  key,
  op: value === undefined ? "delete" : "write",
  value,
  error: "refused",
  at: 1_700_000_000_000
})

describe("DeadLetter.makeFile", () => {
  it.scoped("reading a file that does not exist finds nothing and creates nothing", () =>
    Effect.gen(function* () {
      const file = join(yield* tempDir, "letters.sqlite")
      const letters = yield* DeadLetter.makeFile(file)
      assert.deepStrictEqual(yield* letters.list("users"), [])
      yield* letters.remove([1, 2])
      assert.isFalse(existsSync(file))
    })
  )

  it.scoped("letters are on disk once put returns, listed per cache in order, and removed by id", () =>
    Effect.gen(function* () {
      const file = join(yield* tempDir, "letters.sqlite")
      const writer = yield* DeadLetter.makeFile(file)
      const many = Array.from({ length: 1_200 }, (_, i) => letter("users", `u${i}`, `{"n":${i}}`))
      yield* writer.put([...many, letter("orders", "o1"), letter("users", "gone")])
      // A second handle on the same file sees them: they are in the file, not in memory.
      const reader = yield* DeadLetter.makeFile(file)
      const users = yield* reader.list("users")
      assert.strictEqual(users.length, 1_201)
      assert.deepStrictEqual(
        users.slice(0, 2).map((l) => [l.key, l.op, l.value]),
        [
          ["u0", "write", '{"n":0}'],
          ["u1", "write", '{"n":1}']
        ]
      )
      assert.deepStrictEqual(users.at(-1), { ...letter("users", "gone"), id: users.at(-1)?.id ?? -1 })
      assert.deepStrictEqual(
        (yield* reader.list("orders")).map((l) => [l.key, l.op]),
        [["o1", "delete"]]
      )
      yield* reader.remove(users.slice(0, 1_000).map((l) => l.id))
      assert.strictEqual((yield* writer.list("users")).length, 201)
    })
  )

  it.scoped("a file that cannot be opened is a storage error", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const letters = yield* DeadLetter.makeFile(join(dir, "missing", "dir", "letters.sqlite"))
      const error = yield* Effect.flip(letters.put([letter("users", "u")]))
      assert.strictEqual(error.reason, "storage")
    })
  )

  it.scoped("a corrupted file: put and list are storage errors, and the file is left as it was", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const file = join(dir, "letters.sqlite")
      const garbage = "this is not a SQLite database\n".repeat(200)
      writeFileSync(file, garbage)
      const letters = yield* DeadLetter.makeFile(file)
      assert.strictEqual((yield* Effect.flip(letters.put([letter("users", "u")]))).reason, "storage")
      assert.strictEqual((yield* Effect.flip(letters.list("users"))).reason, "storage")
      assert.strictEqual(readFileSync(file, "utf8"), garbage)
    })
  )
})
