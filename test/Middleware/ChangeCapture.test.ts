/**
 * ChangeCapture on every dialect: events for successful writes only, with the keys the statement
 * names; inside a transaction only after COMMIT, never after ROLLBACK (Tx from src/Tx).
 */
import * as SqlClient from "@effect/sql/SqlClient"
import { assert, describe, layer } from "@effect/vitest"
import { Chunk, Effect, Either, Layer, Option, Queue, Schema } from "effect"
import * as Database from "../../src/Layers/Database.js"
import * as ChangeCapture from "../../src/Middleware/ChangeCapture.js"
import type { DeleteNode, InsertNode, UpdateNode } from "../../src/Query/Ast.js"
import * as ChangeFeed from "../../src/Query/ChangeFeed.js"
import type * as Executor from "../../src/Query/Executor.js"
import type { ExprNode } from "../../src/Query/Expr.js"
import type { Session } from "../../src/Query/Session.js"
import * as Entity from "../../src/Schema/Entity.js"
import * as Tx from "../../src/Tx/Tx.js"
import { autoIdColumn, testDatabases, uniqueName } from "../support/databases.js"
import { execute, session, statement } from "./support.js"

const tags = uniqueName("capture_tags")
const notes = uniqueName("capture_notes")

class Tag extends Schema.Class<Tag>("Tag")({ id: Schema.Number, name: Schema.String }, Entity.table(tags)) {}

class Note extends Schema.Class<Note>("Note")(
  { id: Schema.Number.pipe(Entity.generated), body: Schema.String },
  Entity.table(notes)
) {}

const column = (field: string): ExprNode => ({ _tag: "Column", source: undefined, field })
const value = (v: unknown): ExprNode => ({ _tag: "Value", value: v })
const tagSource = { _tag: "Table", schema: Tag, alias: undefined } as const

/** SQL with `?` written for the session's dialect. */
const dialectSql = (s: Session, sql: string) => {
  let n = 0
  return sql.replace(/\?/g, () => s.dialect.placeholder(++n))
}

const modelOf = <A, I>(s: Session, schema: Schema.Schema<A, I, never>) => {
  const model = s.registry.get(schema)
  if (Either.isLeft(model)) throw model.left
  return model.right
}

/** A write as its builder would hand it over: SQL, parameters, the entity and the node. */
const write = (
  s: Session,
  type: "INSERT" | "UPDATE" | "DELETE",
  sql: string,
  params: ReadonlyArray<unknown>,
  node: InsertNode | UpdateNode | DeleteNode
): Executor.QueryContext =>
  statement(s, dialectSql(s, sql), params, { type, model: modelOf(s, Tag), table: tags, builder: node })

const insertTags = (s: Session, rows: ReadonlyArray<{ id: number; name: string }>) =>
  write(
    s,
    "INSERT",
    `INSERT INTO ${tags} (id, name) VALUES ${rows.map(() => "(?, ?)").join(", ")}`,
    rows.flatMap((r) => [r.id, r.name]),
    { _tag: "Insert", into: tagSource, rows, columns: undefined, onConflict: undefined, returning: undefined }
  )

