/**
 * Tables from entities on SQLite, MariaDB and PostgreSQL: create → introspect → empty diff; a series
 * of entity changes, each diffed to the minimal list of steps, applied, diffed again to nothing, with
 * the rows still there; hostile names and defaults; the refusal of destructive steps.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import { describe, expect, layer } from "@effect/vitest"
import { BigDecimal, Effect, Schema } from "effect"
import * as MigrationError from "../../src/Migrations/MigrationError.js"
import * as Migrations from "../../src/Migrations/Migrations.js"
import type { DialectName } from "../../src/Query/Dialect.js"
import * as Insert from "../../src/Query/Insert.js"
import * as Raw from "../../src/Query/Raw.js"
import * as Select from "../../src/Query/Select.js"
import * as Entity from "../../src/Schema/Entity.js"
import { testDatabases, uniqueName } from "../support/databases.js"

const hostile = "it's a \\'; DROP TABLE x; -- \\\\ /* \" ` é"

const describeTables = (prefix: string, dialect: DialectName) => {
  const parents = uniqueName(`${prefix}_parent`)
  const children = uniqueName(`${prefix}_child`)
  class Parent extends Schema.Class<Parent>("Parent")(
    {
      id: Schema.Number.pipe(Entity.generated),
      code: Schema.String.pipe(Schema.maxLength(20), Entity.unique),
      name: Schema.String,
      score: Schema.Int,
      ratio: Schema.Number,
      // mysql2 and better-sqlite3 read BIGINT as a number: exact digits need a decimal or text column there.
      big: Schema.BigInt.pipe(Entity.columnType({ mysql: "DECIMAL(20,0)", sqlite: "TEXT" })),
      active: Schema.BooleanFromUnknown,
      price: Schema.BigDecimal,
      status: Schema.Literal("new", "done").pipe(Entity.default("new")),
      note: Schema.NullOr(Schema.String).pipe(Entity.default(hostile)),
      tags: Schema.parseJson(Schema.Array(Schema.String)),
      nick: Schema.optional(Schema.String.pipe(Schema.maxLength(30))),
      createdAt: Schema.String.pipe(Entity.defaultNow),
      // Read back as the driver gives it: ISO text on SQLite, a Date elsewhere.
      seenAt: (dialect === "sqlite" ? Schema.Date : Schema.DateFromSelf).pipe(Entity.defaultNow)
    },
    Entity.table(parents, {
      indexes: [Entity.index(["score", "ratio"]), Entity.index(["name", "code"], { unique: true })]
    })
  ) {}
  class Child extends Schema.Class<Child>("Child")(
    {
      id: Schema.Number.pipe(Entity.generated),
      parentId: Schema.Number.pipe(Entity.references(Parent, "id", { onDelete: "cascade" })),
      label: Schema.String.pipe(Entity.indexed),
      previousId: Schema.NullOr(Schema.Number).pipe(Entity.referencesSelf("id", { onDelete: "set null" }))
    },
    Entity.table(children)
  ) {}
  return { Parent, Child, parents, children }
}

/** Version 1 of a table that then changes. */
const evolving = (table: string) => {
  const base = {
    id: Schema.Number.pipe(Entity.generated),
    name: Schema.String.pipe(Schema.maxLength(50)),
    age: Schema.Int,
    city: Schema.NullOr(Schema.String)
  }
  class V1 extends Schema.Class<V1>("V1")(base, Entity.table(table)) {}
  return { base, V1 }
}

