/**
 * What the change-stream suites share: an `items` entity, a refresh-ahead read path over a memory
 * cache that counts its loads, the library stack that follows a `ChangeStream` into the
 * `ChangeFeed`, and polling with a deadline.
 */
import { assert } from "@effect/vitest"
import { Array as Arr, Duration, Effect, Layer, Option, Ref, Schema, Stream } from "effect"
import * as Cache from "../../src/Cache/Cache.js"
import * as MemoryCache from "../../src/Cache/MemoryCache.js"
import * as ReadThrough from "../../src/Cache/ReadThrough.js"
import * as RefreshAhead from "../../src/Cache/RefreshAhead.js"
import * as ChangeStream from "../../src/ChangeStream/ChangeStream.js"
import type { ChangeStreamError } from "../../src/ChangeStream/ChangeStreamError.js"
import * as Database from "../../src/Layers/Database.js"
import * as ChangeFeed from "../../src/Query/ChangeFeed.js"
import type { Executor } from "../../src/Query/Executor.js"
import * as Expr from "../../src/Query/Expr.js"
import type { SelectError } from "../../src/Query/Select.js"
import * as Select from "../../src/Query/Select.js"
import * as Entity from "../../src/Schema/Entity.js"

export const itemsTable = "cdc_items"

export class Item extends Schema.Class<Item>("CdcItem")(
  { id: Schema.Number, name: Schema.String },
  Entity.table(itemsTable)
) {}

const C = Expr.columns(Item)

/** Counts the loads that reached the database. */
export class Loads extends Effect.Service<Loads>()("test/ChangeStream/Loads", { effect: Ref.make(0) }) {}

export class Items extends ReadThrough.Tag("test/ChangeStream/Items")<
  Items,
  unknown,
  SelectError,
  Executor | Loads
>() {}

const loader = (key: string) =>
  Effect.flatMap(Loads, (loads) =>
    Ref.update(loads, (n) => n + 1).pipe(
      Effect.zipRight(
        Select.from(Item)
          .where(C("id").eq(Number(key)))
          .getMulti()
      ),
      Effect.map((rows) => Option.map(Arr.head(rows), (item) => item.name))
    )
  )

/** One program instance's cache: memory, refresh-ahead, optionally told of changes through Redis. */
export const cacheLayer = (redis?: RefreshAhead.RedisChannel) =>
  RefreshAhead.layer(Items, {
    table: itemsTable,
    key: (pk) => String(pk.id),
    drainInterval: "20 millis",
    ...(redis === undefined ? {} : { redis })
  }).pipe(
    Layer.provide(
      ReadThrough.layer(Items, Cache.Cache, { loader, ttl: "1 hour", negative: { ttl: "1 hour" } })
    ),
    Layer.provideMerge(MemoryCache.layer()),
    Layer.provideMerge(Loads.Default)
  )

/** The database, its change feed, and the change stream followed into the feed. */
export const followingLayer = <E, R>(url: string, stream: Layer.Layer<ChangeStream.ChangeStream, E, R>) =>
  ChangeStream.layerChangeFeed({ entities: [Item] }).pipe(
    Layer.provideMerge(stream),
    Layer.provideMerge(ChangeFeed.layer),
    Layer.provideMerge(Layer.orDie(Database.layer({ url })))
  )

export const get = (id: number) => Effect.flatMap(Items, (rt) => rt.get(String(id)))
export const loads = Effect.flatMap(Loads, Ref.get)

/**
 * Repeats `effect` every 20 ms until `done` holds, failing the test after `within`; returns the
 * value and how long it took.
 */
export const eventually = <A, E, R>(
  what: string,
  effect: Effect.Effect<A, E, R>,
  done: (a: A) => boolean,
  within: Duration.DurationInput = "10 seconds"
) =>
  Effect.gen(function* () {
    const started = Date.now()
    const poll: Effect.Effect<A, E, R> = Effect.flatMap(effect, (a) =>
      done(a)
        ? Effect.succeed(a)
        : Effect.zipRight(
            Effect.sleep("20 millis"),
            Effect.suspend(() => poll)
          )
    )
    const value = yield* Effect.timeoutFail(poll, {
      duration: within,
      onTimeout: () => new Error(`${what}: not within ${Duration.format(Duration.decode(within))}`)
    })
    return { value, millis: Date.now() - started }
  })

/** Takes transactions from the stream until one holds a change of `table` with key `id` = `lastId`. */
export const takeUntilId = (
  stream: Stream.Stream<ChangeStream.Transaction, ChangeStreamError>,
  table: string,
  lastId: number
) =>
  stream.pipe(
    Stream.takeUntil((tx) => tx.changes.some((c) => c.table === table && Number(c.key?.id) === lastId)),
    Stream.runCollect,
    Effect.map((chunk) => Array.from(chunk))
  )

/** The ids of `table` changed in `transactions`, in stream order. */
export const changedIds = (transactions: ReadonlyArray<ChangeStream.Transaction>, table: string) =>
  transactions.flatMap((tx) => tx.changes.filter((c) => c.table === table).map((c) => Number(c.key?.id)))

/** Fails unless `ids` are exactly `from..to` in order. */
export const assertRange = (ids: ReadonlyArray<number>, from: number, to: number) => {
  const expected = Arr.range(from, to)
  assert.strictEqual(ids.length, expected.length, `${ids.length} changes, expected ${expected.length}`)
  const firstWrong = ids.findIndex((id, i) => id !== expected[i])
  assert.strictEqual(firstWrong, -1, `first change out of order at ${firstWrong}: ${ids[firstWrong]}`)
}
