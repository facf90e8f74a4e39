/**
 * effect-dal: entities from Effect Schema, type-checked query builders, one query service wrapped by
 * middleware, transactions as scoped resources, and caches as Layers.
 *
 * Modules that import an optional peer are not re-exported here, so importing this module needs none
 * of them: `effect-dal/RedisCache` and `effect-dal/RefreshAhead` (ioredis), `effect-dal/BloomFilter`
 * (bloom-filters), and the drivers `effect-dal/MysqlDriver`, `effect-dal/PgDriver`,
 * `effect-dal/SqliteDriver`, which `Database.layer` loads by itself.
 *
 * @since 0.1.0
 */
export * as Cache from "./Cache/Cache.js"
export * as CacheError from "./Cache/CacheError.js"
export * as FailOpen from "./Cache/FailOpen.js"
export * as MemoryCache from "./Cache/MemoryCache.js"
export * as QueryCache from "./Cache/QueryCache.js"
export * as RandomExpiration from "./Cache/RandomExpiration.js"
export * as RateLimited from "./Cache/RateLimited.js"
export * as ReadThrough from "./Cache/ReadThrough.js"
export * as Singleflight from "./Cache/Singleflight.js"
export * as WriteBack from "./Cache/WriteBack.js"
export * as WriteThrough from "./Cache/WriteThrough.js"
export * as Broker from "./Concurrency/Broker.js"
export * as TaskPool from "./Concurrency/TaskPool.js"
export * as Database from "./Layers/Database.js"
export * as ChangeCapture from "./Middleware/ChangeCapture.js"
export * as Metrics from "./Middleware/Metrics.js"
export * as Middleware from "./Middleware/Middleware.js"
export * as QueryLog from "./Middleware/QueryLog.js"
export * as SafeDml from "./Middleware/SafeDml.js"
export * as SlowQuery from "./Middleware/SlowQuery.js"
export * as Timeout from "./Middleware/Timeout.js"
export * as Tracing from "./Middleware/Tracing.js"
export * as Ast from "./Query/Ast.js"
export * as Batch from "./Query/Batch.js"
export * as ChangeFeed from "./Query/ChangeFeed.js"
export * as Compiler from "./Query/Compiler.js"
export * as Delete from "./Query/Delete.js"
export * as Dialect from "./Query/Dialect.js"
export * as ExecResult from "./Query/ExecResult.js"
export * as Executor from "./Query/Executor.js"
export * as Expr from "./Query/Expr.js"
export * as Insert from "./Query/Insert.js"
export * as QueryError from "./Query/QueryError.js"
export * as Raw from "./Query/Raw.js"
export * as Returning from "./Query/Returning.js"
export * as RowDecoder from "./Query/RowDecoder.js"
export * as Select from "./Query/Select.js"
export * as Session from "./Query/Session.js"
export * as Update from "./Query/Update.js"
export * as Entity from "./Schema/Entity.js"
export * as EntityError from "./Schema/EntityError.js"
export * as EntityModel from "./Schema/EntityModel.js"
export * as EntityRegistry from "./Schema/EntityRegistry.js"
export * as Tx from "./Tx/Tx.js"
export * as TxError from "./Tx/TxError.js"