const renameWhere = (s: Session, where: ExprNode, sql: string, params: ReadonlyArray<unknown>) =>
  write(s, "UPDATE", `UPDATE ${tags} SET name = ? WHERE ${sql}`, ["renamed", ...params], {
    _tag: "Update",
    table: tagSource,
    set: [{ field: "name", value: value("renamed") }],
    where,
    returning: undefined
  })

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
              execute(
                insertTags(s, [
                  { id: 1, name: "a" },
                  { id: 2, name: "b" }
                ])
              )
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
          const s = yield* session
          const returning = db.dialect === "pg" ? " RETURNING id" : ""
          const ctx = statement(
            s,
            dialectSql(s, `INSERT INTO ${notes} (body) VALUES (?)${returning}`),
            ["x"],
            {
              type: "INSERT",
              model: modelOf(s, Note),
              table: notes,
              expects: "exec",
              // The Insert builder's node: a zero id means "let the database choose".
              builder: {
                _tag: "Insert",
                into: { _tag: "Table", schema: Note, alias: undefined },
                rows: [{ id: 0, body: "x" }],
                columns: undefined,
                onConflict: undefined,
                returning: db.dialect === "pg" ? ["id"] : undefined
              } satisfies InsertNode
            }
          )
          const { events } = yield* capturing(execute(ctx))
          const sql = yield* SqlClient.SqlClient
          const [row] = yield* sql.unsafe<{ id: number }>(`SELECT id FROM ${notes} WHERE body = 'x'`)
          assert.deepStrictEqual(
            events.map((e) => e.primaryKeys),
            [[{ id: Number(row?.id) }]]
          )
        })
      )

      it.effect("an UPDATE reports the keys its WHERE pins, or none when it pins none", () =>
        Effect.gen(function* () {
          const s = yield* session
          yield* execute(
            insertTags(s, [
              { id: 10, name: "x" },
              { id: 11, name: "y" },
              { id: 12, name: "y" }
            ])
          )
          const byIds: ExprNode = {
            _tag: "And",
            operands: [
              { _tag: "In", negated: false, operand: column("id"), values: [value(10), value(11)] },
              { _tag: "Binary", op: "<>", left: column("name"), right: value("z") }
            ]
          }
          const byName: ExprNode = { _tag: "Binary", op: "=", left: column("name"), right: value("y") }
          const { events } = yield* capturing(
            Effect.zipRight(
              execute(renameWhere(s, byIds, "id IN (?, ?) AND name <> ?", [10, 11, "z"])),
              execute(renameWhere(s, byName, "name = ?", ["y"]))
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
        "reads, failed writes and raw statements without a table publish nothing; a raw DELETE on a table does",
        () =>
          Effect.gen(function* () {
            const s = yield* session
            yield* execute(insertTags(s, [{ id: 40, name: "taken" }]))
            const rawDelete = statement(s, dialectSql(s, `DELETE FROM ${tags} WHERE id = ?`), [999], {
              table: tags
            })
            const { events } = yield* capturing(
              Effect.all([
                execute(statement(s, `SELECT * FROM ${tags}`, [], { type: "SELECT", table: tags })),
                Effect.either(execute(insertTags(s, [{ id: 40, name: "duplicate" }]))),
                execute(statement(s, dialectSql(s, `DELETE FROM ${tags} WHERE id = ?`), [998])),
                execute(rawDelete)
              ])
            )
            assert.deepStrictEqual(events, [
              { database: s.label, table: tags, type: "DELETE", primaryKeys: undefined, rowsAffected: 0 }
            ])
          })
      )

      it.effect("inside a transaction the event waits for COMMIT", () =>
        Effect.gen(function* () {
          const s = yield* session
          const { result, events } = yield* capturing(
            Effect.scoped(
              Effect.gen(function* () {
                const queue = yield* ChangeFeed.subscribe
                return yield* Tx.run(
                  Effect.gen(function* () {
                    yield* execute(insertTags(s, [{ id: 20, name: "in tx" }]))
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
          const s = yield* session
          const rolledBack = yield* capturing(
            Tx.run(Effect.zipRight(execute(insertTags(s, [{ id: 30, name: "gone" }])), Effect.fail("abort")))
          )
          assert.deepStrictEqual(rolledBack.result, Either.left("abort"))
          assert.deepStrictEqual(rolledBack.events, [])
          const partial = yield* capturing(
            Tx.run(
              Effect.gen(function* () {
                yield* execute(insertTags(s, [{ id: 31, name: "kept" }]))
                yield* Effect.either(
                  Tx.run(
                    Effect.zipRight(
                      execute(insertTags(s, [{ id: 32, name: "undone" }])),
                      Effect.fail("inner")
                    ),
                    {
                      propagation: "nested"
                    }
                  )
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

describe("ChangeCapture.eventOf", () => {
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
          builder: { _tag: "Delete", where }
        })
        const event = ChangeCapture.eventOf(ctx, {
          _tag: "Exec",
          rowsAffected: 1,
          lastInsertId: undefined,
          rows: []
        })
        assert.deepStrictEqual(
          Option.map(event, (e) => e.primaryKeys),
          Option.some([{ a: 1, b: "x" }])
        )
      })
    )
  })
})
