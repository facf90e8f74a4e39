/**
 * Runs the demo program (`src/Program.ts`) as a child process on free ports, and talks HTTP to it
 * with one connection per request (no keep-alive), so "a new connection is refused" means just that.
 */
import { type ChildProcess, spawn } from "node:child_process"
import * as Http from "node:http"
import { createServer } from "node:net"
import { resolve } from "node:path"

export const root = resolve(import.meta.dirname, "../..")

export interface Running {
  readonly child: ChildProcess
  readonly business: number
  readonly admin: number
  /** Everything the program printed so far. */
  readonly output: () => string
  /** Resolves with the exit code (or the signal's name). */
  readonly exited: Promise<number | string>
}

/** Starts the program with `env` added (PORT/ADMIN_PORT 0: the program picks free ports and logs them). */
export const start = (
  env: Record<string, string | undefined>,
  command: ReadonlyArray<string> = [process.execPath, "--import", "tsx", "src/Program.ts"]
) =>
  new Promise<Running>((resolvePromise, reject) => {
    const [bin, ...args] = command as [string, ...Array<string>]
    const child = spawn(bin, args, {
      cwd: root,
      env: {
        ...process.env,
        DATABASE_URL: undefined,
        REDIS_URL: undefined,
        PORT: "0",
        ADMIN_PORT: "0",
        ...env
      },
      stdio: ["ignore", "pipe", "pipe"],
      detached: false
    })
    let out = ""
    let listening = false
    const exited = new Promise<number | string>((done) =>
      child.once("exit", (code, signal) => done(code ?? signal ?? "unknown"))
    )
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
          exited
        })
      }
    }
    child.stdout?.on("data", collect)
    child.stderr?.on("data", collect)
    void exited.then((code) => reject(new Error(`program exited (${code}) before listening:\n${out}`)))
  })

export interface Reply {
  readonly status: number
  readonly body: string
}

/** One request on its own connection. */
export const request = (port: number, method: string, path: string, body?: unknown) =>
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
            ? {}
            : { "content-type": "application/json", "content-length": Buffer.byteLength(payload) }
      },
      (res) => {
        let text = ""
        res.on("data", (c: Buffer) => {
          text += c.toString()
        })
        res.on("end", () => done({ status: res.statusCode ?? 0, body: text }))
        res.on("error", fail)
      }
    )
    req.on("error", fail)
    if (payload !== undefined) req.write(payload)
    req.end()
  })

export const json = <A>(reply: Reply): A => JSON.parse(reply.body) as A

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
