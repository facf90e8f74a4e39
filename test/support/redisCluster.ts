/**
 * A throwaway 3-node Redis Cluster for integration tests: three `redis-server` processes with
 * `--cluster-enabled yes` on free loopback ports, in a temporary directory, joined by
 * `redis-cli --cluster create ... --cluster-replicas 0 --cluster-yes`. `stop` kills them and removes
 * the directory; an exit hook kills them too if a run dies before its teardown.
 */
import { type ChildProcess, execFile } from "node:child_process"
import { mkdtemp, rm } from "node:fs/promises"
import * as Net from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { promisify } from "node:util"
import { ephemeralPort, host, spawnRedis, stopChild, waitUntil, withClient } from "./redisServer.js"

export interface RedisClusterNode {
  readonly host: string
  readonly port: number
}

export interface RedisCluster {
  readonly nodes: ReadonlyArray<RedisClusterNode>
  readonly stop: () => Promise<void>
}

const run = promisify(execFile)

const listenable = (port: number) =>
  new Promise<boolean>((resolve) => {
    const server = Net.createServer()
    server.once("error", () => resolve(false))
    server.listen(port, host, () => server.close(() => resolve(true)))
  })

/** A free port whose cluster bus port (port + 10000) is free as well. */
const freeClusterPort = async (taken: ReadonlyArray<number>): Promise<number> => {
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = await ephemeralPort()
    if (port > 0 && port <= 55535 && !taken.includes(port) && (await listenable(port + 10000))) return port
  }
  throw new Error("no free port pair for a cluster node")
}

const stopAll = async (children: ReadonlyArray<ChildProcess>, dir: string) => {
  await Promise.all(children.map((child) => stopChild(child)))
  await rm(dir, { recursive: true, force: true })
}

/** Starts a cluster of `size` masters (default 3); rejects with the reason if it cannot. */
export const startRedisCluster = async (size = 3): Promise<RedisCluster> => {
  const dir = await mkdtemp(join(tmpdir(), "effect-dal-cluster-"))
  const children: Array<ChildProcess> = []
  const killOnExit = () => {
    for (const child of children) child.kill("SIGKILL")
  }
  process.once("exit", killOnExit)
  const stop = async () => {
    process.removeListener("exit", killOnExit)
    await stopAll(children, dir)
  }
  try {
    const ports: Array<number> = []
    for (let i = 0; i < size; i++) ports.push(await freeClusterPort(ports))
    for (const port of ports) {
      const child = await spawnRedis([
        "--port",
        String(port),
        "--bind",
        host,
        "--cluster-enabled",
        "yes",
        "--cluster-config-file",
        `nodes-${port}.conf`,
        "--cluster-node-timeout",
        "5000",
        "--dir",
        dir,
        "--save",
        "",
        "--appendonly",
        "no"
      ])
      children.push(child)
    }
    for (const port of ports) {
      await waitUntil(`redis-server on ${port}`, 5000, () =>
        withClient(port, async (c) => (await c.ping()) === "PONG")
      )
    }
    await run(
      "redis-cli",
      [
        "--cluster",
        "create",
        ...ports.map((p) => `${host}:${p}`),
        "--cluster-replicas",
        "0",
        "--cluster-yes"
      ],
      { timeout: 30_000 }
    )
    for (const port of ports) {
      await waitUntil(`cluster_state:ok on ${port}`, 15_000, () =>
        withClient(port, async (c) => String(await c.call("CLUSTER", "INFO")).includes("cluster_state:ok"))
      )
    }
    return { nodes: ports.map((port) => ({ host, port })), stop }
  } catch (error) {
    await stop()
    throw error
  }
}

/**
 * The cluster, or `undefined` after a loud warning when it cannot start; under `REQUIRE_SERVICES=1`
 * a cluster that cannot start fails the run instead.
 */
export const redisClusterOrSkip = async (): Promise<RedisCluster | undefined> => {
  try {
    return await startRedisCluster()
  } catch (error) {
    if (process.env.REQUIRE_SERVICES === "1") {
      throw new Error(`REQUIRE_SERVICES=1 but the Redis Cluster could not start: ${String(error)}`)
    }
    console.warn(`\n!!! Redis Cluster could not start (${String(error)}): its suites are SKIPPED !!!\n`)
    return undefined
  }
}
