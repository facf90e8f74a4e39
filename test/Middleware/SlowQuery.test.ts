import { assert, describe, layer } from "@effect/vitest"
import { Duration, Effect, Fiber, TestClock } from "effect"
import * as Database from "../../src/Layers/Database.js"
import * as SlowQuery from "../../src/Middleware/SlowQuery.js"
import * as Executor from "../../src/Query/Executor.js"
import { captureLogs, delay, execute, session, statement } from "./support.js"

const database = Database.layer({ url: "sqlite::memory:" })

/** Runs one query that takes `duration` (on the TestClock) under SlowQuery. */
const timed = (duration: Duration.DurationInput, sql: string, options: SlowQuery.Options) =>
  Effect.gen(function* () {
    const s = yield* session
    const fiber = yield* Effect.fork(
      Effect.provide(
        Effect.either(execute(statement(s, sql, [], { table: "t" }))),
        Executor.layerMiddleware(SlowQuery.make(options), delay(duration))
      )
    )
    yield* TestClock.adjust(duration)
    return yield* Fiber.join(fiber)
  })

describe("SlowQuery", () => {
  layer(database)((it) => {
    it.effect("a query over the threshold is a warning with its SQL and duration; a quick one is not", () =>
      Effect.gen(function* () {
        const capture = captureLogs()
        yield* Effect.provide(
          Effect.all([
            timed("1500 millis", "SELECT 1 AS slow", { threshold: "1 second" }),
            timed("1 second", "SELECT 2 AS at_threshold", { threshold: "1 second" }),
            timed("10 millis", "SELECT 3 AS quick", { threshold: "1 second" })
          ]),
          capture.layer
        )
        assert.strictEqual(capture.lines.length, 1)
        const [line] = capture.lines
        assert.strictEqual(line?.level, "WARN")
        assert.strictEqual(line?.message, "Slow query (1s 500ms): SELECT 1 AS slow")
        assert.deepStrictEqual(line?.annotations, {
          "query.type": "RAW",
          "query.table": "t",
          "query.durationMillis": 1500,
          "query.thresholdMillis": 1000
        })
      })
    )

    it.effect("a failed slow query is reported too, to a custom reporter", () =>
      Effect.gen(function* () {
        const reports: Array<SlowQuery.Slow> = []
        const result = yield* timed("2 seconds", "SELECT * FROM missing_table", {
          threshold: "1 second",
          report: (slow) => Effect.sync(() => void reports.push(slow))
        })
        assert.strictEqual(result._tag, "Left")
        assert.strictEqual(reports.length, 1)
        assert.strictEqual(reports[0]?.sql, "SELECT * FROM missing_table")
        assert.isTrue(Duration.equals(reports[0]?.duration ?? Duration.zero, Duration.seconds(2)))
      })
    )
  })
})
