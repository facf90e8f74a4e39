/**
 * Test instruments for middleware: statements built by hand, a recording middleware that stands for
 * "reached the database", a capturing Logger, a recording Tracer and a delaying middleware.
 */
import {
  type Context,
  type Duration,
  Effect,
  type Exit,
  HashMap,
  Layer,
  Logger,
  LogLevel,
  Option,
  Ref,
  Tracer
} from "effect"
import { describeRaw } from "../../src/Query/Description.js"
import { Executor, type Middleware, type QueryContext } from "../../src/Query/Executor.js"
import type { Session } from "../../src/Query/Session.js"

/** A statement the way a builder would hand it to the Executor. */
export const statement = (
  session: Session,
  sql: string,
  params: ReadonlyArray<unknown> = [],
  extra: Partial<Omit<QueryContext, "session" | "statement">> = {}
): QueryContext => ({
  type: "RAW",
  model: undefined,
  table: "",
  description: describeRaw(sql, session.dialect),
  expects: /^\s*SELECT\b/i.test(sql) ? "rows" : "exec",
  ...extra,
  statement: { sql, params },
  session
})

/** Runs `ctx` through the Executor in context (and so through its middleware). */
export const execute = (ctx: QueryContext) => Effect.flatMap(Executor, (ex) => ex.execute(ctx))

/** The session of the Executor in context. */
export const session = Effect.map(Executor, (ex) => ex.session)

/** A middleware that records the SQL of every statement passing through it. */
export const recorder = Effect.map(Ref.make<ReadonlyArray<string>>([]), (seen) => ({
  middleware: ((next) => (ctx) =>
    Effect.zipRight(
      Ref.update(seen, (all) => [...all, ctx.statement.sql]),
      next(ctx)
    )) satisfies Middleware as Middleware,
  seen: Ref.get(seen)
}))

export interface LogLine {
  readonly level: string
  readonly message: string
  readonly annotations: Readonly<Record<string, unknown>>
}

/** A Logger that keeps every line; provide `layer` and read `lines`. */
export const captureLogs = () => {
  const lines: Array<LogLine> = []
  const logger = Logger.make(({ logLevel, message, annotations }) => {
    lines.push({
      level: logLevel.label,
      message: Array.isArray(message) ? message.map(String).join(" ") : String(message),
      annotations: Object.fromEntries(HashMap.toEntries(annotations))
    })
  })
  return {
    lines,
    layer: Layer.merge(Logger.replace(Logger.defaultLogger, logger), Logger.minimumLogLevel(LogLevel.All))
  }
}

export class RecordedSpan implements Tracer.Span {
  readonly _tag = "Span"
  readonly attributes = new Map<string, unknown>()
  readonly links: Array<Tracer.SpanLink>
  readonly sampled = true
  status: Tracer.SpanStatus
  constructor(
    readonly name: string,
    readonly spanId: string,
    readonly traceId: string,
    readonly parent: Option.Option<Tracer.AnySpan>,
    readonly context: Context.Context<never>,
    links: ReadonlyArray<Tracer.SpanLink>,
    startTime: bigint,
    readonly kind: Tracer.SpanKind
  ) {
    this.links = [...links]
    this.status = { _tag: "Started", startTime }
  }
  end(endTime: bigint, exit: Exit.Exit<unknown, unknown>): void {
    this.status = { _tag: "Ended", startTime: this.status.startTime, endTime, exit }
  }
  attribute(key: string, value: unknown): void {
    this.attributes.set(key, value)
  }
  event(): void {}
  addLinks(links: ReadonlyArray<Tracer.SpanLink>): void {
    this.links.push(...links)
  }
  /** The exit the span ended with, or undefined while it is open. */
  get exit(): Exit.Exit<unknown, unknown> | undefined {
    return this.status._tag === "Ended" ? this.status.exit : undefined
  }
}

/** A Tracer that keeps every span it starts. */
export const recordingTracer = () => {
  const spans: Array<RecordedSpan> = []
  let next = 0
  const tracer = Tracer.make({
    span: (name, parent, context, links, startTime, kind) => {
      const traceId = Option.match(parent, { onNone: () => `trace-${next}`, onSome: (p) => p.traceId })
      const span = new RecordedSpan(name, `span-${next++}`, traceId, parent, context, links, startTime, kind)
      spans.push(span)
      return span
    },
    context: (f) => f()
  })
  return { spans, tracer }
}

/** The parent span's name, when the parent is one of ours. */
export const parentName = (span: RecordedSpan): string | undefined =>
  Option.getOrUndefined(Option.map(span.parent, (p) => (p._tag === "Span" ? p.name : undefined)))

/** A middleware that waits `duration` (on Effect's Clock) before handing the query on. */
export const delay =
  (duration: Duration.DurationInput): Middleware =>
  (next) =>
  (ctx) =>
    Effect.zipRight(Effect.sleep(duration), next(ctx))
