// Finds, or builds, llama.cpp's own tools (llama-server, llama-batched-bench) from the llama.cpp source that
// node-llama-cpp ships inside its npm package (node_modules/node-llama-cpp/llama/gitRelease.bundle, a git
// bundle of the exact release its prebuilt binaries come from). Nothing is downloaded. The build is cached
// outside the repository, keyed by the bundle's commit:
//   ${AIRLOCK_LLAMA_CPP_CACHE:-~/.cache/airlock/llama.cpp}/<commit>/src/build/bin/
// A cold build takes ~8 min on 2 quiet cores (CPU only: no CUDA toolkit is assumed).
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';

const ROOT = resolve(import.meta.dirname, '..');
const BUNDLE = join(ROOT, 'node_modules/node-llama-cpp/llama/gitRelease.bundle');
const TARGETS = ['llama-server', 'llama-batched-bench'];

function bundleCommit() {
  if (!existsSync(BUNDLE)) throw new Error(`${BUNDLE} is missing: run "npm install" first`);
  const heads = execFileSync('git', ['bundle', 'list-heads', BUNDLE], { encoding: 'utf8' });
  const commit = heads.trim().split(/\s+/)[0];
  if (!/^[0-9a-f]{40}$/.test(commit)) throw new Error(`cannot read the commit of ${BUNDLE}`);
  return commit.slice(0, 12);
}

function run(command, args, options) {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'inherit', 'inherit'], ...options });
    child.on('error', reject);
    child.on('exit', (code) =>
      code === 0 ? resolvePromise() : reject(new Error(`${command} ${args.join(' ')} exited ${code}`)),
    );
  });
}

/** Paths of the built tools; builds them first when they are not in the cache (logs to stderr). */
export async function llamaCppTools({ log = (line) => process.stderr.write(`${line}\n`) } = {}) {
  const commit = bundleCommit();
  const cacheRoot = resolve(
    process.env.AIRLOCK_LLAMA_CPP_CACHE ?? join(homedir(), '.cache/airlock/llama.cpp'),
  );
  const source = join(cacheRoot, commit, 'src');
  const bin = join(source, 'build', 'bin');
  const tools = Object.fromEntries(TARGETS.map((name) => [name, join(bin, name)]));
  if (Object.values(tools).every((path) => existsSync(path))) return { commit, ...tools };

  log(
    `llama.cpp ${commit}: building ${TARGETS.join(', ')} from node-llama-cpp's bundled source in ${source}`,
  );
  mkdirSync(join(cacheRoot, commit), { recursive: true });
  if (!existsSync(join(source, 'CMakeLists.txt'))) {
    rmSync(source, { recursive: true, force: true });
    await run('git', ['clone', '--quiet', BUNDLE, source]);
  }
  const generator = spawnable('ninja') ? ['-G', 'Ninja'] : [];
  await run(
    'cmake',
    [
      '-B',
      'build',
      ...generator,
      '-DCMAKE_BUILD_TYPE=Release',
      '-DLLAMA_CURL=OFF',
      '-DLLAMA_OPENSSL=OFF',
      '-DLLAMA_BUILD_TESTS=OFF',
      '-DLLAMA_BUILD_SERVER=ON',
      '-DGGML_NATIVE=ON',
    ],
    { cwd: source },
  );
  const jobs = String(Math.max(1, Number(process.env.AIRLOCK_BUILD_JOBS ?? 2)));
  await run('cmake', ['--build', 'build', '-j', jobs, '--target', ...TARGETS], { cwd: source });
  for (const path of Object.values(tools)) if (!existsSync(path)) throw new Error(`build left no ${path}`);
  return { commit, ...tools };
}

function spawnable(command) {
  try {
    execFileSync(command, ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

// `node bench/llama-cpp-build.mjs` builds (or finds) the tools and prints where they are.
if (import.meta.url === `file://${process.argv[1]}`) {
  console.log(JSON.stringify(await llamaCppTools(), null, 2));
}
