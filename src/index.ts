/**
 * effect-dal: entities from Effect Schema, type-checked query builders, one query service wrapped by
 * middleware, transactions as scoped resources, and caches as Layers.
 *
 * Modules that import an optional peer are not re-exported here, so importing this module needs none
 * of them: `effect-dal/RedisCache` and `effect-dal/RefreshAhead` (ioredis), `effect-dal/BloomFilter`
 * (bloom-filters), the change-stream sources `effect-dal/MariaDbBinlog` (@vlasky/zongji) and
 * `effect-dal/PostgresLogical` (pg-logical-replication), and the drivers `effect-dal/MysqlDriver`,
 * `effect-dal/PgDriver`, `effect-dal/SqliteDriver`, which `Database.layer` loads by itself.
 *
 * @since 0.1.0
 * @module effect-dal
 */
/**
 * The cache service.
 *
 * @since 0.1.0
 */
export * as Cache from "./Cache/Cache.js"
/**
 * The cache error family.
 *
 * @since 0.1.0
 */
export * as CacheError from "./Cache/CacheError.js"
/**
 * Dead letters of write-back caches: entries the store refused for good, kept where they survive the
 * process.
 *
 * @since 0.1.0
 */
export * as DeadLetter from "./Cache/DeadLetter.js"
/**
 * Fail-open: a cache whose failures read as misses.
 *
 * @since 0.1.0
 */
export * as FailOpen from "./Cache/FailOpen.js"
/**
 * The local cache: TTLs, a bound on entries or bytes, LRU eviction or rejection.
 *
 * @since 0.1.0
 */
export * as MemoryCache from "./Cache/MemoryCache.js"
/**
 * The query cache.
 *
 * @since 0.1.0
 */
export * as QueryCache from "./Cache/QueryCache.js"
/**
 * Random expiration: TTLs spread so that keys written together do not expire together.
 *
 * @since 0.1.0
 */
export * as RandomExpiration from "./Cache/RandomExpiration.js"
/**
 * Rate-limited loads: a limiter on the way from a cache miss back to the database.
 *
 * @since 0.1.0
 */
export * as RateLimited from "./Cache/RateLimited.js"
/**
 * Read-through.
 *
 * @since 0.1.0
 */
export * as ReadThrough from "./Cache/ReadThrough.js"
/**
 * Singleflight: concurrent misses of one key share one load.
 *
 * @since 0.1.0
 */
export * as Singleflight from "./Cache/Singleflight.js"
/**
 * Write-back.
 *
 * @since 0.1.0
 */
export * as WriteBack from "./Cache/WriteBack.js"
/**
 * Write-through.
 *
 * @since 0.1.0
 */
export * as WriteThrough from "./Cache/WriteThrough.js"
/**
 * Change data capture: the committed row changes of a MariaDB binlog or a PostgreSQL logical slot as
 * a Stream of transactions (the sources are `effect-dal/MariaDbBinlog` and `effect-dal/PostgresLogical`).
 *
 * @since 0.1.0
 */
export * as ChangeStream from "./ChangeStream/ChangeStream.js"
/**
 * The one error of the change stream.
 *
 * @since 0.1.0
 */
export * as ChangeStreamError from "./ChangeStream/ChangeStreamError.js"
/**
 * Where a change stream keeps the position its consumer committed.
 *
 * @since 0.1.0
 */
export * as PositionStore from "./ChangeStream/PositionStore.js"
/**
 * An in-memory message broker with consumer groups.
 *
 * @since 0.1.0
 */
export * as Broker from "./Concurrency/Broker.js"
/**
 * A bounded pool of workers running submitted tasks.
 *
 * @since 0.1.0
 */
export * as TaskPool from "./Concurrency/TaskPool.js"
/**
 * A database as a Layer.
 *
 * @since 0.1.0
 */
export * as Database from "./Layers/Database.js"
/**
 * Publishes a `ChangeEvent` to the `ChangeFeed` after every successful INSERT, UPDATE or DELETE.
 *
 * @since 0.1.0
 */
export * as ChangeCapture from "./Middleware/ChangeCapture.js"
/**
 * Query metrics as Effect Metrics: a counter of queries and a histogram of their durations.
 *
 * @since 0.1.0
 */
export * as Metrics from "./Middleware/Metrics.js"
/**
 * Building blocks for query middleware.
 *
 * @since 0.1.0
 */
export * as Middleware from "./Middleware/Middleware.js"
/**
 * Logs every query.
 *
 * @since 0.1.0
 */
export * as QueryLog from "./Middleware/QueryLog.js"
/**
 * Guards against writes that touch a whole table.
 *
 * @since 0.1.0
 */
export * as SafeDml from "./Middleware/SafeDml.js"
/**
 * A warning, with the SQL and the duration, for every query slower than a threshold.
 *
 * @since 0.1.0
 */
export * as SlowQuery from "./Middleware/SlowQuery.js"
/**
 * A per-query timeout.
 *
 * @since 0.1.0
 */
