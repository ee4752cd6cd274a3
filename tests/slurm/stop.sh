#!/usr/bin/env bash
# Stop the daemons started by tests/slurm/start.sh (only those: found by their pid files).
#   bash tests/slurm/stop.sh          # stop slurmd, slurmctld and munged
#   bash tests/slurm/stop.sh --purge  # also remove the config, state and logs it wrote
set -euo pipefail
MARK="# written by isslide tests/slurm/start.sh"
STATE=/var/lib/isslide-slurm
LOGS=/var/log/isslide-slurm

stop_pidfile() {  # stop_pidfile FILE NAME
    local file=$1 name=$2 pid
    [ -s "$file" ] || return 0
    pid=$(cat "$file")
    if kill -0 "$pid" 2>/dev/null; then
        kill "$pid"
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
        echo "tests/slurm/stop.sh: stopped $name ($pid)" >&2
    fi
    rm -f "$file"
}

stop_pidfile "$STATE/slurmd.pid" slurmd
stop_pidfile "$STATE/slurmctld.pid" slurmctld
# munged is only stopped when our slurm.conf is the one in place (it was started for it).
if grep -qF "$MARK" /etc/slurm/slurm.conf 2>/dev/null; then
    stop_pidfile /run/munge/munged.pid munged
fi

if [ "${1:-}" = --purge ]; then
    for f in /etc/slurm/slurm.conf /etc/slurm/gres.conf; do
        if grep -qF "$MARK" "$f" 2>/dev/null; then rm -f "$f"; fi
    done
    rm -rf "$STATE" "$LOGS"
fi
