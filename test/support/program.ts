/**
 * Runs the demo program as a user would: compiled once (`tsc -p tsconfig.demo.json`, what `npm start`
 * runs first), then started as `node .tmp/demo/Program.js` (or through `npm start`) in its own
 * process group on free ports. Also starts the servers it talks to (a MariaDB and a Redis of the
 * test's own, which the test can kill and restart). Every process started here is killed, with its
 * whole group, by `stopAll` (and by an exit hook if the run dies first).
 *
 * HTTP goes one connection per request (no keep-alive), so "a new connection is refused" means just
 * that. Waiting is polling with a deadline, never a fixed sleep.
 */
import { type ChildProcess, execFile, spawn } from "node:child_process"
import { mkdtemp, rm } from "node:fs/promises"
import * as Http from "node:http"
import { createServer } from "node:net"
import { tmpdir } from "node:os"
import { join, resolve } from "node:path"
import { promisify } from "node:util"
import * as Mysql from "mysql2/promise"

export const root = resolve(import.meta.dirname, "../..")

const run = promisify(execFile)

/** Compiles the program to `.tmp/demo` (incremental: quick when nothing changed). */
export const buildProgram = () => run("npx", ["tsc", "-p", "tsconfig.demo.json"], { cwd: root })

const groups = new Set<number>()

const killGroup = (pid: number, signal: NodeJS.Signals) => {
  try {
    process.kill(-pid, signal)
  } catch {
    // The group is gone already.
  }
}

/** Kills every process group started here that is still alive. */
export const stopAll = () => {
  for (const pid of groups) killGroup(pid, "SIGKILL")
  groups.clear()
}
process.once("exit", stopAll)

/** Whether any process of the group still exists. */
export const groupAlive = (pid: number) => {
  try {
    process.kill(-pid, 0)
    return true
  } catch {
    return false
  }
}

