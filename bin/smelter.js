#!/usr/bin/env node
'use strict';
// Runs the compiled CLI; falls back to the TypeScript sources through tsx in a source checkout.
const fs = require('node:fs');
const path = require('node:path');
const built = path.join(__dirname, '..', 'dist', 'cli', 'main.js');
let entry = built;
if (!fs.existsSync(built)) {
  try {
    require('tsx/cjs');
  } catch {
    console.error('smelter: not built yet — run `npm run build` first');
    process.exit(1);
  }
  entry = path.join(__dirname, '..', 'cli', 'main.ts');
}
require(entry)
  .main(process.argv.slice(2))
  .then(
    (code) => {
      process.exitCode = code;
    },
    (e) => {
      console.error(e);
      process.exitCode = 1;
    },
  );
