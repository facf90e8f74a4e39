/**
 * Query metrics as Effect Metrics — a counter of queries and a histogram of their durations in
 * seconds, both tagged `type`, `table` and `outcome` — and a renderer of every Effect metric in the
 * Prometheus text exposition format (what an admin server serves at `/metrics`).
 *
 * `outcome` is `success`, `interrupted`, `defect`, or the failing error's tag (`DatabaseError`,
 * `QueryTimeoutError`, `UnsafeDmlError`, `QueryBuildError`): a small, fixed set of values.
 *
 * @since 0.1.0
 */
import {
  Cause,
  Duration,
  Effect,
  Exit,
  type Layer,
  Metric,
  MetricBoundaries,
  MetricLabel,
  MetricState,
  Option
} from "effect"
import type * as MetricPair from "effect/MetricPair"
import * as Executor from "../Query/Executor.js"
import * as Middleware from "./Middleware.js"

/** Every query, tagged `type`, `table`, `outcome`. @since 0.1.0 @category metrics */
export const queries = Metric.counter("effect_dal_queries_total", {
  description: "Queries run through the Executor",
  incremental: true
})

/** Query durations in seconds, tagged `type`, `table`, `outcome`. @since 0.1.0 @category metrics */
export const duration = Metric.histogram(
  "effect_dal_query_duration_seconds",
  MetricBoundaries.fromIterable([
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30
  ]),
  "Query durations in seconds"
)

/**
 * The `outcome` tag of an exit.
 *
 * @since 0.1.0 @category tags
 */
export const outcome = (exit: Middleware.Outcome["exit"]): string => {
  if (Exit.isSuccess(exit)) return "success"
  return Option.match(Cause.failureOption(exit.cause), {
    onNone: () => (Cause.isInterruptedOnly(exit.cause) ? "interrupted" : "defect"),
    onSome: (error) => error._tag
  })
}

/**
 * The tags a query's metrics carry, in the order the middleware applies them.
 *
 * @since 0.1.0 @category tags
 */
export const labels = (
  type: Executor.QueryType,
  table: string,
  outcomeTag: string
): ReadonlyArray<MetricLabel.MetricLabel> => [
  MetricLabel.make("type", type),
  MetricLabel.make("table", table),
  MetricLabel.make("outcome", outcomeTag)
]

/**
 * The metrics middleware: after each query, one count and one duration sample.
 *
 * @since 0.1.0 @category constructors
 */
export const make: Executor.Middleware = Middleware.observe(({ ctx, exit, duration: elapsed }) => {
  const tags = labels(ctx.type, ctx.table, outcome(exit))
  return Effect.zipRight(
    Metric.increment(Metric.taggedWithLabels(queries, tags)),
    Metric.update(Metric.taggedWithLabels(duration, tags), Duration.toSeconds(elapsed))
  )
})

/**
 * Wraps the Executor below in the metrics middleware.
 *
 * @since 0.1.0 @category layers
 */
export const layer: Layer.Layer<Executor.Executor, never, Executor.Executor> = Executor.layerMiddleware(make)

const metricName = (name: string) => {
  const cleaned = name.replace(/[^a-zA-Z0-9_:]/g, "_")
  return /^[0-9]/.test(cleaned) ? `_${cleaned}` : cleaned
}

const labelName = (name: string) => {
  const cleaned = name.replace(/[^a-zA-Z0-9_]/g, "_")
  return /^[0-9]/.test(cleaned) ? `_${cleaned}` : cleaned
}

const labelValue = (value: string) => value.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"')

const helpText = (text: string) => text.replace(/\\/g, "\\\\").replace(/\n/g, "\\n")

const number = (value: number | bigint): string => {
  if (typeof value === "bigint") return value.toString()
  if (Number.isNaN(value)) return "NaN"
  if (value === Number.POSITIVE_INFINITY) return "+Inf"
  if (value === Number.NEGATIVE_INFINITY) return "-Inf"
  return String(value)
}

const sample = (
  name: string,
  tags: ReadonlyArray<readonly [string, string]>,
  value: number | bigint
): string => {
  const rendered = tags.map(([k, v]) => `${labelName(k)}="${labelValue(v)}"`).join(",")
  return `${name}${rendered === "" ? "" : `{${rendered}}`} ${number(value)}`
}

