/**
 * The second process of the RefreshAhead test: a read-through memory cache over the same database,
 * subscribed to the same Redis channel. Reads `get <id>` lines on stdin and answers one JSON line
 * each ({ value, loads }); prints `ready` once subscribed.
 */
import { createInterface } from "node:readline"
import { Array as Arr, Effect, Layer, ManagedRuntime, Option, Schema } from "effect"
import * as Cache from "../../src/Cache/Cache.js"
import * as MemoryCache from "../../src/Cache/MemoryCache.js"
import * as ReadThrough from "../../src/Cache/ReadThrough.js"
import * as RefreshAhead from "../../src/Cache/RefreshAhead.js"
import * as Database from "../../src/Layers/Database.js"
import * as ChangeFeed from "../../src/Query/ChangeFeed.js"
import type { Executor } from "../../src/Query/Executor.js"
import * as Expr from "../../src/Query/Expr.js"
import type { SelectError } from "../../src/Query/Select.js"
import * as Select from "../../src/Query/Select.js"
import * as Entity from "../../src/Schema/Entity.js"

const [databaseUrl = "", redisUrl = "", channel = "", table = ""] = process.argv.slice(2)

class Item extends Schema.Class<Item>("Item")(
  { id: Schema.Number, name: Schema.String },
  Entity.table(table)
) {}
class Items extends ReadThrough.Tag("child/Items")<Items, unknown, SelectError, Executor>() {}

let loads = 0
const loader = (key: string) =>
  Effect.sync(() => loads++).pipe(
    Effect.zipRight(
      Select.from(Item)
        .where(Expr.columns(Item)("id").eq(Number(key)))
        .getMulti()
    ),
    Effect.map((rows) => Option.map(Arr.head(rows), (item) => item.name))
  )

const runtime = ManagedRuntime.make(
  RefreshAhead.layer(Items, { table, key: (pk) => String(pk.id), redis: { url: redisUrl, channel } }).pipe(
    Layer.provide(ReadThrough.layer(Items, Cache.Cache, { loader, ttl: "1 hour" })),
    Layer.provide(MemoryCache.layer()),
    Layer.provideMerge(ChangeFeed.layer),
    Layer.provideMerge(Layer.orDie(Database.layer({ url: databaseUrl })))
  )
)

await runtime.runPromise(Items)
process.stdout.write("ready\n")
for await (const line of createInterface({ input: process.stdin })) {
  const [command, id = ""] = line.trim().split(" ")
  if (command !== "get") continue
  const value = await runtime.runPromise(Effect.flatMap(Items, (rt) => rt.get(id)))
  process.stdout.write(`${JSON.stringify({ value: Option.getOrNull(value), loads })}\n`)
}
await runtime.dispose()
