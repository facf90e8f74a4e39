#!/usr/bin/env node
// The effect-dal command line (migrations). It runs from the TypeScript sources the package ships, so tsx (a
// peer the command needs, with @effect/cli and @effect/platform-node) is registered first: it loads the CLI,
// the entities module and the migration files.
import { register } from "tsx/esm/api"

register()
const { main } = await import("../src/Migrations/Cli.ts")
main(process.argv)