const compare = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0)

type Rendered = { readonly type: string; readonly lines: ReadonlyArray<string> }

const renderPair = (name: string, pair: MetricPair.MetricPair.Untyped): Rendered | undefined => {
  const tags = pair.metricKey.tags.map((t) => [t.key, t.value] as const)
  const state: unknown = pair.metricState
  if (MetricState.isCounterState(state)) return { type: "counter", lines: [sample(name, tags, state.count)] }
  if (MetricState.isGaugeState(state)) return { type: "gauge", lines: [sample(name, tags, state.value)] }
  if (MetricState.isHistogramState(state)) {
    // Effect's buckets are already cumulative and end with the +Inf boundary.
    const buckets = state.buckets.map(([le, count]) =>
      sample(`${name}_bucket`, [...tags, ["le", number(le)]], count)
    )
    return {
      type: "histogram",
      lines: [...buckets, sample(`${name}_sum`, tags, state.sum), sample(`${name}_count`, tags, state.count)]
    }
  }
  if (MetricState.isSummaryState(state)) {
    const quantiles = state.quantiles.map(([q, value]) =>
      sample(
        name,
        [...tags, ["quantile", number(q)]],
        Option.getOrElse(value, () => Number.NaN)
      )
    )
    return {
      type: "summary",
      lines: [
        ...quantiles,
        sample(`${name}_sum`, tags, state.sum),
        sample(`${name}_count`, tags, state.count)
      ]
    }
  }
  if (MetricState.isFrequencyState(state)) {
    // Prometheus has no frequency type: one counter sample per observed value, labelled `key`.
    const lines = [...state.occurrences.entries()]
      .sort(([a], [b]) => compare(a, b))
      .map(([key, count]) => sample(name, [...tags, ["key", key]], count))
    return { type: "counter", lines }
  }
  return undefined
}

/**
 * Renders metric pairs in the Prometheus text format (version 0.0.4): one `# HELP`/`# TYPE` header
 * per metric name, then a sample per tag set. Names and label names are sanitised to Prometheus'
 * character set; label values and help text are escaped.
 *
 * @since 0.1.0 @category prometheus
 */
export const render = (pairs: ReadonlyArray<MetricPair.MetricPair.Untyped>): string => {
  const families = new Map<string, { help: string | undefined; type: string; lines: Array<string> }>()
  const tagKey = (pair: MetricPair.MetricPair.Untyped) =>
    pair.metricKey.tags.map((t) => `${t.key}=${t.value}`).join(",")
  // Sorted so the output is stable; a pair's own lines keep their order (buckets by increasing le).
  const sorted = [...pairs].sort(
    (a, b) => compare(a.metricKey.name, b.metricKey.name) || compare(tagKey(a), tagKey(b))
  )
  for (const pair of sorted) {
    const name = metricName(pair.metricKey.name)
    const rendered = renderPair(name, pair)
    if (rendered === undefined) continue
    const family = families.get(name)
    if (family === undefined) {
      families.set(name, {
        help: Option.getOrUndefined(pair.metricKey.description),
        type: rendered.type,
        lines: [...rendered.lines]
      })
    } else if (family.type === rendered.type) {
      family.lines.push(...rendered.lines)
    }
  }
  let out = ""
  for (const name of [...families.keys()].sort()) {
    const family = families.get(name)
    if (family === undefined) continue
    if (family.help !== undefined) out += `# HELP ${name} ${helpText(family.help)}\n`
    out += `# TYPE ${name} ${family.type}\n`
    for (const line of family.lines) out += `${line}\n`
  }
  return out
}

/**
 * Every metric Effect has recorded in this process, in the Prometheus text format.
 *
 * @since 0.1.0 @category prometheus
 */
export const prometheus: Effect.Effect<string> = Effect.map(Metric.snapshot, render)

/** The Content-Type of `prometheus`'s output. @since 0.1.0 @category prometheus */
export const contentType = "text/plain; version=0.0.4; charset=utf-8"
