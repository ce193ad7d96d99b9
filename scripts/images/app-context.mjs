// The build context of one service image: its compiled code, the libraries it uses and the production
// node_modules (the installed tree minus development packages, as `npm prune --omit=dev` would leave it), with
// normalised file modes so the layer depends only on file contents. Builds run with no network: nothing is
// installed inside the container.
import { execFileSync } from 'node:child_process';
import {
  chmodSync,
  cpSync,
  existsSync,
  linkSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readlinkSync,
  rmSync,
  symlinkSync,
} from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';

/** What each image carries beyond its own app: which libraries, and which node-llama-cpp binaries (if any). */
export const SERVICES = {
  gateway: { app: 'gateway', llama: null },
  'auth-audit': { app: 'auth-audit', llama: null },
  worker: { app: 'worker', llama: ['linux-x64'] },
  // Not built here (no CUDA base image on this machine); its context is prepared for hosts that have one.
  'worker-cuda': { app: 'worker', llama: ['linux-x64', 'linux-x64-cuda', 'linux-x64-cuda-ext'] },
};

/** Every production package directory of the installed tree, relative to the root (npm's own view). */
export function productionPackageDirs(root) {
  let out;
  try {
    out = execFileSync('npm', ['ls', '--omit=dev', '--all', '--parseable'], {
      cwd: root,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
      maxBuffer: 64 * 1024 * 1024,
    });
  } catch (error) {
    // npm ls exits non-zero on peer-range warnings but still prints the tree it found.
    out = error.stdout ?? '';
  }
  const dirs = out
    .split('\n')
    .filter(Boolean)
    .map((path) => relative(root, path))
    .filter((path) => path.startsWith(`node_modules${sep}`));
  if (dirs.length === 0) throw new Error('npm ls listed no production packages: run npm install first');
  return dirs.sort();
}

/** Copy a file tree, dropping nested node_modules (copied per package) and normalising modes to 0644/0755. */
function copyTree(from, to, { skipNodeModules }) {
  const stat = lstatSync(from);
  if (stat.isSymbolicLink()) {
    mkdirSync(dirname(to), { recursive: true });
    rmSync(to, { force: true });
    symlinkSync(readlinkSync(from), to);
    return;
  }
  if (stat.isDirectory()) {
    mkdirSync(to, { recursive: true });
    chmodSync(to, 0o755);
    for (const name of readdirSync(from)) {
      if (skipNodeModules && name === 'node_modules') continue;
      copyTree(join(from, name), join(to, name), { skipNodeModules });
    }
    return;
  }
  if (!stat.isFile()) return;
  mkdirSync(dirname(to), { recursive: true });
  const mode = stat.mode & 0o100 ? 0o755 : 0o644;
  // A hard link where the mode is already the normalised one (nearly always): no copy of hundreds of MB.
  if ((stat.mode & 0o7777) === mode) linkSync(from, to);
  else {
    cpSync(from, to);
    chmodSync(to, mode);
  }
}

/** dist/images/context/<service>/app: what the Dockerfile copies to /app. */
export function prepareAppContext(root, contextDir, service, packageDirs) {
  const spec = SERVICES[service];
  const app = join(contextDir, 'app');
  rmSync(contextDir, { recursive: true, force: true });
  mkdirSync(app, { recursive: true });
  chmodSync(contextDir, 0o755);
  chmodSync(app, 0o755);
  copyTree(join(root, 'package.json'), join(app, 'package.json'), { skipNodeModules: true });

  const appDir = join('apps', spec.app);
  if (!existsSync(join(root, appDir, 'dist', 'main.js')))
    throw new Error(`${appDir}/dist/main.js is missing: run npm run build first`);
  copyTree(join(root, appDir, 'package.json'), join(app, appDir, 'package.json'), { skipNodeModules: true });
  copyTree(join(root, appDir, 'dist'), join(app, appDir, 'dist'), { skipNodeModules: true });
  for (const lib of readdirSync(join(root, 'libs')).sort()) {
    for (const part of ['package.json', 'dist', 'proto']) {
      const from = join(root, 'libs', lib, part);
      if (existsSync(from)) copyTree(from, join(app, 'libs', lib, part), { skipNodeModules: true });
    }
  }

  // npm ls prints workspace packages by their real path; their links under node_modules/@airlock are added here.
  const links = readdirSync(join(root, 'node_modules', '@airlock')).map(
    (name) => `node_modules/@airlock/${name}`,
  );
  const llamaKept = new Set((spec.llama ?? []).map((name) => `node_modules/@node-llama-cpp/${name}`));
  for (const dir of [...packageDirs, ...links]) {
    const top = dir
      .split(sep)
      .slice(0, dir.startsWith('node_modules/@') ? 3 : 2)
      .join('/');
    const isLlama = top === 'node_modules/node-llama-cpp' || top.startsWith('node_modules/@node-llama-cpp/');
    if (isLlama && !spec.llama) continue;
    if (top.startsWith('node_modules/@node-llama-cpp/') && !llamaKept.has(top)) continue;
    const source = join(root, dir);
    if (lstatSync(source).isSymbolicLink()) {
      // Workspace links (node_modules/@airlock/*): keep those whose target is in this image.
      const target = resolve(dirname(source), readlinkSync(source));
      if (!existsSync(join(app, relative(root, target)))) continue;
    }
    copyTree(source, join(app, dir), { skipNodeModules: true });
  }
  return app;
}