export * as Timeout from "./Middleware/Timeout.js"
/**
 * A span per query, named `<TYPE> <table>`.
 *
 * @since 0.1.0
 */
export * as Tracing from "./Middleware/Tracing.js"
/**
 * DDL text per dialect for `TableSpec`s.
 *
 * @since 0.1.0
 */
export * as Ddl from "./Migrations/Ddl.js"
/**
 * The ordered statements that turn a live schema into the one the entities describe.
 *
 * @since 0.1.0
 */
export * as Diff from "./Migrations/Diff.js"
/**
 * Reads the live schema of a database into `TableSpec`s.
 *
 * @since 0.1.0
 */
export * as Introspect from "./Migrations/Introspect.js"
/**
 * What schema changes fail with.
 *
 * @since 0.1.0
 */
export * as MigrationError from "./Migrations/MigrationError.js"
/**
 * Generated migrations as ordinary @effect/sql Migrator migrations.
 *
 * @since 0.1.0
 */
export * as MigrationFiles from "./Migrations/MigrationFiles.js"
/**
 * Tables from entities: create them, read the live schema, diff the two, apply the difference.
 *
 * @since 0.1.0
 */
export * as Migrations from "./Migrations/Migrations.js"
/**
 * Tables as the schema diff sees them, for the entities and for a live database alike.
 *
 * @since 0.1.0
 */
export * as TableSpec from "./Migrations/TableSpec.js"
/**
 * Statement nodes.
 *
 * @since 0.1.0
 */
export * as Ast from "./Query/Ast.js"
/**
 * Batches of writes that are all or nothing.
 *
 * @since 0.1.0
 */
export * as Batch from "./Query/Batch.js"
/**
 * The feed of committed writes.
 *
 * @since 0.1.0
 */
export * as ChangeFeed from "./Query/ChangeFeed.js"
/**
 * Compiles statement nodes into SQL text and bound parameters for one dialect.
 *
 * @since 0.1.0
 */
export * as Compiler from "./Query/Compiler.js"
/**
 * DELETE builder.
 *
 * @since 0.1.0
 */
export * as Delete from "./Query/Delete.js"
/**
 * What a statement is (operation, tables written, whole-table writes), decided once when it is built.
 *
 * @since 0.1.0
 */
export * as Description from "./Query/Description.js"
/**
 * What differs between the SQL dialects.
 *
 * @since 0.1.0
 */
export * as Dialect from "./Query/Dialect.js"
/**
 * What INSERT, UPDATE, DELETE and a raw `exec` report, with one meaning on every dialect.
 *
 * @since 0.1.0
 */
export * as ExecResult from "./Query/ExecResult.js"
/**
 * The one query service.
 *
 * @since 0.1.0
 */
export * as Executor from "./Query/Executor.js"
/**
 * Expressions.
 *
 * @since 0.1.0
 */
export * as Expr from "./Query/Expr.js"
/**
 * INSERT builder.
 *
 * @since 0.1.0
 */
export * as Insert from "./Query/Insert.js"
/**
 * The error family of queries.
 *
 * @since 0.1.0
 */
export * as QueryError from "./Query/QueryError.js"
/**
 * Raw SQL through the Executor, for what the builders do not express.
 *
 * @since 0.1.0
 */
export * as Raw from "./Query/Raw.js"
/**
 * The builder an INSERT, UPDATE or DELETE becomes after `.returning(...)`.
 *
 * @since 0.1.0
 */
export * as Returning from "./Query/Returning.js"
/**
 * Turns driver rows into typed values.
 *
 * @since 0.1.0
 */
export * as RowDecoder from "./Query/RowDecoder.js"
/**
 * SELECT builder.
 *
 * @since 0.1.0
 */
export * as Select from "./Query/Select.js"
/**
 * A Session is one database as the query layer sees it.
 *
 * @since 0.1.0
 */
export * as Session from "./Query/Session.js"
/**
 * The Database's own `SqlClient`, bound to its Session.
 *
 * @since 0.1.0
 */
export * as SessionClient from "./Query/SessionClient.js"
/**
 * UPDATE builder.
 *
 * @since 0.1.0
 */
export * as Update from "./Query/Update.js"
/**
 * Annotations that turn an Effect Schema Class or Struct into an entity.
 *
 * @since 0.1.0
 */
export * as Entity from "./Schema/Entity.js"
/**
 * Errors raised while reading entity metadata or resolving field names against it.
 *
 * @since 0.1.0
 */
export * as EntityError from "./Schema/EntityError.js"
/**
 * Entity metadata derived once from an Effect Schema.
 *
 * @since 0.1.0
 */
export * as EntityModel from "./Schema/EntityModel.js"
/**
 * The per-database cache of entity models.
 *
 * @since 0.1.0
 */
export * as EntityRegistry from "./Schema/EntityRegistry.js"
/**
 * Transactions as context.
 *
 * @since 0.1.0
 */
export * as Tx from "./Tx/Tx.js"
/**
 * The transaction error.
 *
 * @since 0.1.0
 */
export * as TxError from "./Tx/TxError.js"
