/**
 * Throwaway `redis-server` processes for integration tests that must kill, pause or restart their
 * server: loopback only, free ports, data in a temporary directory. An exit hook kills them if a run
 * dies before its teardown. `redisCluster.ts` builds its cluster from the same pieces.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { mkdtemp, rm } from "node:fs/promises"
import * as Net from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Redis } from "ioredis"

export const host = "127.0.0.1"

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** A port the OS says is free now. */
export const ephemeralPort = () =>
  new Promise<number>((resolve, reject) => {
    const server = Net.createServer()
    server.once("error", reject)
    server.listen(0, host, () => {
      const address = server.address()
      server.close(() => resolve(typeof address === "object" && address !== null ? address.port : 0))
    })
  })

/** Polls `check` every 100 ms until it holds or `ms` pass. */
export const waitUntil = async (what: string, ms: number, check: () => Promise<boolean>) => {
  const deadline = Date.now() + ms
  while (Date.now() < deadline) {
    if (await check().catch(() => false)) return
    await sleep(100)
  }
  throw new Error(`timed out waiting for ${what}`)
}

/** Runs `f` on a fresh client of the server on `port` that never retries, then disconnects it. */
export const withClient = async <A>(port: number, f: (client: Redis) => Promise<A>): Promise<A> => {
  const client = new Redis({
    host,
    port,
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null
  })
  client.on("error", () => {})
  try {
    await client.connect()
    return await f(client)
  } finally {
    client.disconnect()
  }
}

/** Stops `child` (SIGTERM, SIGKILL after 3 s; a paused one is resumed first) and waits for its exit. */
export const stopChild = (child: ChildProcess, signal: NodeJS.Signals = "SIGTERM") =>
  new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve()
    const force = setTimeout(() => child.kill("SIGKILL"), 3000)
    child.once("exit", () => {
      clearTimeout(force)
      resolve()
    })
    child.kill("SIGCONT")
    child.kill(signal)
  })

/** Spawns `redis-server` with `args` and waits until it has started. */
export const spawnRedis = async (args: ReadonlyArray<string>): Promise<ChildProcess> => {
  const child = spawn("redis-server", args, { stdio: "ignore" })
  await new Promise<void>((resolve, reject) => {
    child.once("spawn", resolve)
    child.once("error", reject)
  })
  return child
}

export interface RedisServer {
  readonly port: number
  readonly url: string
  /** SIGKILL: the server is gone at once (what it had not written to its append-only file too). */
  readonly kill: () => Promise<void>
  /** SIGSTOP / SIGCONT: connections stay open, nothing is answered. */
  readonly pause: () => void
  readonly resume: () => void
  /** Starts the server again on the same port and data directory, and waits until it answers. */
  readonly restart: () => Promise<void>
  readonly stop: () => Promise<void>
}

/** One server; its append-only file is synced on every write, so a restart keeps what was acknowledged. */
export const startRedisServer = async (): Promise<RedisServer> => {
  const dir = await mkdtemp(join(tmpdir(), "effect-dal-redis-"))
  const port = await ephemeralPort()
  let child: ChildProcess | undefined
  const killOnExit = () => child?.kill("SIGKILL")
  process.once("exit", killOnExit)
  const args = [
    "--port",
    String(port),
    "--bind",
    host,
    "--dir",
    dir,
    "--save",
    "",
    "--appendonly",
    "yes",
    "--appendfsync",
    "always"
  ]
  const start = async () => {
    child = await spawnRedis(args)
    await waitUntil(`redis-server on ${port}`, 10_000, () =>
      withClient(port, async (c) => (await c.ping()) === "PONG")
    )
  }
  const stop = async () => {
    process.removeListener("exit", killOnExit)
    if (child !== undefined) await stopChild(child)
    await rm(dir, { recursive: true, force: true })
  }
  try {
    await start()
  } catch (error) {
    await stop()
    throw error
  }
  return {
    port,
    url: `redis://${host}:${port}`,
    kill: async () => {
      if (child !== undefined) await stopChild(child, "SIGKILL")
    },
    pause: () => child?.kill("SIGSTOP"),
    resume: () => child?.kill("SIGCONT"),
    restart: start,
    stop
  }
}
