/**
 * Change data capture from the database itself: the committed row changes of a MariaDB binlog
 * (`MariaDbBinlog`) or a PostgreSQL logical replication slot (`PostgresLogical`) as an Effect
 * `Stream` of transactions, in commit order, each with the position to commit once it is handled.
 *
 * Delivery is at-least-once: a transaction is delivered again after a restart until its position (or
 * a later one) was committed and made durable. Commits are kept in memory and made durable every
 * `commitInterval` (1 second by default), on `flush`, and when the scope closes; a crash replays
 * what followed the last durable commit. Consumers must tolerate a transaction seen twice (cache
 * invalidation does).
 *
 * When the source drops, the stream fails with a `connection` `ChangeStreamError` and reconnects
 * with exponential backoff (100 ms doubling, at most 10 s apart, forever by default) from the last
 * transaction it delivered; other reasons (`setup`, `position_lost`, ...) end the stream.
 *
 * `layerChangeFeed` publishes every change into the in-process `ChangeFeed`, where RefreshAhead,
 * QueryCache and BloomFilter already listen: writes made by any client reach them.
 *
 * @example
 * const Cdc = ChangeStream.layerChangeFeed({ entities: [User] }).pipe(
 *   Layer.provide(MariaDbBinlog.layer({ url: Redacted.make("mysql://cdc:secret@db:3306/app") })),
 *   Layer.provide(PositionStore.layerFile("/var/lib/app/cdc-position.json"))
 * )
 * @since 0.1.0
 */
import {
  Config,
  type ConfigError,
  Context,
  type Duration,
  Effect,
  Layer,
  Metric,
  Option,
  Redacted,
  Ref,
  Schedule,
  type Schema,
  type Scope,
  Stream
} from "effect"
import { type ChangeEvent, ChangeFeed, type ChangeType } from "../Query/ChangeFeed.js"
import { Executor } from "../Query/Executor.js"
import type { InvalidEntityError } from "../Schema/EntityError.js"
import * as EntityModel from "../Schema/EntityModel.js"
import { ChangeStreamError } from "./ChangeStreamError.js"

/** One row written by a committed transaction. @since 0.1.0 @category models */
export interface RowChange {
  /** The MariaDB database or PostgreSQL schema of the table. */
  readonly schema: string
  readonly table: string
  readonly operation: ChangeType
  /**
   * The primary key of the row, by column name (the new key when an UPDATE changed it: the old one is
   * in `before`); `undefined` when the table has none the source can name, which a cache must read
   * as "any row of the table".
   */
  readonly key: Readonly<Record<string, unknown>> | undefined
  /**
   * The row as written (INSERT, UPDATE) or as it was (DELETE), by column name, as far as the source
   * gives it: PostgreSQL sends only the key of a deleted row unless the table has `REPLICA IDENTITY
   * FULL`; `undefined` for a TRUNCATE.
   */
  readonly row: Readonly<Record<string, unknown>> | undefined
  /**
   * The row before an UPDATE, where the source gives it: the whole row on MariaDB
   * (`binlog_row_image=FULL`) and on PostgreSQL tables with `REPLICA IDENTITY FULL`; otherwise on
   * PostgreSQL only the old key, and only when the UPDATE changed it.
   */
  readonly before: Readonly<Record<string, unknown>> | undefined
}

/** One committed transaction. @since 0.1.0 @category models */
export interface Transaction {
  /** Commit this (`ChangeStream.commit`) once handled: a restart resumes after it. */
  readonly position: string
  /** The source's byte offset of the commit (binlog file offset; PostgreSQL LSN), for metrics. */
  readonly offset: number
  readonly commitTime: Date
  /** In the order they were written; empty for a transaction with no row of interest (DDL). */
  readonly changes: ReadonlyArray<RowChange>
}

/**
 * What a source provides; `make` adds positions, reconnects and metrics.
 *
 * @since 0.1.0 @category models
 */
export interface Source {
  /** Names the source in errors, logs, spans and metrics (never credentials). */
  readonly name: string
  /** Prepares the source and returns the committed position (the server's current one on a first run). */
  readonly start: Effect.Effect<string, ChangeStreamError>
  /** The transactions committed after `from`, until the connection drops (a `connection` failure). */
  readonly read: (from: string) => Stream.Stream<Transaction, ChangeStreamError>
  /** Makes `position` the durable restart point. */
  readonly persist: (position: string) => Effect.Effect<void, ChangeStreamError>
}

/** @since 0.1.0 @category models */
export interface ChangeStreamService {
  readonly name: string
  /**
   * The transactions committed after the committed position, in commit order, reconnecting when the
   * source drops. Run by one consumer at a time (a PostgreSQL slot serves one connection).
   */
  readonly changes: Stream.Stream<Transaction, ChangeStreamError>
  /** Records `transaction` as handled (durable within `commitInterval`, or at `flush`). */
  readonly commit: (transaction: Transaction) => Effect.Effect<void>
  /** Makes the last commit durable now. */
  readonly flush: Effect.Effect<void, ChangeStreamError>
  /** The position last committed (or the starting one). */
  readonly committed: Effect.Effect<string>
}

