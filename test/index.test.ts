/**
 * The README's examples, through the public barrel (`src/index.ts`). The first one runs as written
 * (only its database file moved to a fresh temporary one), so it proves it works on an empty database.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { describe, expect, it, vi } from "@effect/vitest"
import { Effect, Layer, Schema } from "effect"
import {
  Database,
  Delete,
  Entity,
  Executor,
  Expr,
  Insert,
  Metrics,
  Migrations,
  SafeDml,
  Select,
  Tx,
  Update
} from "../src/index.js"

class User extends Schema.Class<User>("User")(
  {
    id: Schema.Number.pipe(Entity.generated),
    firstName: Schema.String.pipe(Schema.maxLength(100)),
    email: Schema.String.pipe(Entity.sensitive, Entity.unique),
    age: Schema.Int
  },
  Entity.table("users")
) {}

const DatabaseLive = Layer.provide(
  Executor.layerMiddleware(Metrics.make, SafeDml.make),
  Database.layer({ url: "sqlite::memory:" })
)

const createTable = Migrations.createTable(User)

/**
 * The first ```ts block of the README with its database file replaced by `url`, and an export of the
 * promise it runs so the test can wait for it.
 */
const firstExample = (url: string): string => {
  const readme = readFileSync(new URL("../README.md", import.meta.url), "utf8")
  const block = readme.match(/```ts\n([\s\S]*?)```/)?.[1]
  const written = 'Database.layer({ url: "sqlite:data/app.db" })'
  const run = "\nEffect.runPromise("
  if (block === undefined || !block.includes(written) || !block.includes(run)) {
    throw new Error("the README's first example changed shape: update this test")
  }
  return block
    .replace(written, `Database.layer({ url: ${JSON.stringify(url)} })`)
    .replace(run, "\nexport const done = Effect.runPromise(")
}

describe("the README's examples", () => {
  it("first screen, as written, on an empty database file (twice: the second run finds the table)", async () => {
    // Inside the package (git-ignored .tmp/), so `import ... from "effect-dal"` resolves to this package.
    const dir = new URL("../.tmp/readme/", import.meta.url).pathname
    mkdirSync(dir, { recursive: true })
    const dataDir = mkdtempSync(join(tmpdir(), "effect-dal-readme-"))
    const file = join(dir, `first-${process.pid}.ts`)
    try {
      writeFileSync(file, firstExample(`sqlite:${join(dataDir, "app.db")}`))
      const log = vi.spyOn(console, "log").mockImplementation(() => undefined)
      const rows: Array<ReadonlyArray<User>> = []
      try {
        for (const run of [1, 2]) {
          const module = (await import(/* @vite-ignore */ `${file}?run=${run}`)) as { done: Promise<void> }
          await module.done
          rows.push(log.mock.calls.at(-1)?.[0] as ReadonlyArray<User>)
        }
      } finally {
        log.mockRestore()
      }
      expect(rows.map((r) => r.map((u) => [u.firstName, u.email, u.age]))).toEqual([
        [["Ann", "ann@example.com", 30]],
        [["Ann", "ann@example.com", 30]]
      ])
    } finally {
      rmSync(dataDir, { recursive: true, force: true })
      rmSync(file, { force: true })
    }
  })

  it.effect("first screen: the adults query", () =>
    Effect.gen(function* () {
      yield* createTable
      yield* Insert.into(User)
        .values([
          new User({ id: 0, firstName: "Ann", email: "ann@example.com", age: 30 }),
          new User({ id: 0, firstName: "Bob", email: "bob@example.com", age: 12 }),
          new User({ id: 0, firstName: "Cid", email: "cid@elsewhere.org", age: 50 }),
          new User({ id: 0, firstName: "Dee", email: "dee@example.com", age: 70 })
        ])
        .exec()
      const adults = yield* Select.from(User)
        .where((u) => Expr.and(u.age.gte(18), u.email.like("%@example.com")))
        .orderBy("age", "desc")
        .limit(10)
        .getMulti()
      expect(adults.map((u) => u.firstName)).toEqual(["Dee", "Ann"])
    }).pipe(Effect.provide(DatabaseLive))
  )

  it.effect(
    "the tour: insert, a transaction, a grouped projection, and SafeDml refusing a DELETE without WHERE",
    () =>
      Effect.gen(function* () {
        yield* createTable
        const { lastInsertId } = yield* Insert.into(User)
          .values(new User({ id: 0, firstName: "Ann", email: "a@x.io", age: 30 }))
          .exec()
        yield* Insert.into(User)
          .values([
            new User({ id: 0, firstName: "Bob", email: "b@x.io", age: 31 }),
            new User({ id: 0, firstName: "Old", email: "o@x.io", age: 121 })
          ])
          .exec()
        yield* Tx.run(
          Effect.gen(function* () {
            yield* Update.table(User)
              .set((u) => ({ age: u.age.add(1) }))
              .where((u) => u.id.eq(Number(lastInsertId)))
              .exec()
            yield* Delete.from(User)
              .where((u) => u.age.gt(120))
              .exec()
          })
        )
        const groups = yield* Select.from(User)
          .select(
            (u) => ({ age: u.age, n: Expr.count() }),
            Schema.Struct({ age: Schema.Number, n: Schema.Number })
          )
          .groupBy("age")
          .having(Expr.count().gt(1))
          .getMulti()
        expect(groups).toEqual([{ age: 31, n: 2 }])
        const refused = yield* Effect.flip(Delete.from(User).exec())
        expect(refused).toMatchObject({ _tag: "UnsafeDmlError", type: "DELETE" })
        expect(yield* Select.from(User).getMulti()).toHaveLength(2)
      }).pipe(Effect.provide(DatabaseLive))
  )
})