for (const db of testDatabases()) {
  describe.skipIf(!db.available)(`${db.label}: migrations`, () => {
    layer(db.layer, { timeout: "120 seconds" })((it) => {
      it.effect(
        "create from entities, introspect, and the diff is empty; foreign keys and indexes exist",
        () =>
          Effect.gen(function* () {
            const { Parent, Child, parents, children } = describeTables("mig", db.dialect)
            // Child first: createTables orders by foreign key.
            yield* Migrations.createTables([Child, Parent])
            expect(yield* Migrations.diff([Parent, Child])).toEqual([])
            // Again with ifNotExists: the tables and their indexes are left as they are.
            yield* Migrations.createTables([Child, Parent], { ifNotExists: true })
            const live = yield* Migrations.introspect
            const child = live.find((t) => t.name === children)
            expect(
              child?.foreignKeys.map((fk) => [fk.columns, fk.table, fk.references, fk.onDelete]).sort()
            ).toEqual(
              [
                [["parent_id"], parents, ["id"], "cascade"],
                [["previous_id"], children, ["id"], "set null"]
              ].sort()
            )
            const parent = live.find((t) => t.name === parents)
            expect(parent?.indexes.map((i) => [i.columns, i.unique]).sort()).toEqual(
              [
                [["code"], true],
                [["name", "code"], true],
                [["score", "ratio"], false]
              ].sort()
            )
            // The defaults arrive as written, the hostile one included.
            yield* Insert.into(Parent)
              .values(
                new Parent({
                  id: 0,
                  code: "p1",
                  name: "Ann",
                  score: 3,
                  ratio: 0.5,
                  big: 9007199254740993n,
                  active: true,
                  price: BigDecimal.unsafeFromString("12.345"),
                  status: "done",
                  note: null,
                  tags: ["a", "b"],
                  createdAt: "x",
                  seenAt: new Date(0)
                })
              )
              .columns("code", "name", "score", "ratio", "big", "active", "price", "tags")
              .exec()
            const [row] = yield* Raw.query(
              Schema.Struct({ status: Schema.String, note: Schema.NullOr(Schema.String) }),
              `SELECT status, note FROM ${parents}`
            ).getMulti()
            expect(row).toEqual({ status: "new", note: hostile })
            // The database's clock filled seenAt in a form the entity decodes (ISO text on SQLite).
            const stored = yield* Select.from(Parent).get()
            expect(stored.seenAt.getTime()).toBeGreaterThan(Date.UTC(2020, 0, 1))
            const sql = yield* SqlClient.SqlClient
            const [{ n }] = (yield* sql.unsafe(`SELECT COUNT(*) AS n FROM ${children}`)) as unknown as [
              { n: number }
            ]
            expect(Number(n)).toBe(0)
          })
      )

      it.effect("hostile table and column names are quoted, never spliced", () =>
        Effect.gen(function* () {
          const name = uniqueName(`odd"tab\`le`)
          class Odd extends Schema.Class<Odd>("Odd")(
            {
              id: Schema.Number.pipe(Entity.generated),
              value: Schema.String.pipe(Entity.column('va`l"ue; DROP'), Entity.indexed)
            },
            Entity.table(name)
          ) {}
          yield* Migrations.createTable(Odd)
          expect(yield* Migrations.diff([Odd])).toEqual([])
          yield* Insert.into(Odd)
            .values(new Odd({ id: 0, value: "v" }))
            .exec()
          expect((yield* Select.from(Odd).getMulti()).map((o) => o.value)).toEqual(["v"])
          yield* Migrations.dropTable(Odd)
          expect((yield* Migrations.introspect).some((t) => t.name === name)).toBe(false)
        })
      )

      it.effect(
        "each change is the minimal diff; applying it reaches an empty diff with the rows intact",
        () =>
          Effect.gen(function* () {
            const table = uniqueName("mig_evolve")
            const parentTable = uniqueName("mig_owner")
            const { base, V1 } = evolving(table)
            class Owner extends Schema.Class<Owner>("Owner")(
              { id: Schema.Number.pipe(Entity.generated), title: Schema.String },
              Entity.table(parentTable)
            ) {}
            yield* Migrations.createTables([V1, Owner])
            yield* Insert.into(V1)
              .values([
                new V1({ id: 0, name: "Ann", age: 30, city: null }),
                new V1({ id: 0, name: "Bob", age: 40, city: "Oslo" })
              ])
              .exec()
            yield* Insert.into(Owner)
              .values(new Owner({ id: 0, title: "o" }))
              .exec()

            const step = (entities: ReadonlyArray<Migrations.Entity>, allowDestructive = false) =>
              Effect.gen(function* () {
                const steps = yield* Migrations.diff(entities)
                yield* Migrations.apply(steps, { allowDestructive })
                expect(yield* Migrations.diff(entities)).toEqual([])
                return steps
              })
            const described = (
              steps: ReadonlyArray<{ description: string; destructive: string | undefined }>
            ) => steps.map((s) => `${s.destructive === undefined ? "safe" : "DESTRUCTIVE"}: ${s.description}`)
            const sqlite = db.dialect === "sqlite"

            // 1. Add a nullable column: safe everywhere.
            class V2 extends Schema.Class<V2>("V2")(
              { ...base, email: Schema.NullOr(Schema.String.pipe(Schema.maxLength(100))) },
              Entity.table(table)
            ) {}
            expect(described(yield* step([V2]))).toEqual([`safe: add column ${table}.email`])

            // 2. Rename by annotation: the data moves with it.
            class V3 extends Schema.Class<V3>("V3")(
              {
                ...base,
                mail: Schema.NullOr(Schema.String.pipe(Schema.maxLength(100))).pipe(
                  Entity.renamedFrom("email")
                )
              },
              Entity.table(table)
            ) {}
            expect(described(yield* step([V3]))).toEqual([`safe: rename column ${table}.email to mail`])

            // 3. Add an index, a unique column and a foreign key.
            class V4 extends Schema.Class<V4>("V4")(
              {
                ...base,
                name: base.name.pipe(Entity.indexed),
                mail: Schema.NullOr(Schema.String.pipe(Schema.maxLength(100))).pipe(Entity.unique),
                ownerId: Schema.NullOr(Schema.Number).pipe(
                  Entity.references(Owner, "id", { onDelete: "set null" })
                )
              },
              Entity.table(table)
            ) {}
            const v4 = described(yield* step([V4, Owner]))
            if (sqlite) {
              expect(v4.every((s) => s.startsWith("safe: "))).toBe(true)
              expect(v4.filter((s) => s.includes("rebuild"))).toHaveLength(4)
            } else {
              expect(v4).toEqual([
                `safe: add column ${table}.owner_id`,
                `safe: create index ix_${table}_name on ${table}`,
                `safe: create index uq_${table}_mail on ${table}`,
                `safe: add foreign key ${table}.fk_${table}_owner_id`
              ])
            }

            // 4. Widen a type (safe), then narrow it (destructive: refused until allowed).
            class V5 extends Schema.Class<V5>("V5")(
              { ...V4.fields, name: Schema.String.pipe(Schema.maxLength(80), Entity.indexed) },
              Entity.table(table)
            ) {}
            const widened = yield* step([V5, Owner])
            expect(widened.every((s) => s.destructive === undefined)).toBe(true)
            class V6 extends Schema.Class<V6>("V6")(
              { ...V4.fields, name: Schema.String.pipe(Schema.maxLength(10), Entity.indexed) },
              Entity.table(table)
            ) {}
            const narrowing = yield* Migrations.diff([V6, Owner])
            if (sqlite) {
              // SQLite declares every string TEXT (it enforces no length): there is nothing to narrow.
              expect(narrowing).toEqual([])
            } else {
              expect(described(narrowing)).toEqual([`DESTRUCTIVE: alter column ${table}.name`])
              expect(narrowing[0]?.destructive).toContain("may not hold every value")
              const refused = yield* Effect.flip(Migrations.apply(narrowing))
              expect(refused).toBeInstanceOf(MigrationError.DestructiveChangeError)
              yield* step([V6, Owner], true)
            }

            // 5. Nullable → NOT NULL on a table with rows is destructive; the NULL must go first.
            class V7 extends Schema.Class<V7>("V7")(
              { ...V6.fields, city: Schema.String },
              Entity.table(table)
            ) {}
            const notNull = yield* Migrations.diff([V7, Owner])
            expect(notNull.some((s) => s.destructive?.includes("NOT NULL on a table with rows"))).toBe(true)
            yield* Raw.sql`UPDATE ${Raw.identifier(table)} SET city = ${"none"} WHERE city IS NULL`.exec()
            yield* step([V7, Owner], true)
            // 6. and back: NOT NULL → nullable is safe.
            expect((yield* step([V6, Owner])).every((s) => s.destructive === undefined)).toBe(true)

            // 7. Drop a column: destructive, refused by sync, which applies nothing else.
            class V8 extends Schema.Class<V8>("V8")(
              { ...V6.fields, age: Schema.optional(Schema.Int).pipe(Entity.ignore) },
              Entity.table(table)
            ) {}
            const dropped = yield* Effect.flip(Migrations.sync([V8, Owner]))
            expect(dropped).toBeInstanceOf(MigrationError.DestructiveChangeError)
            expect(
              (dropped as MigrationError.DestructiveChangeError).steps.map((s) => s.destructive)
            ).toEqual(
              sqlite
                ? expect.arrayContaining([`${table}.age: its data is lost`])
                : [`${table}.age: its data is lost`]
            )
            yield* Migrations.sync([V8, Owner], { allowDestructive: true })
            expect(yield* Migrations.diff([V8, Owner])).toEqual([])

            const rows = yield* Select.from(V8).orderBy("id").getMulti()
            expect(rows.map((r) => [r.name, r.city, r.mail, r.ownerId])).toEqual([
              ["Ann", "none", null, null],
              ["Bob", "Oslo", null, null]
            ])
          })
      )

      it.effect(
        "refuses a destructive step and runs nothing; sync applies the safe steps of new entities",
        () =>
          Effect.gen(function* () {
            const { Parent, Child } = describeTables("mig_sync", db.dialect)
            const first = yield* Migrations.sync([Parent, Child])
            expect(first.map((s) => s.description)[0]).toMatch(/^create table /)
            expect(yield* Migrations.sync([Parent, Child])).toEqual([])
          })
      )
    })
  })
}
