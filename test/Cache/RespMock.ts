/**
 * A scripted Redis server for unit tests (a mock Redis client, one level lower): it speaks RESP on
 * a loopback port, so the real ioredis client parses whatever reply a test wants, including the ones
 * a real server never sends ("un ok"), replies that never come, and dropped connections.
 */
import * as Net from "node:net"
import { Effect } from "effect"

/** Raw RESP text to send back, silence, or a dropped connection. */
export type MockReply = string | { readonly hang: true } | { readonly close: true }

/** Parses one RESP array of bulk strings from `buf` at `at`; undefined when incomplete. */
const parseCommand = (buf: Buffer, at: number): { args: Array<string>; next: number } | undefined => {
  const line = (from: number) => {
    const end = buf.indexOf("\r\n", from)
    return end < 0 ? undefined : { text: buf.toString("utf8", from + 1, end), next: end + 2 }
  }
  const header = line(at)
  if (header === undefined) return undefined
  const args: Array<string> = []
  let next = header.next
  for (let i = 0; i < Number(header.text); i++) {
    const len = line(next)
    if (len === undefined) return undefined
    const end = len.next + Number(len.text)
    if (buf.length < end + 2) return undefined
    args.push(buf.toString("utf8", len.next, end))
    next = end + 2
  }
  return { args, next }
}

/** Starts the mock on a free loopback port for the scope's lifetime; `respond` sees lower-cased command names. */
export const respMock = (respond: (args: ReadonlyArray<string>) => MockReply) =>
  Effect.acquireRelease(
    Effect.async<{ server: Net.Server; sockets: Set<Net.Socket>; port: number }>((resume) => {
      const sockets = new Set<Net.Socket>()
      const server = Net.createServer((socket) => {
        sockets.add(socket)
        socket.on("close", () => sockets.delete(socket))
        let buf = Buffer.alloc(0)
        socket.on("data", (chunk) => {
          buf = Buffer.concat([buf, chunk])
          for (let parsed = parseCommand(buf, 0); parsed !== undefined; parsed = parseCommand(buf, 0)) {
            buf = buf.subarray(parsed.next)
            const [name = "", ...rest] = parsed.args
            const reply = respond([name.toLowerCase(), ...rest])
            if (typeof reply === "string") socket.write(reply)
            else if ("close" in reply) socket.destroy()
          }
        })
      })
      server.listen(0, "127.0.0.1", () => {
        const address = server.address()
        const port = typeof address === "object" && address !== null ? address.port : 0
        resume(Effect.succeed({ server, sockets, port }))
      })
    }),
    ({ server, sockets }) =>
      Effect.async<void>((resume) => {
        for (const socket of sockets) socket.destroy()
        server.close(() => resume(Effect.void))
      })
  ).pipe(Effect.map(({ port }) => port))

/** A RESP bulk string. */
export const bulk = (text: string) => `$${Buffer.byteLength(text)}\r\n${text}\r\n`
