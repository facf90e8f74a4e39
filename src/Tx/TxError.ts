/**
 * The transaction error: a failed BEGIN, COMMIT or ROLLBACK, a finished transaction used again, a
 * propagation rule broken, or an option the dialect does not have. Defined beside the transaction
 * engine in the query layer (batches fail with it too) and re-exported here.
 *
 * @since 0.1.0
 */
export { TxError, type TxErrorReason } from "../Query/TxError.js"