/** @since 0.1.0 @category tags */
export class ChangeStream extends Context.Tag("effect-dal/ChangeStream")<
  ChangeStream,
  ChangeStreamService
>() {}

/** @since 0.1.0 @category models */
export interface Options {
  /** How often commits are made durable (default 1 second). */
  readonly commitInterval?: Duration.DurationInput
  /** Reconnects after a `connection` failure (default: exponential from 100 ms, at most 10 s apart, forever). */
  readonly reconnect?: Schedule.Schedule<unknown, ChangeStreamError>
}

const transactions = Metric.counter("effect_dal_change_stream_transactions_total", {
  description: "Committed transactions received from the database's change log",
  incremental: true
})
const rows = Metric.counter("effect_dal_change_stream_changes_total", {
  description: "Row changes received from the database's change log",
  incremental: true
})
const lag = Metric.gauge("effect_dal_change_stream_lag_seconds", {
  description: "Seconds between a transaction's commit on the server and its receipt here"
})
const received = Metric.gauge("effect_dal_change_stream_received_offset", {
  description: "Source offset (binlog file offset, PostgreSQL LSN) of the last transaction received"
})
const committedOffset = Metric.gauge("effect_dal_change_stream_committed_offset", {
  description: "Source offset of the last transaction committed by the consumer"
})
const reconnects = Metric.counter("effect_dal_change_stream_reconnects_total", {
  description: "Reconnections after the change log's source dropped",
  incremental: true
})
const up = Metric.gauge("effect_dal_change_stream_up", {
  description: "1 while a change stream is followed, 0 after it stopped on an error"
})

const defaultReconnect: Schedule.Schedule<unknown, ChangeStreamError> = Schedule.exponential(
  "100 millis"
).pipe(Schedule.union(Schedule.spaced("10 seconds")))

/**
 * A change stream over `source`. The committed position is made durable in the background and when
 * the scope closes.
 *
 * @since 0.1.0 @category constructors
 */
export const make = (
  source: Source,
  options: Options = {}
): Effect.Effect<ChangeStreamService, ChangeStreamError, Scope.Scope> =>
  Effect.gen(function* () {
    const m = {
      transactions: Metric.tagged(transactions, "source", source.name),
      rows: Metric.tagged(rows, "source", source.name),
      lag: Metric.tagged(lag, "source", source.name),
      received: Metric.tagged(received, "source", source.name),
      committed: Metric.tagged(committedOffset, "source", source.name),
      reconnects: Metric.tagged(reconnects, "source", source.name)
    }
    const start = yield* source.start
    const committed = yield* Ref.make(start)
    const durable = yield* Ref.make(start)
    const lock = yield* Effect.makeSemaphore(1)

    const flush = lock.withPermits(1)(
      Effect.gen(function* () {
        const position = yield* Ref.get(committed)
        if (position === (yield* Ref.get(durable))) return
        yield* source.persist(position)
        yield* Ref.set(durable, position)
      })
    )
    const flushLogged = Effect.catchAll(flush, (e) =>
      Effect.logWarning(
        `change stream ${source.name}: saving the committed position failed (kept for the next try)`,
        e
      )
    )
    yield* Effect.addFinalizer(() => flushLogged)
    yield* Effect.forkScoped(
      Effect.forever(Effect.zipRight(Effect.sleep(options.commitInterval ?? "1 second"), flushLogged))
    )

    const reconnect = Schedule.whileInput(
      options.reconnect ?? defaultReconnect,
      (e: ChangeStreamError) => e.reason === "connection"
    ).pipe(
      Schedule.tapInput((e: ChangeStreamError) =>
        e.reason === "connection"
          ? Effect.zipRight(Effect.logWarning(`${e.message}; reconnecting`), Metric.increment(m.reconnects))
          : Effect.void
      )
    )

    const changes = Stream.unwrap(
      Effect.map(Ref.get(committed), (start) => {
        // Each connection resumes after the last transaction this run delivered.
        let from = start
        return Stream.suspend(() => source.read(from)).pipe(
          Stream.tap((tx) => {
            from = tx.position
            return Effect.all(
              [
                Metric.increment(m.transactions),
                Metric.incrementBy(m.rows, tx.changes.length),
                Metric.set(m.lag, Math.max(0, Date.now() - tx.commitTime.getTime()) / 1000),
                Metric.set(m.received, tx.offset)
              ],
              { discard: true }
            )
          }),
          Stream.retry(reconnect)
        )
      })
    )

    return {
      name: source.name,
      changes,
      commit: (tx) => Effect.zipRight(Ref.set(committed, tx.position), Metric.set(m.committed, tx.offset)),
      flush,
      committed: Ref.get(committed)
    }
  })

