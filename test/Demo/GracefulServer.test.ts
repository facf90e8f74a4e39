/**
 * GracefulServer's limits against slow and greedy clients, in process: a client that never finishes
 * its headers is answered 408 and disconnected after `headersTimeoutMs`, and connections beyond
 * `maxConnections` are closed at once.
 */
import * as Net from "node:net"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { NodeHttpServer } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import * as GracefulServer from "../../src/Demo/GracefulServer.js"

/** Opens a connection, writes `text`, and resolves with what the server sent once it closes the connection. */
const exchange = (port: number, text: string) =>
  Effect.async<string>((resume) => {
    const socket = Net.connect(port, "127.0.0.1", () => socket.write(text))
    let received = ""
    socket.on("data", (c) => {
      received += c.toString()
    })
    socket.on("close", () => resume(Effect.succeed(received)))
    socket.on("error", () => {})
    return Effect.sync(() => socket.destroy())
  })

const app = HttpServerResponse.text("ok")

describe("GracefulServer", () => {
  it.scopedLive("a client that never finishes its headers gets 408 and is disconnected", () =>
    Effect.gen(function* () {
      const server = yield* GracefulServer.serve(
        "test",
        { host: "127.0.0.1", port: 0, headersTimeoutMs: 500, requestTimeoutMs: 1_000 },
        app
      ).pipe(Effect.provide(NodeHttpServer.layerContext))
      const started = Date.now()
      const answer = yield* exchange(server.port, "GET / HTTP/1.1\r\nHost: x\r\n").pipe(
        Effect.timeoutFail({ duration: "10 seconds", onTimeout: () => "still open after 10 s" })
      )
      expect(answer).toMatch(/^HTTP\/1\.1 408/)
      expect(Date.now() - started).toBeGreaterThanOrEqual(500)
    })
  )

  it.scopedLive("connections beyond maxConnections are closed at once", () =>
    Effect.gen(function* () {
      const server = yield* GracefulServer.serve(
        "test",
        { host: "127.0.0.1", port: 0, maxConnections: 1, headersTimeoutMs: 5_000, requestTimeoutMs: 5_000 },
        app
      ).pipe(Effect.provide(NodeHttpServer.layerContext))
      const holder = Net.connect(server.port, "127.0.0.1")
      holder.on("error", () => {})
      yield* Effect.addFinalizer(() => Effect.sync(() => holder.destroy()))
      // A keep-alive request answered on it: the server has surely counted this connection.
      holder.write("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
      yield* Effect.async<void>((resume) => {
        holder.once("data", () => resume(Effect.void))
      })
      const refused = yield* exchange(server.port, "GET / HTTP/1.1\r\nHost: x\r\n\r\n").pipe(
        Effect.timeoutFail({ duration: "10 seconds", onTimeout: () => "still open after 10 s" })
      )
      expect(refused).toBe("")
    })
  )
})
