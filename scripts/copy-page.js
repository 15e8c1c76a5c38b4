#!/usr/bin/env node
// Copies the status page's static files (src/observe/page/) next to the compiled
// module that serves them (dist/src/observe/page/): the published package ships
// dist/, not src/, and tsc copies only what it compiles.
import { cpSync, mkdirSync } from 'node:fs';

const from = new URL('../src/observe/page/', import.meta.url);
const to = new URL('../dist/src/observe/page/', import.meta.url);
mkdirSync(to, { recursive: true });
cpSync(from, to, { recursive: true });
