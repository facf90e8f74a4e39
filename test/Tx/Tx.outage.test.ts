/**
 * A PostgreSQL server that goes away in the middle of a transaction and comes back: the transaction
 * fails with a typed, non-retryable error, nothing of it is kept, what was committed before is
 * still there, and the same Database layer serves transactions again once the server is back.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Cause, Deferred, Effect, Exit, Fiber, Schedule } from "effect"
import * as Database from "../../src/Layers/Database.js"
import { DatabaseError } from "../../src/Query/QueryError.js"
import * as Tx from "../../src/Tx/Tx.js"
import { TxError } from "../../src/Tx/TxError.js"
import { exec, query } from "./fixtures.js"
import { type PgServer, pgServerAvailable, startPgServer } from "./pgServer.js"

const available = pgServerAvailable()
if (!available) console.warn("\n!!! PostgreSQL binaries unavailable: the outage suite is SKIPPED !!!\n")

describe.skipIf(!available)("PostgreSQL outage during a transaction", () => {
  let server: PgServer | undefined
  beforeAll(async () => {
    server = await startPgServer()
  }, 60_000)
  afterAll(() => server?.stop())

  const names = Effect.map(query("SELECT name FROM outage ORDER BY name"), (rows) => rows.map((r) => r.name))

  const scenario = (pg: PgServer) =>
    Effect.gen(function* () {
      yield* exec("CREATE TABLE outage (name TEXT NOT NULL)")
      yield* exec("INSERT INTO outage (name) VALUES ('before')").pipe(Tx.run())

      const inserted = yield* Deferred.make<void>()
      const crashed = yield* Deferred.make<void>()
      const fiber = yield* Effect.fork(
        Effect.gen(function* () {
          yield* exec("INSERT INTO outage (name) VALUES ('during-a')")
          yield* Deferred.succeed(inserted, undefined)
          yield* Deferred.await(crashed)
          yield* exec("INSERT INTO outage (name) VALUES ('during-b')")
        }).pipe(Tx.run())
      )
      yield* Deferred.await(inserted)
      yield* Effect.sync(() => pg.crash())
      yield* Deferred.succeed(crashed, undefined)
      const exit = yield* Fiber.await(fiber)
      expect(Exit.isFailure(exit)).toBe(true)
      const error = Exit.isFailure(exit) ? Cause.squash(exit.cause) : undefined
      // The statement fails on the dead connection; the ROLLBACK then fails too: both are kept.
      expect(error).toBeInstanceOf(TxError)
      expect((error as TxError).reason).toBe("rollback")
      expect((error as TxError).rollbackCause).toBeInstanceOf(DatabaseError)
      // The outcome is certain (nothing committed), but running it again now would fail the same way.
      expect(Tx.isRetryable(error)).toBe(false)

      yield* Effect.sync(() => pg.start())
      // Pooled connections that died with the server are dropped; poll until one answers (15 s at most).
      yield* query("SELECT 1 AS one").pipe(
        Effect.retry({ schedule: Schedule.spaced("100 millis"), times: 150 })
      )
      expect(yield* names).toEqual(["before"])
      yield* exec("INSERT INTO outage (name) VALUES ('after')").pipe(Tx.run())
      expect(yield* names).toEqual(["after", "before"])
    })

  it.live(
    "the work fails typed, nothing of it is kept, committed work survives, the layer serves after restart",
    () =>
      Effect.suspend(() =>
        server === undefined
          ? Effect.dieMessage("the server did not start")
          : scenario(server).pipe(Effect.provide(Database.layer({ url: server.url, maxConnections: 2 })))
      ),
    60_000
  )
})