/** Polls `check` every 50 ms until it holds; fails after `ms`, saying what it waited for. */
export const waitFor = async (what: string, check: () => boolean | Promise<boolean>, ms = 15_000) => {
  const deadline = Date.now() + ms
  for (;;) {
    if (await Promise.resolve(check()).catch(() => false)) return
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`)
    await new Promise((done) => setTimeout(done, 50))
  }
}

/** Spawns `command` in a new process group, tracked for `stopAll`. */
const spawnGroup = (command: ReadonlyArray<string>, env: NodeJS.ProcessEnv, stdio: "pipe" | "ignore") => {
  const [bin, ...args] = command as [string, ...Array<string>]
  const child = spawn(bin, args, { cwd: root, env, stdio: ["ignore", stdio, stdio], detached: true })
  if (child.pid !== undefined) groups.add(child.pid)
  child.once("exit", () => {
    if (child.pid !== undefined && !groupAlive(child.pid)) groups.delete(child.pid)
  })
  return child
}

export interface Running {
  readonly child: ChildProcess
  readonly business: number
  readonly admin: number
  /** Everything the program printed so far. */
  readonly output: () => string
  /** Resolves with the exit code (or the signal's name). */
  readonly exited: Promise<number | string>
  /** SIGTERM, then the exit code; then the whole process group is killed if anything is left. */
  readonly stop: () => Promise<number | string>
}

export const programCommand = [process.execPath, ".tmp/demo/Program.js"]

/** Starts the program with `env` added (PORT/ADMIN_PORT 0: the program picks free ports and logs them). */
export const start = (
  env: Record<string, string | undefined>,
  command: ReadonlyArray<string> = programCommand
) =>
  new Promise<Running>((resolvePromise, reject) => {
    const child = spawnGroup(
      command,
      {
        ...process.env,
        DATABASE_URL: undefined,
        REDIS_URL: undefined,
        PORT: "0",
        ADMIN_PORT: "0",
        ...env
      },
      "pipe"
    )
    let out = ""
    let listening = false
    const exited = new Promise<number | string>((done) =>
      child.once("exit", (code, signal) => done(code ?? signal ?? "unknown"))
    )
    const stop = async () => {
      child.kill("SIGTERM")
      const code = await exited
      if (child.pid !== undefined) killGroup(child.pid, "SIGKILL")
      return code
    }
    const collect = (chunk: Buffer) => {
      out += chunk.toString()
      const match = listening
        ? null
        : /listening: business http:\/\/[^:]+:(\d+) admin http:\/\/[^:]+:(\d+)/.exec(out)
      if (match !== null) {
        listening = true
        resolvePromise({
          child,
          business: Number(match[1]),
          admin: Number(match[2]),
          output: () => out,
          exited,
          stop
        })
      }
    }
    child.stdout?.on("data", collect)
    child.stderr?.on("data", collect)
    void exited.then((code) => reject(new Error(`program exited (${code}) before listening:\n${out}`)))
  })

export interface Reply {
  readonly status: number
  readonly headers: Http.IncomingHttpHeaders
  readonly body: string
}

/** One request on its own connection; a body is sent as JSON. */
export const request = (
  port: number,
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {}
) =>
  new Promise<Reply>((done, fail) => {
    const payload = body === undefined ? undefined : JSON.stringify(body)
    const req = Http.request(
      {
        host: "127.0.0.1",
        port,
        method,
        path,
        agent: false,
        headers:
          payload === undefined
            ? headers
            : {
                "content-type": "application/json",
                "content-length": String(Buffer.byteLength(payload)),
                ...headers
              }
      },
      (res) => {
        let text = ""
        res.on("data", (c: Buffer) => {
          text += c.toString()
        })
        res.on("end", () => done({ status: res.statusCode ?? 0, headers: res.headers, body: text }))
        res.on("error", fail)
      }
    )
    req.on("error", fail)
    if (payload !== undefined) req.write(payload)
    req.end()
  })

export const json = <A>(reply: Reply): A => JSON.parse(reply.body) as A

/** The value of a Prometheus sample (0 when absent). */
export const metric = async (admin: number, sample: RegExp) => {
  const text = (await request(admin, "GET", "/metrics")).body
  const line = text.split("\n").find((l) => sample.test(l))
  return line === undefined ? 0 : Number(line.slice(line.lastIndexOf(" ") + 1))
}

/** Polls the in-flight gauge of the business server until it reaches `n`. */
export const waitInFlight = (app: Running, n: number) =>
  waitFor(`${n} requests in flight`, async () => {
    const now = await metric(app.admin, /^effect_dal_http_requests_in_flight\{server="business"\}/)
    return now >= n
  })

/** A port nothing listens on right now. */
export const freePort = () =>
  new Promise<number>((done, fail) => {
    const server = createServer()
    server.once("error", fail)
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      const port = typeof address === "object" && address !== null ? address.port : 0
      server.close(() => done(port))
    })
  })

/** A server process the test owns: killed hard and started again on the same port. */
export interface OwnedServer {
  readonly port: number
  readonly kill: () => Promise<void>
  readonly restart: () => Promise<void>
}

const owned = async (
  port: number,
  command: ReadonlyArray<string>,
  ready: () => Promise<boolean>,
  what: string
): Promise<OwnedServer> => {
  let child: ChildProcess | undefined
  const begin = async () => {
    child = spawnGroup(command, process.env, "ignore")
    await waitFor(`${what} on port ${port}`, ready, 60_000)
  }
  const kill = async () => {
    const current = child
    if (current?.pid === undefined || current.exitCode !== null || current.signalCode !== null) return
    const gone = new Promise((done) => current.once("exit", done))
    killGroup(current.pid, "SIGKILL")
    await gone
  }
  await begin()
  return { port, kill, restart: begin }
}

export interface OwnedMariadb extends OwnedServer {
  /** A URL to database `name` on it. */
  readonly url: (name: string) => string
  /** Runs SQL on it (outside any database unless the text names one). */
  readonly query: (sql: string) => Promise<unknown>
  /** Kills it and removes its data directory. */
  readonly destroy: () => Promise<void>
}

/** A `mariadbd` of the test's own: a fresh data directory under the temp dir, a free port, no grant tables. */
export const startMariadb = async (): Promise<OwnedMariadb> => {
  const dir = await mkdtemp(join(tmpdir(), "effect-dal-mariadb-"))
  const data = join(dir, "data")
  await run("mariadb-install-db", [
    "--no-defaults",
    `--datadir=${data}`,
    "--auth-root-authentication-method=normal",
    "--skip-test-db",
    "--user=root"
  ])
  const port = await freePort()
  const url = (name: string) => `mysql://root@127.0.0.1:${port}/${name}`
  const query = async (sql: string) => {
    const conn = await Mysql.createConnection({ host: "127.0.0.1", port, user: "root", connectTimeout: 1000 })
    try {
      const [rows] = await conn.query(sql)
      return rows
    } finally {
      await conn.end()
    }
  }
  const server = await owned(
    port,
    [
      "mariadbd",
      "--no-defaults",
      `--datadir=${data}`,
      `--port=${port}`,
      "--bind-address=127.0.0.1",
      `--socket=${join(dir, "mariadb.sock")}`,
      `--pid-file=${join(dir, "mariadb.pid")}`,
      "--skip-grant-tables",
      "--skip-log-bin",
      "--innodb-buffer-pool-size=32M",
      "--user=root"
    ],
    () => query("SELECT 1").then(() => true),
    "mariadbd"
  )
  return {
    ...server,
    url,
    query,
    destroy: async () => {
      await server.kill()
      await rm(dir, { recursive: true, force: true })
    }
  }
}
