#!/usr/bin/env node
// protoc / buf plugin entry point: reads a CodeGeneratorRequest on stdin and writes the response.
import { main } from "../dist/Plugin.js"

main()
