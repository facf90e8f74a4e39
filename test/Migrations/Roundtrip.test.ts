/**
 * Property: for random entity shapes, the table created from the entity stores every valid value
 * of every field and gives it back unchanged, on SQLite, MariaDB and PostgreSQL.
 */
import { describe, expect, layer } from "@effect/vitest"
import { Effect, Runtime, Schema } from "effect"
import * as fc from "fast-check"
import * as Migrations from "../../src/Migrations/Migrations.js"
import type { DialectName } from "../../src/Query/Dialect.js"
import type { Executor } from "../../src/Query/Executor.js"
import * as Insert from "../../src/Query/Insert.js"
import * as Select from "../../src/Query/Select.js"
import * as Entity from "../../src/Schema/Entity.js"
import { testDatabases, uniqueName } from "../support/databases.js"

/** A field kind: its schema and the values it accepts. */
interface Kind {
  readonly schema: Schema.Schema.Any | Schema.PropertySignature.All
  readonly values: fc.Arbitrary<unknown>
}

const text = fc.string({ maxLength: 40, unit: "binary" }).filter((s) => !s.includes("\0"))

const kinds: ReadonlyArray<fc.Arbitrary<Kind>> = [
  fc.integer({ min: 1, max: 60 }).map((n) => ({
    schema: Schema.String.pipe(Schema.maxLength(n)),
    // Schema.maxLength counts UTF-16 code units, the databases count characters: a valid value fits both.
    values: fc.string({ maxLength: n, unit: "grapheme" }).filter((s) => s.length <= n && !s.includes("\0"))
  })),
  fc.constant({ schema: Schema.String, values: text }),
  fc.constant({ schema: Schema.Int, values: fc.integer({ min: -2_147_483_648, max: 2_147_483_647 }) }),
  fc.constant({
    schema: Schema.Number,
    values: fc.double({ noNaN: true, noDefaultInfinity: true }).map((d) => (Object.is(d, -0) ? 0 : d))
  }),
  fc.constant({ schema: Schema.BooleanFromUnknown, values: fc.boolean() }),
  fc.uniqueArray(fc.stringMatching(/^[a-z]{1,8}$/), { minLength: 1, maxLength: 4 }).map((values) => ({
    schema: Schema.Literal(...(values as [string, ...Array<string>])),
    values: fc.constantFrom(...values)
  })),
  fc.constant({ schema: Schema.NullOr(Schema.String), values: fc.option(text, { nil: null }) }),
  fc.constant({ schema: Schema.NullOr(Schema.Int), values: fc.option(fc.integer(), { nil: null }) }),
  fc.constant({ schema: Schema.optional(Schema.String), values: fc.option(text, { nil: undefined }) })
]

/** Millisecond dates: ISO text on SQLite (`Schema.Date`), the driver's `Date` on the others (`DateFromSelf`). */
const dates = (dialect: DialectName): fc.Arbitrary<Kind> =>
  fc.constant({
    schema: dialect === "sqlite" ? Schema.Date : Schema.DateFromSelf,
    values: fc.date({
      min: new Date("1970-01-02T00:00:00Z"),
      max: new Date("2100-01-01T00:00:00Z"),
      noInvalidDate: true
    })
  })

const shapes = (dialect: DialectName) =>
  fc.array(fc.oneof(...kinds, dates(dialect)), { minLength: 1, maxLength: 6 })

for (const db of testDatabases()) {
  describe.skipIf(!db.available)(`${db.label}: random entities round-trip through their tables`, () => {
    layer(db.layer, { timeout: "300 seconds" })((it) => {
      it.effect("create → insert random valid values → select → equal", () =>
        Effect.gen(function* () {
          const runtime = yield* Effect.runtime<Executor>()
          const run = Runtime.runPromise(runtime)
          const property = fc.asyncProperty(
            shapes(db.dialect).chain((fields) =>
              fc.tuple(
                fc.constant(fields),
                fc.array(fc.tuple(...fields.map((f) => f.values)), { minLength: 1, maxLength: 5 })
              )
            ),
            async ([fields, rows]) => {
              const table = uniqueName("prop")
              const schema = Schema.Struct({
                id: Schema.Number.pipe(Entity.generated),
                ...Object.fromEntries(fields.map((f, i) => [`f${i}`, f.schema]))
              }).annotations({ [Entity.TableId]: table })
              const values = rows.map((row, n) => ({
                id: n + 1,
                ...Object.fromEntries(row.flatMap((v, i) => (v === undefined ? [] : [[`f${i}`, v] as const])))
              }))
              await run(
                Effect.gen(function* () {
                  yield* Migrations.createTable(schema)
                  yield* Insert.into(schema).values(values).exec()
                  const back = yield* Select.from(schema).orderBy("id").getMulti()
                  expect(back).toEqual(values)
                }).pipe(Effect.ensuring(Effect.orDie(Migrations.dropTable(schema))))
              )
            }
          )
          yield* Effect.promise(() => fc.assert(property, { numRuns: db.dialect === "sqlite" ? 60 : 25 }))
        })
      )
    })
  })
}