/**
 * The `ChangeStream` of `source`.
 *
 * @since 0.1.0 @category layers
 */
export const layer = <R>(
  source: Effect.Effect<Source, ChangeStreamError, R>,
  options: Options = {}
): Layer.Layer<ChangeStream, ChangeStreamError, Exclude<R, Scope.Scope>> =>
  Layer.scoped(
    ChangeStream,
    Effect.flatMap(source, (s) => make(s, options))
  )

/** @since 0.1.0 @category models */
export interface FeedOptions {
  /**
   * The database label the events carry (what `RefreshAhead`/`BloomFilter`'s `database` option and
   * the query cache's generations compare). Default: the label of the `Executor`'s session, if one
   * is in the context, so these events match the library's own; otherwise the stream's name.
   */
  readonly database?: string
  /**
   * Entities whose tables' events carry primary keys by field name (through the session's registry,
   * with its overrides, when an `Executor` is present). Tables of no entity give their keys by column
   * name.
   */
  readonly entities?: ReadonlyArray<Schema.Schema.AnyNoContext>
  /** Only these tables (default: every table the source reports). */
  readonly tables?: ReadonlyArray<string>
}

/** `key` (by column name) by entity field name; as is without an entity. */
const fieldKey = (
  model: EntityModel.EntityModel | undefined,
  key: Readonly<Record<string, unknown>>
): Readonly<Record<string, unknown>> | undefined => {
  if (model === undefined) return key
  const fields: Record<string, unknown> = {}
  for (const pk of model.primaryKey) {
    if (!(pk.column in key)) return undefined
    fields[pk.field] = key[pk.column]
  }
  return fields
}

/** The keys a change touched: its key, and the old one when an UPDATE changed the key. */
const changedKeys = (
  model: EntityModel.EntityModel | undefined,
  change: RowChange
): ReadonlyArray<Readonly<Record<string, unknown>>> | undefined => {
  const { key, before } = change
  if (key === undefined) return undefined
  const current = fieldKey(model, key)
  if (current === undefined) return undefined
  if (before === undefined) return [current]
  const columns = Object.keys(key)
  if (columns.every((c) => before[c] === key[c])) return [current]
  const old = fieldKey(model, Object.fromEntries(columns.map((c) => [c, before[c]])))
  return old === undefined ? undefined : [current, old]
}

/** One `ChangeEvent` per row change (the library's own events carry one statement's rows each). */
const toEvents = (
  database: string,
  models: ReadonlyMap<string, EntityModel.EntityModel>,
  tables: ReadonlySet<string> | undefined,
  tx: Transaction
): ReadonlyArray<ChangeEvent> =>
  tx.changes.flatMap((change) =>
    tables !== undefined && !tables.has(change.table)
      ? []
      : [
          {
            database,
            table: change.table,
            type: change.operation,
            primaryKeys: changedKeys(models.get(change.table), change),
            rowsAffected: 1
          }
        ]
  )

/**
 * Follows the `ChangeStream` for the life of the Layer and publishes each change into the
 * `ChangeFeed`, committing each batch of transactions after publishing it (one span per batch).
 * A stream that stops on an error other than a dropped connection is logged as an error and the
 * `effect_dal_change_stream_up` gauge drops to 0: caches then go stale until a restart.
 *
 * @since 0.1.0 @category layers
 */
export const layerChangeFeed = (
  options: FeedOptions = {}
): Layer.Layer<never, InvalidEntityError, ChangeStream | ChangeFeed> =>
  Layer.scopedDiscard(
    Effect.gen(function* () {
      const stream = yield* ChangeStream
      const feed = yield* ChangeFeed
      const executor = yield* Effect.serviceOption(Executor)
      const session = Option.map(executor, (e) => e.session)
      const database =
        options.database ??
        Option.match(session, {
          onNone: () => stream.name,
          onSome: (s) => s.label
        })
      const models = new Map<string, EntityModel.EntityModel>()
      for (const entity of options.entities ?? []) {
        const model = yield* Option.match(session, {
          onNone: () => EntityModel.make(entity),
          onSome: (s) => s.registry.get(entity)
        })
        models.set(model.table, model)
      }
      const tables = options.tables === undefined ? undefined : new Set(options.tables)
      const gauge = Metric.tagged(up, "source", stream.name)

      const follow = stream.changes.pipe(
        Stream.mapChunksEffect((chunk) =>
          Effect.gen(function* () {
            let count = 0
            let last: Transaction | undefined
            for (const tx of chunk) {
              for (const event of toEvents(database, models, tables, tx)) {
                yield* feed.publish(event)
                count++
              }
              last = tx
            }
            if (last !== undefined) {
              yield* stream.commit(last)
              yield* Effect.annotateCurrentSpan("position", last.position)
            }
            yield* Effect.annotateCurrentSpan({ transactions: chunk.length, changes: count })
            return chunk
          }).pipe(Effect.withSpan("ChangeStream.batch", { attributes: { source: stream.name } }))
        ),
        Stream.runDrain
      )
      yield* Effect.forkScoped(
        Effect.zipRight(Metric.set(gauge, 1), follow).pipe(
          Effect.catchAll((e) =>
            Effect.zipRight(
              Metric.set(gauge, 0),
              Effect.logError(`change stream ${stream.name} stopped: caches following it go stale`, e)
            )
          )
        )
      )
    })
  )

