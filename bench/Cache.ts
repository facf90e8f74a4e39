/**
 * Cache benches. Memory: get-hit and set inside an Effect program (one `Effect.runPromise` running a
 * loop of `yield*`), MemoryCache against lru-cache and node-cache wrapped in `Effect.sync` and
 * against effect's own `Cache`. Redis: RedisCache get/set against raw ioredis promises (and ioredis
 * inside `Effect.promise`, to show what the Effect runtime alone costs), at 1 and 16 in flight.
 * Targets: memory get ≥ 0.8× wrapped lru-cache and ≥ 2× effect's Cache; Redis ≥ 0.9× raw ioredis.
 */
import { Duration, Effect, Cache as EffectCache, Exit, Scope } from "effect"
import { Redis } from "ioredis"
import { LRUCache } from "lru-cache"
import NodeCache from "node-cache"
import * as MemoryCache from "../src/Cache/MemoryCache.js"
import * as RedisCache from "../src/Cache/RedisCache.js"
import { type Contender, compare, printTable } from "./support.js"

const keyCount = 10_000
const keys = Array.from({ length: keyCount }, (_, i) => `key:${i}`)

/** Runs `ops` operations as one Effect program. */
const loop =
  (op: (i: number) => Effect.Effect<unknown, unknown>) =>
  (ops: number): Promise<void> =>
    Effect.runPromise(
      Effect.orDie(
        Effect.gen(function* () {
          for (let i = 0; i < ops; i++) yield* op(i)
        })
      )
    )

const memory = async () => {
  const scope = Effect.runSync(Scope.make())
  const ours = Effect.runSync(Scope.extend(MemoryCache.make({ maxEntries: 100_000 }), scope))
  const lru = new LRUCache<string, number>({ max: 100_000 })
  const node = new NodeCache({ useClones: false, checkperiod: 0 })
  const theirs = await Effect.runPromise(
    EffectCache.make({
      capacity: 100_000,
      timeToLive: Duration.infinity,
      lookup: (key: string) => Effect.succeed(key.length)
    })
  )
  for (const [i, key] of keys.entries()) {
    Effect.runSync(ours.set(key, i))
    lru.set(key, i)
    node.set(key, i)
    Effect.runSync(theirs.get(key))
  }
  const key = (i: number) => keys[i % keyCount] ?? ""
  const gets: ReadonlyArray<Contender> = [
    { name: "MemoryCache", run: loop((i) => ours.get(key(i))) },
    { name: "lru-cache (Effect.sync)", run: loop((i) => Effect.sync(() => lru.get(key(i)))) },
    { name: "node-cache (Effect.sync)", run: loop((i) => Effect.sync(() => node.get(key(i)))) },
    { name: "effect Cache", run: loop((i) => theirs.get(key(i))) }
  ]
  const sets: ReadonlyArray<Contender> = [
    { name: "MemoryCache", run: loop((i) => ours.set(key(i), i)) },
    { name: "lru-cache (Effect.sync)", run: loop((i) => Effect.sync(() => lru.set(key(i), i))) },
    { name: "node-cache (Effect.sync)", run: loop((i) => Effect.sync(() => node.set(key(i), i))) },
    { name: "effect Cache", run: loop((i) => theirs.set(key(i), i)) }
  ]
  const getRows = await compare(gets, { ops: 200_000, rounds: 5 })
  printTable("memory get (hit), 10k keys", getRows, {
    baseline: "lru-cache (Effect.sync)",
    targets: { MemoryCache: 0.8 }
  })
  printTable("memory get (hit), 10k keys", getRows, { baseline: "effect Cache", targets: { MemoryCache: 2 } })
  const setRows = await compare(sets, { ops: 200_000, rounds: 5 })
  printTable("memory set (replace), 10k keys", setRows, { baseline: "lru-cache (Effect.sync)" })
  await Effect.runPromise(Scope.close(scope, Exit.void))
}

const redis = async () => {
  const url = process.env.REDIS_URL ?? "redis://127.0.0.1:6379"
  const raw = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 })
  raw.on("error", () => {})
  try {
    await raw.connect()
  } catch (error) {
    console.log(`\n## redis: SKIPPED, ${url} unreachable (${String(error)})`)
    raw.disconnect()
    return
  }
  const prefix = "bench:Cache:"
  const scope = Effect.runSync(Scope.make())
  const ours = await Effect.runPromise(Scope.extend(RedisCache.make({ url, keyPrefix: prefix }), scope))
  const hot = Array.from({ length: 100 }, (_, i) => `${i}`)
  for (const k of hot) {
    await raw.set(`${prefix}raw:${k}`, "value-0123456789")
    await Effect.runPromise(ours.set(k, "value-0123456789"))
  }
  const pick = (i: number) => hot[i % hot.length] ?? ""
  /** Runs `ops` promise-returning calls with at most `inFlight` outstanding. */
  const promises = (inFlight: number, op: (i: number) => Promise<unknown>) => async (ops: number) => {
    let next = 0
    const worker = async () => {
      while (next < ops) await op(next++)
    }
    await Promise.all(Array.from({ length: inFlight }, worker))
  }
  /** The same shape inside one Effect program: `inFlight` fibers, each running operations in turn. */
  const effects = (inFlight: number, op: (i: number) => Effect.Effect<unknown, unknown>) => (ops: number) => {
    let next = 0
    const worker = Effect.gen(function* () {
      while (next < ops) yield* op(next++)
    })
    return Effect.runPromise(
      Effect.orDie(
        Effect.all(
          Array.from({ length: inFlight }, () => worker),
          { concurrency: "unbounded", discard: true }
        )
      )
    )
  }
  for (const inFlight of [1, 16]) {
    const getRows = await compare(
      [
        { name: "raw ioredis", run: promises(inFlight, (i) => raw.get(`${prefix}raw:${pick(i)}`)) },
        {
          name: "ioredis in Effect.promise",
          run: effects(inFlight, (i) => Effect.promise(() => raw.get(`${prefix}raw:${pick(i)}`)))
        },
        { name: "RedisCache", run: effects(inFlight, (i) => ours.get(pick(i))) }
      ],
      { ops: inFlight === 1 ? 5_000 : 20_000, rounds: 5 }
    )
    printTable(`redis get, ${inFlight} in flight`, getRows, {
      baseline: "raw ioredis",
      targets: { RedisCache: 0.9 }
    })
    const setRows = await compare(
      [
        {
          name: "raw ioredis",
          run: promises(inFlight, (i) => raw.set(`${prefix}raw:${pick(i)}`, "value-0123456789"))
        },
        {
          name: "ioredis in Effect.promise",
          run: effects(inFlight, (i) =>
            Effect.promise(() => raw.set(`${prefix}raw:${pick(i)}`, "value-0123456789"))
          )
        },
        { name: "RedisCache", run: effects(inFlight, (i) => ours.set(pick(i), "value-0123456789")) }
      ],
      { ops: inFlight === 1 ? 5_000 : 20_000, rounds: 5 }
    )
    printTable(`redis set, ${inFlight} in flight`, setRows, {
      baseline: "raw ioredis",
      targets: { RedisCache: 0.9 }
    })
  }
  const leftovers = await raw.keys(`${prefix}*`)
  if (leftovers.length > 0) await raw.del(...leftovers)
  await Effect.runPromise(Scope.close(scope, Exit.void))
  await raw.quit()
}

/** Runs the memory and Redis cache benches. */
export const run = async (): Promise<void> => {
  await memory()
  await redis()
}
