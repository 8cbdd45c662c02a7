#!/usr/bin/env bash
# Provision a real TimescaleDB for tests: build the vendored extension against the machine's
# PostgreSQL 15 and run a throwaway cluster with it.
#
#   .ci/timescaledb.sh install   # apt packages + build (cached outside the clone) + install
#   .ci/timescaledb.sh start     # prints `export PEEBOT_TEST_TIMESCALEDB_URL=...` on stdout
#   .ci/timescaledb.sh url       # prints the URL if the cluster is running
#   .ci/timescaledb.sh stop      # stops the cluster and deletes its directory
#   .ci/timescaledb.sh [all]     # install + start;  usage: eval "$(.ci/timescaledb.sh)"
#
# Env: PEEBOT_TIMESCALEDB_TARBALL, PEEBOT_CACHE_DIR (~/.cache/peebot), PEEBOT_TIMESCALEDB_DIR
# (/tmp/peebot-timescaledb). Only the export line goes to stdout so the output can be eval'd.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
# In CI the clone sits beside a copy of shared/, so the tarball is found relative to the repo.
TARBALL=${PEEBOT_TIMESCALEDB_TARBALL:-$REPO/../shared/vendor/timescaledb-2.28.3.tar.gz}
PG_MAJOR=15
PG_BIN=/usr/lib/postgresql/$PG_MAJOR/bin
# /usr/bin/pg_config is Debian's wrapper and follows the newest dev package; pin the version.
PG_CONFIG=$PG_BIN/pg_config
CLUSTER_DIR=${PEEBOT_TIMESCALEDB_DIR:-/tmp/peebot-timescaledb}
DB=peebot_test
PACKAGES=("postgresql-$PG_MAJOR" "postgresql-server-dev-$PG_MAJOR" libssl-dev libkrb5-dev cmake gcc make)

log() { echo "timescaledb.sh: $*" >&2; }
die() { log "$*"; exit 1; }