/**
 * Imports a source module, whose optional peer may be absent (a `setup` error naming it). The specifier
 * is a variable, so bundlers leave the import alone: a bundled program imports its source itself.
 */
const loadSource = <M>(
  source: string,
  module: string,
  packageName: string
): Effect.Effect<M, ChangeStreamError> =>
  Effect.tryPromise({
    try: () => import(module) as Promise<M>,
    catch: (cause) =>
      new ChangeStreamError({
        reason: "setup",
        source,
        detail: `install ${packageName} (npm install ${packageName})`,
        cause
      })
  })

/**
 * The demo's switch: with `CDC=1`, follows the change log of the database at `DATABASE_URL` (or
 * `fallback`) into the `ChangeFeed`; otherwise, and on SQLite (which has no change log: the
 * library's own feed is its only source), provides nothing.
 *
 * - MariaDB: positions in the JSON file `CDC_POSITION_FILE` (without it, in memory: a restart then
 *   starts at the server's current position and misses what was written while it was down);
 *   `CDC_SERVER_ID` (default: random).
 * - PostgreSQL: slot `CDC_SLOT` and publication `CDC_PUBLICATION` (default `effect_dal_changes`
 *   both): each instance of a program needs its own slot.
 *
 * Only the driver of the database used is loaded.
 *
 * @example
 * // in the program's layer, beside ChangeFeed.layer and the database:
 * Layer.provideMerge(ChangeStream.layerConfig({ entities: [User] }))
 * @since 0.1.0 @category layers
 */
export const layerConfig = (
  options: FeedOptions & { readonly fallback?: string } = {}
): Layer.Layer<never, ChangeStreamError | ConfigError.ConfigError | InvalidEntityError, ChangeFeed> =>
  Layer.unwrapEffect(
    Effect.gen(function* () {
      const { fallback, ...feed } = options
      const enabled = yield* Config.withDefault(Config.boolean("CDC"), false)
      if (!enabled) return Layer.empty
      const url = Redacted.value(
        yield* fallback === undefined
          ? Config.redacted("DATABASE_URL")
          : Config.withDefault(Config.redacted("DATABASE_URL"), Redacted.make(fallback))
      )
      const scheme = url.slice(0, url.indexOf(":"))
      if (scheme === "mysql" || scheme === "mariadb") {
        const file = yield* Config.option(Config.string("CDC_POSITION_FILE"))
        const serverId = yield* Config.option(Config.integer("CDC_SERVER_ID"))
        if (Option.isNone(file)) {
          yield* Effect.logWarning(
            "CDC: no CDC_POSITION_FILE, positions kept in memory (a restart skips what it missed)"
          )
        }
        const { layer } = yield* loadSource<typeof import("./MariaDbBinlog.js")>(
          "mariadb",
          "./MariaDbBinlog.js",
          "@vlasky/zongji"
        )
        const { layerFile, layerMemory } = yield* Effect.promise(() => import("./PositionStore.js"))
        const source = layer({
          url: url.replace(/^mariadb:/, "mysql:"),
          ...(Option.isSome(serverId) ? { serverId: serverId.value } : {})
        }).pipe(Layer.provide(Option.match(file, { onNone: () => layerMemory, onSome: layerFile })))
        return Layer.provide(layerChangeFeed(feed), source)
      }
      if (scheme === "postgres" || scheme === "postgresql") {
        const slot = yield* Config.withDefault(Config.string("CDC_SLOT"), "effect_dal_changes")
        const publication = yield* Config.withDefault(Config.string("CDC_PUBLICATION"), "effect_dal_changes")
        const { layer } = yield* loadSource<typeof import("./PostgresLogical.js")>(
          "postgres",
          "./PostgresLogical.js",
          "pg-logical-replication"
        )
        return Layer.provide(layerChangeFeed(feed), layer({ url, slot, publication }))
      }
      yield* Effect.logInfo("CDC: SQLite has no change log; the library's own change feed is the only source")
      return Layer.empty
    })
  )
