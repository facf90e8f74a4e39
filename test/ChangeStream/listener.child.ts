/**
 * A change-stream listener in its own process, so a test can SIGKILL it (no finalizer runs) and
 * start it again. Arguments: `mariadb <url> <position file> <table>` or `postgres <url> <slot>
 * <table>`. Prints `ready` once its stream has started, then one JSON line per transaction touching
 * `table` (the ids it changed), committing each one after printing it; commits are made durable
 * every 50 ms.
 */
import { Effect, Layer, Stream } from "effect"
import * as ChangeStream from "../../src/ChangeStream/ChangeStream.js"
import * as MariaDbBinlog from "../../src/ChangeStream/MariaDbBinlog.js"
import * as PositionStore from "../../src/ChangeStream/PositionStore.js"
import * as PostgresLogical from "../../src/ChangeStream/PostgresLogical.js"

const [kind, url = "", where = "", table = ""] = process.argv.slice(2)
const options = { commitInterval: "50 millis" } as const

const source =
  kind === "mariadb"
    ? MariaDbBinlog.layer({ url }, options).pipe(Layer.provide(PositionStore.layerFile(where)))
    : PostgresLogical.layer({ url, slot: where, publication: where }, options)

const program = Effect.gen(function* () {
  const stream = yield* ChangeStream.ChangeStream
  process.stdout.write("ready\n")
  yield* stream.changes.pipe(
    Stream.runForEach((tx) => {
      const ids = tx.changes.filter((c) => c.table === table).map((c) => Number(c.key?.id))
      return Effect.zipRight(
        ids.length === 0 ? Effect.void : Effect.sync(() => process.stdout.write(`${JSON.stringify(ids)}\n`)),
        stream.commit(tx)
      )
    })
  )
})

Effect.runFork(Effect.scoped(Effect.provide(program, source)))
