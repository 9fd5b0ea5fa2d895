#!/bin/sh
# A throwaway PostgreSQL cluster for the tests: one temporary folder, 127.0.0.1 only,
# a free port, trust authentication, fsync off (nothing in it outlives the run).
#
#   eval "$(sh scripts/postgres.sh start)"   # exports HOOKLINE_TEST_POSTGRES_URL and
#                                             # HOOKLINE_POSTGRES_DIR
#   sh scripts/postgres.sh stop [DIR]         # stops the cluster and removes DIR
#   sh scripts/postgres.sh run CMD [ARG...]   # start, run CMD with the URL, stop
#
# Debian's postgresql package is installed when no server binaries are found and
# apt-get can be used (as root). `run` with no PostgreSQL to be had says so and runs
# CMD anyway with HOOKLINE_TEST_POSTGRES_SKIP set: the PostgreSQL tests then skip. With
# HOOKLINE_TEST_POSTGRES_URL already set, `run` uses that server and starts nothing.
set -eu

say() { echo "postgres.sh: $*" >&2; }

find_bin() {
    if command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
        dirname "$(readlink -f "$(command -v pg_ctl)")"
        return 0
    fi
    # Debian keeps the server binaries off PATH, one folder per major version.
    for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
        if [ -x "$dir/initdb" ] && [ -x "$dir/pg_ctl" ]; then
            echo "$dir"
            return 0
        fi
    done
    return 1
}

install_server() {
    if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
        say "no PostgreSQL server binaries, and apt-get is not usable here (not root or not Debian)"
        return 1
    fi
    say "installing Debian's postgresql package"
    # No cluster of the package's own: ours are made per run in a temporary folder.
    mkdir -p /etc/postgresql-common/createcluster.d
    echo "create_main_cluster = false" >/etc/postgresql-common/createcluster.d/hookline.conf
    apt-get update -qq >&2 || true
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Run "$@" as the cluster's owner: initdb and postgres refuse to run as root.
as_owner() {
    if [ "$(id -u)" = 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

start() {
    bin=$(find_bin) || { install_server && bin=$(find_bin); } || {
        say "PostgreSQL is not available"
        return 1
    }
    dir=$(mktemp -d "${TMPDIR:-/tmp}/hookline-pg.XXXXXX")
    chmod 755 "$dir"
    if [ "$(id -u)" = 0 ]; then
        id postgres >/dev/null 2>&1 || useradd --system --home-dir "$dir" postgres
        chown postgres "$dir"
    fi
    as_owner "$bin/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --locale=C.UTF-8 \
        --no-sync >"$dir/initdb.log" 2>&1 || {
        say "initdb failed:"
        cat "$dir/initdb.log" >&2
        rm -rf "$dir"
        return 1
    }
    port=$(free_port)
    options="-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=off"
    options="$options -c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
    if ! as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -o "$options" -w -t 60 \
        start >/dev/null; then
        say "the server did not start:"
        cat "$dir/server.log" >&2
        rm -rf "$dir"
        return 1
    fi
    echo "$bin" >"$dir/bin"
    if ! as_owner "$bin/createdb" -h 127.0.0.1 -p "$port" -U postgres hookline; then
        stop "$dir"
        return 1
    fi
    url="postgresql://postgres@127.0.0.1:$port/hookline"
    echo "$url" >"$dir/url"
    say "started $url in $dir"
    echo "export HOOKLINE_TEST_POSTGRES_URL=$url"
    echo "export HOOKLINE_POSTGRES_DIR=$dir"
}

stop() {
    dir=${1:-${HOOKLINE_POSTGRES_DIR:-}}
    if [ -z "$dir" ] || [ ! -d "$dir" ]; then
        say "stop: no cluster folder given (DIR or HOOKLINE_POSTGRES_DIR)"
        return 1
    fi
    if [ -f "$dir/bin" ] && [ -d "$dir/data" ]; then
        as_owner "$(cat "$dir/bin")/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 ||
            true
    fi
    rm -rf "$dir"
}

run() {
    if [ -n "${HOOKLINE_TEST_POSTGRES_URL:-}" ]; then
        "$@"
        return
    fi
    if ! started=$(start); then
        say "running without PostgreSQL: its tests will be skipped"
        # Tells the test fixtures not to try again.
        HOOKLINE_TEST_POSTGRES_SKIP="scripts/postgres.sh could not start PostgreSQL"
        export HOOKLINE_TEST_POSTGRES_SKIP
        "$@"
        return
    fi
    eval "$started"
    status=0
    trap 'stop "$HOOKLINE_POSTGRES_DIR"' EXIT
    trap 'exit 130' INT TERM
    "$@" || status=$?
    return "$status"
}

command=${1:-}
[ $# -gt 0 ] && shift
case "$command" in
start) start ;;
stop) stop "$@" ;;
run) run "$@" ;;
*)
    say "usage: postgres.sh start | stop [DIR] | run CMD [ARG...]"
    exit 2
    ;;
esac
