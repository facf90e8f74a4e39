/**
 * ChangeCapture on every dialect: events for successful writes only, with the keys the statement
 * names; inside a transaction only after COMMIT, never after ROLLBACK (Tx from src/Tx).
 */
import * as SqlClient from "@effect/sql/SqlClient"
import { assert, describe, layer } from "@effect/vitest"
import { Chunk, Effect, Either, Layer, Queue, Schema } from "effect"
import * as Database from "../../src/Layers/Database.js"
import * as ChangeCapture from "../../src/Middleware/ChangeCapture.js"
import * as ChangeFeed from "../../src/Query/ChangeFeed.js"
import type { ExprNode } from "../../src/Query/Expr.js"
import * as Expr from "../../src/Query/Expr.js"
import * as Insert from "../../src/Query/Insert.js"
import * as Raw from "../../src/Query/Raw.js"
import * as Select from "../../src/Query/Select.js"
import * as Update from "../../src/Query/Update.js"
import * as Entity from "../../src/Schema/Entity.js"
import * as Tx from "../../src/Tx/Tx.js"
import { autoIdColumn, testDatabases, uniqueName } from "../support/databases.js"
import { session, statement } from "./support.js"

const tags = uniqueName("capture_tags")
const notes = uniqueName("capture_notes")

class Tag extends Schema.Class<Tag>("Tag")({ id: Schema.Number, name: Schema.String }, Entity.table(tags)) {}

class Note extends Schema.Class<Note>("Note")(
  { id: Schema.Number.pipe(Entity.generated), body: Schema.String },
  Entity.table(notes)
) {}

const insertTags = (rows: ReadonlyArray<{ id: number; name: string }>) =>
  Insert.into(Tag)
    .values(rows.map((r) => new Tag(r)))
    .exec()

const column = (field: string): ExprNode => ({ _tag: "Column", source: undefined, field })
const value = (v: unknown): ExprNode => ({ _tag: "Value", value: v })

/** Runs `effect` with a subscription open; returns its result and the events it caused. */
const capturing = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.scoped(
    Effect.gen(function* () {
      const queue = yield* ChangeFeed.subscribe
      const result = yield* Effect.either(effect)
      return { result, events: Chunk.toReadonlyArray(yield* Queue.takeAll(queue)) }
    })
  )

