#!/usr/bin/env node
// Runs the TypeScript CLI through tsx's loader, so `npx swarm` works in the repository.
import { register } from 'tsx/esm/api';

register();
await import('../src/app/cli.ts');
