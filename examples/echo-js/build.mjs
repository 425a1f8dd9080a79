// Builds this Minihost mini-app into dist/app.wasm (`npm run build`; `minihost app build` runs it
// and then checks the component as a server's upload would).
//
// 1. TypeScript (src/app.ts) is compiled by tsc into build/js; JavaScript (src/app.js) is used as is.
// 2. The minihost:app interfaces the code imports are read from its import statements, and a
//    world importing only those is written to build/wit, so the component imports what the code
//    uses (as a Rust app's does) and miniapp.toml's scopes must cover exactly that.
// 3. ComponentizeJS builds the component with every WASI feature disabled: no stdio, clocks,
//    random, HTTP or filesystem import, none of which the platform grants.
//
// Written by `minihost app new`; the same file for every app of this minihost version.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { componentize } from '@bytecodealliance/componentize-js';
import { init, parse } from 'es-module-lexer';

const PACKAGE = 'minihost:app@0.2.0';
const INTERFACES = ['messaging', 'profile', 'payments', 'storage', 'log', 'auth', 'timers'];
const NO_WASI = ['stdio', 'random', 'clocks', 'http', 'fetch-event'];

function fail(message) {
  console.error(`error: ${message}`);
  process.exit(1);
}

// The WIT: present, and the version this build speaks.
const witFile = join('wit', 'miniapp.wit');
if (!existsSync(witFile)) {
  fail(`${witFile} is missing: the app is built against the platform's WIT (${PACKAGE}); ` +
    '`minihost app wit > wit/miniapp.wit` writes the one your minihost speaks');
}
const wit = readFileSync(witFile, 'utf8');
const declared = /^\s*package\s+([^;\s]+)\s*;/m.exec(wit)?.[1];
if (declared !== PACKAGE) {
  fail(`${witFile} declares package ${declared ?? '(none)'}, but this build is for ${PACKAGE}`);
}

// The JavaScript to componentize.
let sourceDir = 'src';
let entry = join('src', 'app.js');
if (existsSync(join('src', 'app.ts'))) {
  const tsc = spawnSync(join('node_modules', '.bin', 'tsc'), ['-p', 'tsconfig.json'], {
    stdio: 'inherit',
  });
  if (tsc.error || tsc.status !== 0) {
    fail(`tsc failed${tsc.error ? `: ${tsc.error.message}` : ''}`);
  }
  sourceDir = join('build', 'js');
  entry = join(sourceDir, 'app.js');
}
if (!existsSync(entry)) {
  fail(`${entry} is missing: an app's entry point is src/app.js (or src/app.ts)`);
}

// The interfaces the code imports.
await init;
const used = new Set();
function scan(dir) {
  for (const item of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, item.name);
    if (item.isDirectory()) {
      scan(path);
    } else if (/\.m?js$/.test(item.name)) {
      let imports;
      try {
        [imports] = parse(readFileSync(path, 'utf8'), path);
      } catch (e) {
        fail(`${path}: ${e.message}`);
      }
      for (const { n: specifier } of imports) {
        if (!specifier?.startsWith('minihost:')) continue;
        const m = /^minihost:app\/([a-z-]+)@(.+)$/.exec(specifier);
        const version = PACKAGE.split('@')[1];
        if (!m || m[2] !== version) {
          fail(`${relative('.', path)} imports '${specifier}', which ${witFile} (${PACKAGE}) ` +
            `does not have: import 'minihost:app/INTERFACE@${version}'`);
        }
        if (m[1] === 'types') continue;
        if (!INTERFACES.includes(m[1])) {
          fail(`${relative('.', path)} imports '${specifier}': ${PACKAGE} has no interface ` +
            `'${m[1]}' (it has ${INTERFACES.join(', ')})`);
        }
        used.add(m[1]);
      }
    }
  }
}
scan(sourceDir);

// A world of the used interfaces, beside a copy of the WIT.
rmSync(join('build', 'wit'), { recursive: true, force: true });
mkdirSync(join('build', 'wit'), { recursive: true });
writeFileSync(join('build', 'wit', 'miniapp.wit'), wit);
const imports = INTERFACES.filter((i) => used.has(i)).map((i) => `  import ${i};\n`).join('');
writeFileSync(join('build', 'wit', 'app.wit'), `package ${PACKAGE};

/// The miniapp world, importing only what this app's code uses.
world app {
  use types.{context, event, content, error};
${imports}
  export handle: func(ctx: context, event: event) -> result<option<content>, error>;
}
`);

let component;
try {
  ({ component } = await componentize({
    sourcePath: entry,
    witPath: join('build', 'wit'),
    worldName: 'app',
    disableFeatures: NO_WASI,
  }));
} catch (e) {
  fail(`componentize-js: ${e.message ?? e}`);
}
mkdirSync('dist', { recursive: true });
writeFileSync(join('dist', 'app.wasm'), component);
console.log(`built dist/app.wasm (${Math.ceil(component.length / 1024)} KiB; imports: ` +
  `${[...used].sort().join(', ') || 'none'})`);