SUDO=()
[[ $(id -u) -eq 0 ]] || SUDO=(sudo)
# PostgreSQL refuses to run as root, so as root the cluster belongs to `postgres`.
as_pg() { if [[ $(id -u) -eq 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi; }

install_packages() {
    local missing=() p
    for p in "${PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
    done
    [[ ${#missing[@]} -eq 0 ]] && return
    # The dev package at its newest version drags the server up with it (15.18 -> 15.20 here),
    # and on 15.20 TimescaleDB's scheduler fails every job ("cannot drop portal"): keep the
    # headers at the installed server's version when the mirror still has it.
    local server_version i
    server_version=$(dpkg-query -W -f='${Version}' "postgresql-$PG_MAJOR" 2>/dev/null || true)
    if [[ -n $server_version ]] && apt-cache show "postgresql-server-dev-$PG_MAJOR=$server_version" >/dev/null 2>&1; then
        for i in "${!missing[@]}"; do
            [[ ${missing[$i]} == "postgresql-server-dev-$PG_MAJOR" ]] && missing[$i]+="=$server_version"
        done
    fi
    log "installing ${missing[*]}"
    # Another apt run may hold the lock (e.g. a provisioning step); wait for it rather than fail.
    local apt=("${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=900 -q)
    "${apt[@]}" update >&2
    "${apt[@]}" install -y --no-install-recommends "${missing[@]}" >&2
}

cmd_install() {
    local t0=$SECONDS
    install_packages
    [[ -f $TARBALL ]] || die "tarball not found: $TARBALL (set PEEBOT_TIMESCALEDB_TARBALL)"
    local sha pgver key cache
    sha=$(sha256sum "$TARBALL" | cut -c1-16)
    pgver=$("$PG_CONFIG" --version | awk '{print $2}')
    key=$sha-pg$pgver
    cache=${PEEBOT_CACHE_DIR:-$HOME/.cache/peebot}/timescaledb/$key
    mkdir -p "$cache"
    # Serialise concurrent runs (two CI jobs, or a developer and a test) on the same cache entry.
    exec 9>"$cache/lock"
    flock 9
    if [[ ! -f $cache/ok ]]; then
        log "building TimescaleDB ($key), a few minutes; log: $cache/build.log"
        rm -rf "$cache/src" "$cache/stage"
        mkdir -p "$cache/src"
        # Chained with && because `set -e` does not apply inside an `if` condition.
        # The test folders must stay in the tree: CMake reads them even with the checks off.
        if ! (
            tar -xzf "$TARBALL" -C "$cache/src" --strip-components=1 &&
            cd "$cache/src" &&
            BUILD_FORCE_REMOVE=true ./bootstrap -DPG_CONFIG="$PG_CONFIG" -DREGRESS_CHECKS=OFF \
                -DTAP_CHECKS=OFF -DWARNINGS_AS_ERRORS=OFF -DAPACHE_ONLY=OFF &&
            make -C build -j"$(nproc)" &&
            make -C build install DESTDIR="$cache/stage"
        ) >"$cache/build.log" 2>&1; then
            die "build FAILED after $((SECONDS - t0))s, see $cache/build.log"
        fi
        rm -rf "$cache/src"   # only the staged files are reused
        touch "$cache/ok"
    fi
    # Not `cp -a`: it would re-own/re-mode /usr itself. --remove-destination replaces files by
    # unlinking, so a running postgres that has the old .so mapped does not crash.
    "${SUDO[@]}" cp -R --remove-destination "$cache/stage/." /
    exec 9>&-   # release the lock now, or a postgres started by `all` would inherit and hold it
    log "install done in $((SECONDS - t0))s ($key)"
}

url_file() { echo "$CLUSTER_DIR/url"; }
running() { [[ -f $CLUSTER_DIR/data/PG_VERSION ]] && as_pg "$PG_BIN/pg_ctl" status -D "$CLUSTER_DIR/data" >/dev/null 2>&1; }

free_port() {
    python3 - <<'EOF'
import socket
for port in range(55432, 55532):
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            continue
        print(port)
        break
else:
    raise SystemExit("no free port in 55432-55531")
EOF
}

cmd_start() {
    local t0=$SECONDS port url
    if running && [[ -f $(url_file) ]]; then
        echo "export PEEBOT_TEST_TIMESCALEDB_URL=$(cat "$(url_file)")"
        return
    fi
    [[ -f $("$PG_CONFIG" --pkglibdir)/timescaledb.so ]] || die "TimescaleDB not installed; run: $0 install"
    # A leftover directory (stopped cluster, reboot) is throwaway: start over from initdb.
    cmd_stop
    mkdir -p "$CLUSTER_DIR"
    [[ $(id -u) -eq 0 ]] && chown postgres: "$CLUSTER_DIR"
    as_pg "$PG_BIN/initdb" -D "$CLUSTER_DIR/data" -U postgres -A trust -E UTF8 --no-sync >"$CLUSTER_DIR/initdb.log" 2>&1 \
        || die "initdb failed, see $CLUSTER_DIR/initdb.log"
    port=$(free_port)
    # Trust auth and no fsync: this cluster holds test data only and must never face a network.
    as_pg tee -a "$CLUSTER_DIR/data/postgresql.conf" >/dev/null <<EOF
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$CLUSTER_DIR'
shared_preload_libraries = 'timescaledb'
timescaledb.telemetry_level = off
max_worker_processes = 24
fsync = off
synchronous_commit = off
full_page_writes = off
EOF
    as_pg "$PG_BIN/pg_ctl" start -w -D "$CLUSTER_DIR/data" -l "$CLUSTER_DIR/postgres.log" >/dev/null \
        || die "postgres failed to start, see $CLUSTER_DIR/postgres.log"
    "$PG_BIN/createdb" -h 127.0.0.1 -p "$port" -U postgres "$DB"
    url=postgresql://postgres@127.0.0.1:$port/$DB
    echo "$url" | as_pg tee "$(url_file)" >/dev/null
    log "cluster up in $((SECONDS - t0))s at $CLUSTER_DIR (log: $CLUSTER_DIR/postgres.log)"
    echo "export PEEBOT_TEST_TIMESCALEDB_URL=$url"
}

cmd_stop() {
    [[ -d $CLUSTER_DIR ]] || return 0
    # Guard the rm -rf: the directory comes from the environment.
    [[ -f $CLUSTER_DIR/url || -d $CLUSTER_DIR/data || -z $(ls -A "$CLUSTER_DIR") ]] \
        || die "$CLUSTER_DIR does not look like a cluster made by this script; not removing it"
    if running; then as_pg "$PG_BIN/pg_ctl" stop -D "$CLUSTER_DIR/data" -m fast >/dev/null; fi
    rm -rf "$CLUSTER_DIR"
    log "stopped and removed $CLUSTER_DIR"
}

cmd_url() {
    running && [[ -f $(url_file) ]] || die "not running (start with: $0 start)"
    cat "$(url_file)"
}

case "${1:-all}" in
    install) cmd_install ;;
    start) cmd_start ;;
    stop) cmd_stop ;;
    url) cmd_url ;;
    all) cmd_install; cmd_start ;;
    *) die "usage: $0 [install|start|stop|url|all]" ;;
esac
