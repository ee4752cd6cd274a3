#!/usr/bin/env bash
# Stop the cluster started by tests/slurm/start.sh: its slurmd, slurmctld and munged (found by
# their pid files, nothing else is touched) and remove the slurm.conf/gres.conf it wrote, so
# Slurm clients on this machine (and the Snakemake SLURM plugin, which runs `scontrol show
# config` whenever it loads) do not wait on a controller that is gone.
#   bash tests/slurm/stop.sh          # state and logs stay under /var/lib|log/isslide-slurm
#   bash tests/slurm/stop.sh --purge  # also remove the state and logs
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
        if kill -0 "$pid" 2>/dev/null; then kill -9 "$pid"; fi
        echo "tests/slurm/stop.sh: stopped $name ($pid)" >&2
    fi
    rm -f "$file"
}

ours=0
if grep -qF "$MARK" /etc/slurm/slurm.conf 2>/dev/null; then ours=1; fi
stop_pidfile "$STATE/slurmd.pid" slurmd
stop_pidfile "$STATE/slurmctld.pid" slurmctld
if [ -e "$STATE/munged.started" ]; then
    # munged was started by start.sh; a munged that was already running is left alone.
    stop_pidfile /run/munge/munged.pid munged
    rm -f "$STATE/munged.started"
fi
if [ "$ours" = 1 ]; then
    for f in /etc/slurm/slurm.conf /etc/slurm/gres.conf; do
        if grep -qF "$MARK" "$f" 2>/dev/null; then rm -f "$f"; fi
    done
fi
if [ "${1:-}" = --purge ]; then
    rm -rf "$STATE" "$LOGS"
fi