for (const db of testDatabases()) {
  const fixtures = Layer.scopedDiscard(
    Effect.acquireRelease(
      Effect.flatMap(SqlClient.SqlClient, (sql) =>
        Effect.zipRight(
          sql.unsafe(`CREATE TABLE ${tags} (id INT PRIMARY KEY, name VARCHAR(50) NOT NULL)`),
          sql.unsafe(`CREATE TABLE ${notes} (id ${autoIdColumn(db.dialect)}, body VARCHAR(50) NOT NULL)`)
        )
      ),
      () =>
        Effect.orDie(
          Effect.flatMap(SqlClient.SqlClient, (sql) =>
            Effect.zipRight(sql.unsafe(`DROP TABLE ${tags}`), sql.unsafe(`DROP TABLE ${notes}`))
          )
        )
    )
  )
  const stack = Layer.provideMerge(
    ChangeCapture.layer,
    Layer.provideMerge(ChangeFeed.layer, Layer.provideMerge(fixtures, db.layer))
  )

  describe.skipIf(!db.available)(`${db.label}: ChangeCapture`, () => {
    layer(stack, { timeout: "30 seconds" })((it) => {
      it.effect(
        "a successful INSERT outside a transaction publishes at once, with the keys its rows give",
        () =>
          Effect.gen(function* () {
            const s = yield* session
            const { events } = yield* capturing(
              insertTags([
                { id: 1, name: "a" },
                { id: 2, name: "b" }
              ])
            )
            assert.deepStrictEqual(events, [
              {
                database: s.label,
                table: tags,
                type: "INSERT",
                primaryKeys: [{ id: 1 }, { id: 2 }],
                rowsAffected: 2
              }
            ])
          })
      )

      it.effect("a one-row INSERT leaving its generated key to the database reports the id it gave", () =>
        Effect.gen(function* () {
          const { result, events } = yield* capturing(
            Insert.into(Note)
              .values(new Note({ id: 0, body: "x" }))
              .exec()
          )
          const id = Either.isRight(result) ? result.right.lastInsertId : undefined
          assert.isDefined(id)
          assert.deepStrictEqual(
            events.map((e) => e.primaryKeys),
            [[{ id: Number(id) }]]
          )
        })
      )

      it.effect("an UPDATE reports the keys its WHERE pins, or none when it pins none", () =>
        Effect.gen(function* () {
          yield* insertTags([
            { id: 10, name: "x" },
            { id: 11, name: "y" },
            { id: 12, name: "y" }
          ])
          const { events } = yield* capturing(
            Effect.zipRight(
              Update.table(Tag)
                .set({ name: "renamed" })
                .where((t) => Expr.and(t.id.in([10, 11]), t.name.neq("z")))
                .exec(),
              Update.table(Tag)
                .set({ name: "renamed" })
                .where((t) => t.name.eq("y"))
                .exec()
            )
          )
          assert.deepStrictEqual(
            events.map((e) => [e.type, e.primaryKeys, e.rowsAffected]),
            [
              ["UPDATE", [{ id: 10 }, { id: 11 }], 2],
              ["UPDATE", undefined, 1]
            ]
          )
        })
      )

      it.effect(
        "reads and failed writes publish nothing; a raw DELETE publishes its table, with or without an entity",
        () =>
          Effect.gen(function* () {
            const s = yield* session
            yield* insertTags([{ id: 40, name: "taken" }])
            const { events } = yield* capturing(
              Effect.all([
                Select.from(Tag).getMulti(),
                Effect.either(insertTags([{ id: 40, name: "duplicate" }])),
                Raw.query(`DELETE FROM ${tags} WHERE id = ?`, [998]).exec(),
                Raw.query(Tag, `DELETE FROM ${tags} WHERE id = ?`, [999]).exec()
              ])
            )
            assert.deepStrictEqual(events, [
              { database: s.label, table: tags, type: "DELETE", primaryKeys: undefined, rowsAffected: 0 },
              { database: s.label, table: tags, type: "DELETE", primaryKeys: undefined, rowsAffected: 0 }
            ])
          })
      )

      it.effect(
        "RAW writes behind comments, parentheses or a CTE publish their table; unnamed writes publish *",
        () =>
          Effect.gen(function* () {
            const s = yield* session
            const { events } = yield* capturing(
              Effect.all([
                Raw.query(`/* tag */ DELETE FROM ${tags} WHERE id = ?`, [997]).exec(),
                // MariaDB has no WITH before UPDATE; its own comment syntax instead.
                Raw.query(
                  db.dialect === "mysql"
                    ? `# note\n/*! UPDATE */ ${tags} SET name = name WHERE id = ?`
                    : `-- sqlcommenter\nWITH t AS (SELECT 1 AS one) UPDATE ${tags} SET name = name WHERE id = ?`,
                  [996]
                ).exec(),
                Raw.query(`SELECT 'DELETE FROM ${tags}' AS a`).getMulti(),
                Raw.query(`DROP TABLE IF EXISTS ${tags}_never_created`).exec()
              ])
            )
            assert.deepStrictEqual(
              events.map((e) => [e.database, e.table, e.type]),
              [
                [s.label, tags, "DELETE"],
                [s.label, tags, "UPDATE"],
                [s.label, "*", "UPDATE"]
              ]
            )
          })
      )

      it.effect("inside a transaction the event waits for COMMIT", () =>
        Effect.gen(function* () {
          const { result, events } = yield* capturing(
            Effect.scoped(
              Effect.gen(function* () {
                const queue = yield* ChangeFeed.subscribe
                return yield* Tx.run(
                  Effect.gen(function* () {
                    yield* insertTags([{ id: 20, name: "in tx" }])
                    // Still inside the transaction: nothing published yet.
                    return yield* Queue.size(queue)
                  })
                )
              })
            )
          )
          assert.deepStrictEqual(result, Either.right(0))
          assert.deepStrictEqual(
            events.map((e) => e.primaryKeys),
            [[{ id: 20 }]]
          )
        })
      )

      it.effect("a rolled-back transaction publishes nothing, nor does a rolled-back savepoint", () =>
        Effect.gen(function* () {
          const rolledBack = yield* capturing(
            Tx.run(Effect.zipRight(insertTags([{ id: 30, name: "gone" }]), Effect.fail("abort")))
          )
          assert.deepStrictEqual(rolledBack.result, Either.left("abort"))
          assert.deepStrictEqual(rolledBack.events, [])
          const partial = yield* capturing(
            Tx.run(
              Effect.gen(function* () {
                yield* insertTags([{ id: 31, name: "kept" }])
                yield* Effect.either(
                  Tx.run(Effect.zipRight(insertTags([{ id: 32, name: "undone" }]), Effect.fail("inner")), {
                    propagation: "nested"
                  })
                )
              })
            )
          )
          assert.deepStrictEqual(
            partial.events.map((e) => e.primaryKeys),
            [[{ id: 31 }]]
          )
          const sql = yield* SqlClient.SqlClient
          const ids = yield* sql.unsafe<{ id: number }>(
            `SELECT id FROM ${tags} WHERE id BETWEEN 30 AND 39 ORDER BY id`
          )
          assert.deepStrictEqual(
            ids.map((r) => Number(r.id)),
            [31]
          )
        })
      )
    })
  })
}

describe("ChangeCapture.eventsOf", () => {
  layer(Database.layer({ url: "sqlite::memory:" }))((it) => {
    it.effect("a DELETE whose WHERE pins every part of a composite key reports that key", () =>
      Effect.gen(function* () {
        const s = yield* session
        const Pair = Schema.Struct({
          a: Schema.Number.pipe(Entity.primaryKey),
          b: Schema.String.pipe(Entity.primaryKey)
        }).annotations({ identifier: "Pair" })
        const model = s.registry.get(Pair)
        if (Either.isLeft(model)) return assert.fail(model.left.message)
        const where: ExprNode = {
          _tag: "And",
          operands: [
            { _tag: "Binary", op: "=", left: value(1), right: column("a") },
            { _tag: "Binary", op: "=", left: column("b"), right: value("x") }
          ]
        }
        const ctx = statement(s, "DELETE FROM pair WHERE 1 = a AND b = ?", ["x"], {
          type: "DELETE",
          model: model.right,
          table: "pair",
          description: {
            _tag: "Delete",
            node: {
              _tag: "Delete",
              from: { _tag: "Table", schema: Pair, alias: undefined },
              where,
              returning: undefined
            }
          }
        })
        const [event] = ChangeCapture.eventsOf(ctx, {
          _tag: "Exec",
          rowsAffected: 1,
          lastInsertId: undefined,
          rows: []
        })
        assert.deepStrictEqual(event?.primaryKeys, [{ a: 1, b: "x" }])
      })
    )
  })
})
