import { afterAll, assert, describe, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { Cluster } from "ioredis"
import * as RedisCache from "../../src/Cache/RedisCache.js"
import { redisClusterOrSkip } from "../support/redisCluster.js"
import { contract } from "./CacheContract.js"

// Started at collection time so that the suite can be skipped (loudly) when the cluster cannot start.
const cluster = await redisClusterOrSkip()

afterAll(() => cluster?.stop())

describe.skipIf(cluster === undefined)("RedisCache on a 3-node Redis Cluster", () => {
  const nodes = cluster?.nodes ?? []
  /** A cache on its own Cluster client, which is quit when the layer's scope closes. */
  const clusterCache = (keyPrefix: string) =>
    Layer.unwrapScoped(
      Effect.map(
        Effect.acquireRelease(
          Effect.sync(() => new Cluster([...nodes])),
          (client) => Effect.ignore(Effect.tryPromise(() => client.quit()))
        ),
        (client) => RedisCache.layer({ client, keyPrefix })
      )
    )

  contract("RedisCache (cluster)", clusterCache("contract:"), { expiry: "server" })

  it.effect("keys spread over every master, and each composite runs on the key's own node", () =>
    Effect.gen(function* () {
      const cache = yield* RedisCache.RedisCache
      const keys = Array.from({ length: 30 }, (_, i) => `spread-${i}`)
      yield* Effect.forEach(keys, (k) => cache.loadOrStore(k, k), { discard: true })
      yield* Effect.forEach(keys, (k) => cache.incrBy(`${k}:n`, 2), { discard: true })
      const client = cache.client
      assert.instanceOf(client, Cluster)
      const masters = client instanceof Cluster ? client.nodes("master") : []
      assert.strictEqual(masters.length, 3)
      const perNode = yield* Effect.forEach(masters, (node) => Effect.promise(() => node.dbsize()))
      assert.isTrue(perNode.every((n) => n > 0))
      const values = yield* Effect.forEach(keys, (k) => cache.getOrFail(k))
      assert.deepStrictEqual(values, keys)
      assert.deepStrictEqual(yield* cache.getOrFail("spread-7:n"), 2)
    }).pipe(Effect.provide(clusterCache("spread:")))
  )
})
