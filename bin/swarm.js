#!/usr/bin/env node
// The built command: `npm ci` (and `npm pack`) compile src/ to dist/ with TypeScript's compiler.
import '../dist/app/cli.js';
