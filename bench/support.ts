/**
 * The shared bench harness: alternate the contenders for a few rounds so that drift on a busy machine
 * hits all of them alike, keep each one's best round, and print one table with ratios against a
 * named baseline. Benches measure; they never assert.
 */
import { performance } from "node:perf_hooks"

export interface Contender {
  readonly name: string
  /** Runs `ops` operations and resolves when all are done. */
  readonly run: (ops: number) => Promise<void>
}

export interface Row {
  readonly name: string
  readonly opsPerSec: number
}

/** Runs every contender `rounds` times, alternating, `ops` operations a round; best round wins. */
export const compare = async (
  contenders: ReadonlyArray<Contender>,
  options: { readonly ops: number; readonly rounds?: number; readonly warmupOps?: number }
): Promise<ReadonlyArray<Row>> => {
  const rounds = options.rounds ?? 5
  const best = new Map<string, number>()
  for (const c of contenders) await c.run(options.warmupOps ?? Math.max(1, Math.floor(options.ops / 10)))
  for (let round = 0; round < rounds; round++) {
    for (const c of contenders) {
      const start = performance.now()
      await c.run(options.ops)
      const rate = options.ops / ((performance.now() - start) / 1000)
      best.set(c.name, Math.max(best.get(c.name) ?? 0, rate))
    }
  }
  return contenders.map((c) => ({ name: c.name, opsPerSec: best.get(c.name) ?? 0 }))
}

/** Runs `total` calls of `op` with at most `concurrency` in flight. */
export const withConcurrency = async (total: number, concurrency: number, op: () => Promise<unknown>) => {
  let next = 0
  const worker = async () => {
    while (next < total) {
      next++
      await op()
    }
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, total) }, worker))
}

const fmt = (n: number) => (n >= 100 ? Math.round(n).toLocaleString("en-US") : n.toFixed(2))

/** Prints a table of rates with each row's ratio to `baseline` and, when given, the target ratio. */
export const printTable = (
  title: string,
  rows: ReadonlyArray<Row>,
  options: { readonly baseline: string; readonly unit?: string; readonly targets?: Record<string, number> }
) => {
  const base = rows.find((r) => r.name === options.baseline)?.opsPerSec ?? Number.NaN
  const unit = options.unit ?? "ops/s"
  const lines = rows.map((r) => {
    const ratio = r.opsPerSec / base
    const target = options.targets?.[r.name]
    const verdict = target === undefined ? "" : `target ≥ ${target}× ${ratio >= target ? "met" : "MISSED"}`
    return [r.name, fmt(r.opsPerSec), `${ratio.toFixed(2)}×`, verdict]
  })
  const header = ["contender", unit, `vs ${options.baseline}`, ""]
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => (l[i] ?? "").length)))
  const render = (cells: ReadonlyArray<string>) => cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join("  ")
  console.log(`\n## ${title}\n${render(header)}\n${widths.map((w) => "-".repeat(w)).join("  ")}`)
  for (const l of lines) console.log(render(l))
}
