import * as SqlClient from "@effect/sql/SqlClient"
import { assert, describe, it, layer } from "@effect/vitest"
import { Effect, Fiber, Layer, Metric, MetricBoundaries, Schema, TestClock } from "effect"
import * as Database from "../../src/Layers/Database.js"
import * as Metrics from "../../src/Middleware/Metrics.js"
import * as Executor from "../../src/Query/Executor.js"
import * as Select from "../../src/Query/Select.js"
import * as Entity from "../../src/Schema/Entity.js"
import { uniqueName } from "../support/databases.js"
import { delay, execute, session, statement } from "./support.js"

const table = uniqueName("metrics_items")

class Item extends Schema.Class<Item>("Item")({ id: Schema.Number }, Entity.table(table)) {}

const fixtures = Layer.effectDiscard(
  Effect.flatMap(SqlClient.SqlClient, (sql) => sql.unsafe(`CREATE TABLE ${table} (id INTEGER PRIMARY KEY)`))
)

const database = Layer.provideMerge(fixtures, Database.layer({ url: "sqlite::memory:" }))

const count = (type: Executor.QueryType, outcome: string) =>
  Metric.value(Metric.taggedWithLabels(Metrics.queries, Metrics.labels(type, table, outcome)))

const durations = (type: Executor.QueryType, outcome: string) =>
  Metric.value(Metric.taggedWithLabels(Metrics.duration, Metrics.labels(type, table, outcome)))

describe("Metrics", () => {
  layer(database)((it) => {
    it.effect("counts queries and records their durations, tagged by type, table and outcome", () =>
      Effect.gen(function* () {
        const s = yield* session
        const program = Effect.gen(function* () {
          yield* Select.from(Item).getMulti()
          yield* Select.from(Item).getMulti()
          yield* Effect.flip(execute(statement(s, "SELECT * FROM nowhere", [], { type: "SELECT", table })))
        })
        const fiber = yield* Effect.fork(
          Effect.provide(program, Executor.layerMiddleware(Metrics.make, delay("30 millis")))
        )
        yield* TestClock.adjust("1 second")
        yield* Fiber.join(fiber)
        assert.strictEqual((yield* count("SELECT", "success")).count, 2)
        assert.strictEqual((yield* count("SELECT", "DatabaseError")).count, 1)
        const histogram = yield* durations("SELECT", "success")
        assert.strictEqual(histogram.count, 2)
        assert.closeTo(histogram.sum, 0.06, 1e-9)
        // 30 ms falls in the 0.05 s bucket, not the 0.025 s one.
        assert.deepStrictEqual(
          histogram.buckets.filter(([le]) => le === 0.025 || le === 0.05),
          [
            [0.025, 0],
            [0.05, 2]
          ]
        )
      })
    )

    it.effect("prometheus renders the query metrics from Effect's registry", () =>
      Effect.gen(function* () {
        yield* Executor.withMiddleware(Metrics.make)(Select.from(Item).getMulti())
        const text = yield* Metrics.prometheus
        const n = (yield* count("SELECT", "success")).count
        assert.isAtLeast(n, 1)
        assert.include(text, "# TYPE effect_dal_queries_total counter\n")
        assert.include(
          text,
          `effect_dal_queries_total{type="SELECT",table="${table}",outcome="success"} ${n}\n`
        )
        assert.include(text, "# TYPE effect_dal_query_duration_seconds histogram\n")
        assert.include(
          text,
          `effect_dal_query_duration_seconds_bucket{type="SELECT",table="${table}",outcome="success",le="+Inf"} ${n}\n`
        )
      })
    )
  })
})

describe("Metrics.render", () => {
  it.effect("writes each kind of metric in the Prometheus text format", () =>
    Effect.gen(function* () {
      const prefix = uniqueName("render")
      const counter = Metric.counter(`${prefix}.requests`, { description: "Requests\nserved" })
      const gauge = Metric.gauge(`${prefix}_depth`)
      const histogram = Metric.histogram(`${prefix}_latency`, MetricBoundaries.fromIterable([1, 5]))
      const frequency = Metric.frequency(`${prefix}_codes`)
      const summary = Metric.summary({
        name: `${prefix}_size`,
        maxAge: "1 hour",
        maxSize: 10,
        error: 0,
        quantiles: [0.5]
      })
      yield* Metric.incrementBy(Metric.tagged(counter, "path", 'a "quoted" \\ path'), 3)
      yield* Metric.set(gauge, 7)
      yield* Metric.update(histogram, 0.5)
      yield* Metric.update(histogram, 3)
      yield* Metric.update(histogram, 9)
      yield* Metric.update(frequency, "200")
      yield* Metric.update(frequency, "200")
      yield* Metric.update(frequency, "404")
      yield* Metric.update(summary, 4)
      const pairs = (yield* Metric.snapshot).filter((p) => p.metricKey.name.startsWith(prefix))
      assert.strictEqual(
        Metrics.render(pairs),
        [
          `# TYPE ${prefix}_codes counter`,
          `${prefix}_codes{key="200"} 2`,
          `${prefix}_codes{key="404"} 1`,
          `# TYPE ${prefix}_depth gauge`,
          `${prefix}_depth 7`,
          `# TYPE ${prefix}_latency histogram`,
          `${prefix}_latency_bucket{le="1"} 1`,
          `${prefix}_latency_bucket{le="5"} 2`,
          `${prefix}_latency_bucket{le="+Inf"} 3`,
          `${prefix}_latency_sum 12.5`,
          `${prefix}_latency_count 3`,
          `# HELP ${prefix}_requests Requests\\nserved`,
          `# TYPE ${prefix}_requests counter`,
          `${prefix}_requests{path="a \\"quoted\\" \\\\ path"} 3`,
          `# TYPE ${prefix}_size summary`,
          `${prefix}_size{quantile="0.5"} 4`,
          `${prefix}_size_sum 4`,
          `${prefix}_size_count 1`,
          ""
        ].join("\n")
      )
    })
  )
})
