/**
 * Runs a command to completion: resolves with its exit code and output, never rejects.
 */
import { execFile } from "node:child_process"
import { resolve } from "node:path"

/** The repository's root. */
export const repoRoot = resolve(import.meta.dirname, "../..")

/** A binary of the repository's node_modules. */
export const bin = (name: string) => resolve(repoRoot, "node_modules", ".bin", name)

export interface Ran {
  readonly code: number
  readonly stdout: string
  readonly stderr: string
}

export const run = (
  command: string,
  args: ReadonlyArray<string>,
  options: { readonly cwd?: string; readonly env?: NodeJS.ProcessEnv } = {}
): Promise<Ran> =>
  new Promise((done) => {
    execFile(
      command,
      [...args],
      { cwd: options.cwd ?? repoRoot, env: options.env ?? process.env, maxBuffer: 64 << 20 },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === "number" ? error.code : -1
        done({ code, stdout, stderr })
      }
    )
  })

/** The process environment without npm's `npm_*` variables, for an npm run inside another project. */
export const cleanEnv = (): NodeJS.ProcessEnv =>
  Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.toLowerCase().startsWith("npm_")))
