/**
 * Cache pattern benches, all in memory (MemoryCache, SQLite in memory) so they measure the patterns,
 * not a network:
 *
 * - hit path: what ReadThrough (and Singleflight on top) adds to a MemoryCache hit;
 * - stampede: 200 concurrent gets of a cold key whose load takes 2 ms, with and without Singleflight
 *   (rounds per second, and the loads each round made);
 * - penetration: gets of absent keys loading from SQLite, with and without a 1% BloomFilter;
 * - query cache: a point SELECT through the Executor, with and without QueryCache.
 */
import { Array as Arr, Effect, Layer, ManagedRuntime, Option, Ref, Schema, Stream } from "effect"
import * as BloomFilter from "../src/Cache/BloomFilter.js"
import * as Cache from "../src/Cache/Cache.js"
import * as MemoryCache from "../src/Cache/MemoryCache.js"
import * as QueryCache from "../src/Cache/QueryCache.js"
import * as ReadThrough from "../src/Cache/ReadThrough.js"
import * as Singleflight from "../src/Cache/Singleflight.js"
import * as Database from "../src/Layers/Database.js"
import * as ChangeCapture from "../src/Middleware/ChangeCapture.js"
import * as ChangeFeed from "../src/Query/ChangeFeed.js"
import type { Executor } from "../src/Query/Executor.js"
import * as Expr from "../src/Query/Expr.js"
import * as Raw from "../src/Query/Raw.js"
import type { SelectError } from "../src/Query/Select.js"
import * as Select from "../src/Query/Select.js"
import * as Entity from "../src/Schema/Entity.js"
import { type Contender, compare, printTable } from "./support.js"

class Item extends Schema.Class<Item>("Item")(
  { id: Schema.Number, name: Schema.String },
  Entity.table("bench_pattern_items")
) {}
const C = Expr.columns(Item)

class Plain extends ReadThrough.Tag("bench/Plain")<Plain, unknown>() {}
class Flown extends ReadThrough.Tag("bench/Flown")<Flown, unknown>() {}
class Items extends ReadThrough.Tag("bench/Items")<Items, unknown, SelectError, Executor>() {}
class Guarded extends ReadThrough.Tag("bench/Guarded")<Guarded, unknown, SelectError, Executor>() {}

const rows = 10_000

const database = Layer.provideMerge(
  ChangeCapture.layer,
  Layer.provideMerge(ChangeFeed.layer, Layer.orDie(Database.layer({ url: "sqlite::memory:" })))
)
const fixtures = Layer.effectDiscard(
  Effect.orDie(
    Effect.zipRight(
      Raw.query(`CREATE TABLE bench_pattern_items (id INTEGER PRIMARY KEY, name TEXT NOT NULL)`).exec(),
      Raw.query(
        `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ${rows}) ` +
          `INSERT INTO bench_pattern_items (id, name) SELECT i, 'item ' || i FROM n`
      ).exec()
    )
  )
)
const loadItem = (key: string) =>
  Effect.map(
    Select.from(Item)
      .where(C("id").eq(Number(key)))
      .getMulti(),
    (found) => Option.map(Arr.head(found), (item) => item.name)
  )

/** Runs `ops` operations as one Effect program on `runtime`. */
const loop =
  <R>(
    runtime: ManagedRuntime.ManagedRuntime<R, unknown>,
    op: (i: number) => Effect.Effect<unknown, unknown, R>
  ) =>
  (ops: number): Promise<void> =>
    runtime.runPromise(
      Effect.orDie(
        Effect.gen(function* () {
          for (let i = 0; i < ops; i++) yield* op(i)
        })
      )
    )

const hitPath = async () => {
  const loader = (key: string) => Effect.succeed(Option.some(key))
  const runtime = ManagedRuntime.make(
    Layer.mergeAll(
      ReadThrough.layer(Plain, Cache.Cache, { loader }),
      Singleflight.layer(Flown).pipe(Layer.provide(ReadThrough.layer(Flown, Cache.Cache, { loader })))
    ).pipe(Layer.provideMerge(MemoryCache.layer()))
  )
  const keys = Array.from({ length: 1000 }, (_, i) => `k${i}`)
  await runtime.runPromise(
    Effect.flatMap(Cache.Cache, (cache) => Effect.forEach(keys, (k) => cache.set(k, k), { discard: true }))
  )
  const key = (i: number) => keys[i % keys.length] ?? ""
  const contenders: ReadonlyArray<Contender> = [
    { name: "MemoryCache.get", run: loop(runtime, (i) => Effect.flatMap(Cache.Cache, (c) => c.get(key(i)))) },
    { name: "ReadThrough.get", run: loop(runtime, (i) => Effect.flatMap(Plain, (rt) => rt.get(key(i)))) },
    {
      name: "ReadThrough+Singleflight.get",
      run: loop(runtime, (i) => Effect.flatMap(Flown, (rt) => rt.get(key(i))))
    }
  ]
  printTable("hit path (memory)", await compare(contenders, { ops: 200_000, rounds: 3 }), {
    baseline: "MemoryCache.get",
    unit: "gets/s"
  })
  await runtime.dispose()
}

