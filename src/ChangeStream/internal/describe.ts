/**
 * The message of a driver's failure, for an error's `detail`.
 *
 * @internal
 */
export const describe = (cause: unknown): string => (cause instanceof Error ? cause.message : String(cause))
