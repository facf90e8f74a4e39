/**
 * End-to-end latency of change data capture: from a plain SQL client's commit (the moment its
 * UPDATE returns) to the change's event in the `ChangeFeed` (the moment refresh-ahead reads, the
 * query cache and the bloom filter see it), one change at a time; then a burst of 10,000 row
 * changes in 1,000 transactions sent back to back, timed from the first write sent to the last event
 * (the writer, not the stream, is the bound there: "after last commit" near 0 means the stream kept
 * up). MariaDB writes its binlog before it answers the client, so its events can precede the
 * writer's acknowledgement by a little. Each source runs
 * on its own throwaway server (MariaDB with a ROW binlog, PostgreSQL with wal_level=logical).
 */
import { performance } from "node:perf_hooks"
import { Layer, ManagedRuntime, Queue, Scope } from "effect"
import * as Mysql from "mysql2/promise"
import Pg from "pg"
import * as ChangeStream from "../src/ChangeStream/ChangeStream.js"
import * as MariaDbBinlog from "../src/ChangeStream/MariaDbBinlog.js"
import * as PositionStore from "../src/ChangeStream/PositionStore.js"
import * as PostgresLogical from "../src/ChangeStream/PostgresLogical.js"
import * as ChangeFeed from "../src/Query/ChangeFeed.js"
import { type LogServer, startMariaDb, startPostgres } from "../test/support/logServers.js"

const singles = 300
const burstTransactions = 1000
const rowsPerTransaction = 10

interface Writer {
  readonly query: (statement: string) => Promise<unknown>
  readonly close: () => Promise<void>
}

interface Target {
  readonly name: string
  readonly start: () => Promise<LogServer>
  readonly writer: (url: string) => Promise<Writer>
  readonly stream: (url: string) => Layer.Layer<ChangeStream.ChangeStream, unknown>
}

const targets: ReadonlyArray<Target> = [
  {
    name: "MariaDB binlog",
    start: startMariaDb,
    writer: async (url) => {
      const conn = await Mysql.createConnection({ uri: url })
      return { query: (s) => conn.query(s), close: () => conn.end() }
    },
    stream: (url) => MariaDbBinlog.layer({ url }).pipe(Layer.provide(PositionStore.layerMemory))
  },
  {
    name: "PostgreSQL pgoutput",
    start: startPostgres,
    writer: async (url) => {
      const client = new Pg.Client({ connectionString: url })
      await client.connect()
      // One statement at a time, in order: pg no longer queues concurrent queries quietly.
      let last: Promise<unknown> = Promise.resolve()
      return {
        query: (s) => {
          last = last.then(() => client.query(s))
          return last
        },
        close: () => client.end()
      }
    },
    stream: (url) => PostgresLogical.layer({ url, slot: "bench" })
  }
]

const percentile = (sorted: ReadonlyArray<number>, p: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN

interface Result {
  readonly latencies: ReadonlyArray<number>
  readonly burstPerSec: number
  readonly drainMs: number
}

const measure = async (target: Target): Promise<Result> => {
  const server = await target.start()
  const writer = await target.writer(server.url)
  const runtime = ManagedRuntime.make(
    ChangeStream.layerChangeFeed().pipe(
      Layer.provide(target.stream(server.url)),
      Layer.provideMerge(ChangeFeed.layer)
    )
  )
  try {
    await writer.query("CREATE TABLE bench_items (id INT PRIMARY KEY, n INT NOT NULL)")
    await writer.query("INSERT INTO bench_items VALUES (0, 0)")
    // Building the runtime starts following the change log; this subscription lives for the run.
    const scope = await runtime.runPromise(Scope.make())
    const events = await runtime.runPromise(Scope.extend(ChangeFeed.subscribe, scope))
    const next = () => runtime.runPromise(Queue.take(events))

    const latencies: Array<number> = []
    for (let i = 1; i <= singles + 20; i++) {
      await writer.query(`UPDATE bench_items SET n = ${i} WHERE id = 0`)
      const committed = performance.now()
      let event = await next()
      while (event.table !== "bench_items") event = await next()
      if (i > 20) latencies.push(performance.now() - committed)
    }

    const started = performance.now()
    const writes = Promise.all(
      Array.from({ length: burstTransactions }, (_, t) => {
        const rows = Array.from(
          { length: rowsPerTransaction },
          (_, r) => `(${t * rowsPerTransaction + r + 1}, ${t})`
        )
        return writer.query(`INSERT INTO bench_items VALUES ${rows.join(", ")}`)
      })
    ).then(() => performance.now())
    for (let seen = 0; seen < burstTransactions * rowsPerTransaction; ) {
      const event = await next()
      if (event.table === "bench_items") seen++
    }
    const done = performance.now()
    const written = await writes
    return {
      latencies: latencies.sort((a, b) => a - b),
      burstPerSec: (burstTransactions * rowsPerTransaction) / ((done - started) / 1000),
      drainMs: done - written
    }
  } finally {
    await runtime.dispose()
    await writer.close().catch(() => undefined)
    await server.stop()
  }
}

const ms = (n: number) => n.toFixed(1)

export const run = async () => {
  const header = ["source", "p50 ms", "p95 ms", "p99 ms", "max ms", "burst changes/s", "after last commit ms"]
  const lines: Array<ReadonlyArray<string>> = []
  for (const target of targets) {
    try {
      const r = await measure(target)
      lines.push([
        target.name,
        ms(percentile(r.latencies, 50)),
        ms(percentile(r.latencies, 95)),
        ms(percentile(r.latencies, 99)),
        ms(r.latencies.at(-1) ?? Number.NaN),
        Math.round(r.burstPerSec).toLocaleString("en-US"),
        ms(r.drainMs)
      ])
    } catch (error) {
      lines.push([target.name, `could not run: ${String(error)}`])
    }
  }
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => (l[i] ?? "").length)))
  const render = (cells: ReadonlyArray<string>) => cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join("  ")
  console.log(
    `\n## commit → ChangeFeed event (${singles} single changes, then ${burstTransactions * rowsPerTransaction} in ${burstTransactions} transactions)`
  )
  console.log(`${render(header)}\n${widths.map((w) => "-".repeat(w)).join("  ")}`)
  for (const l of lines) console.log(render(l))
}
