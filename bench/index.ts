/**
 * `npm run bench [name...]`: runs every bench (or the named ones) and prints their tables.
 * Benches measure; they never fail on a missed target, they print it.
 */
const benches: Record<string, () => Promise<{ readonly run: () => Promise<void> }>> = {
  select: () => import("./Select.js"),
  writes: () => import("./Writes.js"),
  cache: () => import("./Cache.js"),
  "cache-patterns": () => import("./CachePatterns.js"),
  "change-stream": () => import("./ChangeStream.js")
}

const wanted = process.argv.slice(2)
const unknown = wanted.filter((name) => !(name in benches))
if (unknown.length > 0) {
  console.error(`Unknown bench(es): ${unknown.join(", ")}. Known: ${Object.keys(benches).join(", ")}`)
  process.exit(2)
}
for (const [name, load] of Object.entries(benches)) {
  if (wanted.length > 0 && !wanted.includes(name)) continue
  console.log(`\n# ${name}`)
  await (await load()).run()
}
