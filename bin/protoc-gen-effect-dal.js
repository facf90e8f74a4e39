#!/usr/bin/env node
// protoc / buf plugin entry point. The package ships TypeScript sources, so the plugin is loaded
// through tsx (a dependency); it reads a CodeGeneratorRequest on stdin and writes the response.
import { tsImport } from "tsx/esm/api"

const { main } = await tsImport("../src/Codegen/Plugin.ts", import.meta.url)
main()