const stampede = async () => {
  const calls = { plain: 0, flown: 0 }
  const slow = (which: "plain" | "flown") => (key: string) =>
    Effect.as(
      Effect.zipRight(
        Effect.sync(() => calls[which]++),
        Effect.sleep("2 millis")
      ),
      Option.some(key)
    )
  const runtime = ManagedRuntime.make(
    Layer.mergeAll(
      ReadThrough.layer(Plain, Cache.Cache, { loader: slow("plain") }),
      Singleflight.layer(Flown).pipe(
        Layer.provide(ReadThrough.layer(Flown, Cache.Cache, { loader: slow("flown") }))
      )
    ).pipe(Layer.provideMerge(MemoryCache.layer()))
  )
  let round = 0
  const storm =
    (tag: Effect.Effect<ReadThrough.ReadThrough<unknown>, never, Plain | Flown>) =>
    (ops: number): Promise<void> =>
      runtime.runPromise(
        Effect.flatMap(tag, (rt) =>
          Effect.forEach(
            Array.from({ length: ops }),
            () => {
              const key = `cold-${round++}`
              return Effect.forEach(Array.from({ length: 200 }), () => rt.get(key), {
                concurrency: "unbounded",
                discard: true
              })
            },
            { discard: true }
          )
        ).pipe(Effect.orDie)
      )
  const results = await compare(
    [
      { name: "ReadThrough", run: storm(Plain) },
      { name: "ReadThrough+Singleflight", run: storm(Flown) }
    ],
    { ops: 20, rounds: 3, warmupOps: 2 }
  )
  printTable("stampede: 200 concurrent gets of a cold key, 2 ms load", results, {
    baseline: "ReadThrough",
    unit: "stampedes/s"
  })
  // Every contender ran 2 warm-up + 3 × 20 stampedes.
  console.log(
    `loads per stampede: ReadThrough ${(calls.plain / 62).toFixed(1)}, ` +
      `ReadThrough+Singleflight ${(calls.flown / 62).toFixed(1)}`
  )
  await runtime.dispose()
}

const penetration = async () => {
  const loads = await Effect.runPromise(Ref.make(0))
  const counted = (key: string) =>
    Effect.zipRight(
      Ref.update(loads, (n) => n + 1),
      loadItem(key)
    )
  const runtime = ManagedRuntime.make(
    Layer.mergeAll(
      ReadThrough.layer(Items, Cache.Cache, { loader: loadItem }),
      BloomFilter.layer(Guarded, {
        keys: Stream.map(Select.from(Item).columns("id").stream(), (row) => String(row.id)),
        table: "bench_pattern_items",
        key: (pk) => String(pk.id)
      }).pipe(Layer.provide(ReadThrough.layer(Guarded, Cache.Cache, { loader: counted })))
    ).pipe(
      Layer.provideMerge(MemoryCache.layer()),
      Layer.provideMerge(fixtures),
      Layer.provideMerge(database)
    )
  )
  await runtime.runPromise(Guarded)
  let absent = rows
  const next = () => String(++absent)
  const results = await compare(
    [
      {
        name: "ReadThrough (SQLite)",
        run: loop(runtime, () => Effect.flatMap(Items, (rt) => rt.get(next())))
      },
      {
        name: "ReadThrough+BloomFilter",
        run: loop(runtime, () => Effect.flatMap(Guarded, (rt) => rt.get(next())))
      }
    ],
    { ops: 20_000, rounds: 3 }
  )
  printTable("penetration: gets of absent keys", results, {
    baseline: "ReadThrough (SQLite)",
    unit: "gets/s"
  })
  const guardedGets = 2_000 + 3 * 20_000
  console.log(
    `bloom filter let ${await Effect.runPromise(Ref.get(loads))} of ${guardedGets} absent keys through to SQLite`
  )
  await runtime.dispose()
}

const queryCache = async () => {
  const cached = ManagedRuntime.make(
    QueryCache.layer(Cache.Cache).pipe(
      Layer.provideMerge(MemoryCache.layer()),
      Layer.provideMerge(fixtures),
      Layer.provideMerge(database)
    )
  )
  const plain = ManagedRuntime.make(Layer.provideMerge(fixtures, database))
  const point = (i: number) =>
    Select.from(Item)
      .where(C("id").eq((i % 100) + 1))
      .getMulti()
  const results = await compare(
    [
      { name: "SQLite", run: loop(plain, point) },
      { name: "QueryCache (memory) over SQLite", run: loop(cached, point) }
    ],
    { ops: 20_000, rounds: 3 }
  )
  printTable("query cache: point SELECT by primary key, 100 distinct ids", results, {
    baseline: "SQLite",
    unit: "selects/s"
  })
  await Promise.all([cached.dispose(), plain.dispose()])
}

export const run = async (): Promise<void> => {
  await hitPath()
  await stampede()
  await penetration()
  await queryCache()
}
