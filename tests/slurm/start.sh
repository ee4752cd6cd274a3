#!/usr/bin/env bash
# Start a real single-node Slurm cluster on this machine (slurmctld + slurmd on localhost),
# for tests/test_slurm.py and CI. Idempotent: a second call finds the cluster up and returns.
#
#   sudo bash tests/slurm/start.sh      # installs slurm-wlm + munge with apt if missing
#   sudo bash tests/slurm/stop.sh       # stops the daemons and removes the config it wrote
#
# What it sets up (no accounting database, so the Snakemake plugin needs
# --slurm-status-command squeue --slurm-no-account, and MinJobAge=600 keeps finished jobs
# visible to squeue long enough):
#   - munge with the key Debian's package generated (one is made if missing),
#   - /etc/slurm/slurm.conf with this node's real CPUs and memory (from `slurmd -C`),
#     partitions "cpu" (default) and "gpu" on the same node, the names profiles/slurm uses;
#     the node advertises one GPU GRES backed by /dev/null (no real device), so
#     the profile's GPU requests (--gpus=1 on partition gpu) are scheduled unchanged and
#     the training code, seeing no CUDA device, runs on the CPU.
# It refuses to overwrite a slurm.conf it did not write (a real site's cluster is left alone).
set -euo pipefail

MARK="# written by isslide tests/slurm/start.sh"
CONF_DIR=/etc/slurm
STATE=/var/lib/isslide-slurm
LOGS=/var/log/isslide-slurm

say() { echo "tests/slurm/start.sh: $*" >&2; }
die() { say "ERROR: $*"; exit 1; }

[ "$(id -u)" = 0 ] || die "must run as root (it installs packages and starts system daemons)"

if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v munged >/dev/null; then
    command -v apt-get >/dev/null || die "slurm-wlm/munge missing and apt-get unavailable"
    say "installing slurm-wlm and munge with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends slurm-wlm munge >/dev/null
fi

# ---- munge ----------------------------------------------------------------------------------
install -d -o munge -g munge -m 0700 /etc/munge
install -d -o munge -g munge -m 0711 /var/lib/munge /var/log/munge
install -d -o munge -g munge -m 0755 /run/munge
if [ ! -s /etc/munge/munge.key ]; then
    say "creating /etc/munge/munge.key"
    dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 status=none
    chown munge:munge /etc/munge/munge.key
    chmod 0400 /etc/munge/munge.key
fi
if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
    say "starting munged"
    runuser -u munge -- /usr/sbin/munged
    mkdir -p "$STATE" && touch "$STATE/munged.started"   # stop.sh stops only a munged we started
    for _ in $(seq 50); do munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && break; sleep 0.1; done
    munge -n | unmunge >/dev/null || die "munged does not answer (see /var/log/munge/munged.log)"
fi

# ---- slurm.conf -----------------------------------------------------------------------------
HOST=$(hostname -s)
mkdir -p "$CONF_DIR" "$STATE/ctld" "$STATE/d" "$LOGS"
# This node's real CPUs and memory, as slurmd itself detects them.
read -r NODE_HW < <(slurmd -C | head -n1 | sed -E 's/^NodeName=[^ ]+ //')
[ -n "$NODE_HW" ] || die "slurmd -C printed nothing"

CONF="$CONF_DIR/slurm.conf"
if [ -e "$CONF" ] && ! grep -qF "$MARK" "$CONF"; then
    die "$CONF exists and was not written by this script; refusing to overwrite a site's config"
fi
NEW=$(mktemp)
cat >"$NEW" <<CONF
$MARK
ClusterName=isslide-test
SlurmctldHost=$HOST(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/d
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=$LOGS/slurmctld.log
SlurmdLogFile=$LOGS/slurmd.log
SlurmctldPort=6817
SlurmdPort=6818
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
GresTypes=gpu
# No accounting database: finished jobs are only known to squeue for MinJobAge seconds.
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MinJobAge=600
ReturnToService=2
SlurmctldTimeout=30
SlurmdTimeout=60
InactiveLimit=0
KillWait=5
MpiDefault=none
NodeName=$HOST NodeAddr=127.0.0.1 $NODE_HW Gres=gpu:1 State=UNKNOWN
PartitionName=cpu Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
PartitionName=gpu Nodes=$HOST Default=NO MaxTime=INFINITE State=UP
CONF
GRES_NEW=$(mktemp)
printf '%s\n# One GPU GRES backed by /dev/null, no real device: GPU jobs are scheduled, the code finds no CUDA device.\nNodeName=%s Name=gpu Count=1 File=/dev/null\n' "$MARK" "$HOST" >"$GRES_NEW"

changed=0
if ! cmp -s "$NEW" "$CONF"; then install -m 0644 "$NEW" "$CONF"; changed=1; fi
if ! cmp -s "$GRES_NEW" "$CONF_DIR/gres.conf"; then
    if [ -e "$CONF_DIR/gres.conf" ] && ! grep -qF "$MARK" "$CONF_DIR/gres.conf"; then
        die "$CONF_DIR/gres.conf exists and was not written by this script"
    fi
    install -m 0644 "$GRES_NEW" "$CONF_DIR/gres.conf"; changed=1
fi
rm -f "$NEW" "$GRES_NEW"

alive() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }
if [ "$changed" = 1 ]; then
    # A changed config needs fresh daemons (only ours: identified by our pid files).
    for pid in "$STATE/slurmd.pid" "$STATE/slurmctld.pid"; do
        if alive "$pid"; then kill "$(cat "$pid")"; sleep 1; fi
    done
fi

if ! alive "$STATE/slurmctld.pid"; then
    say "starting slurmctld"
    slurmctld -c    # -c: start clean (no jobs or node states left from an earlier run)
fi
if ! alive "$STATE/slurmd.pid"; then
    say "starting slurmd"
    slurmd
fi

# ---- wait until the node takes jobs -----------------------------------------------------------
for _ in $(seq 60); do
    state=$(sinfo -h -n "$HOST" -o '%T' 2>/dev/null | head -n1 || true)
    case "$state" in
        idle*|mixed*|allocated*) break ;;
        inval*) break ;;  # a config the node contradicts: resuming cannot help
        drain*|down*) scontrol update NodeName="$HOST" State=RESUME >/dev/null 2>&1 || true ;;
    esac
    sleep 1
done
state=$(sinfo -h -n "$HOST" -o '%T' 2>/dev/null | head -n1 || true)
case "$state" in
    idle*|mixed*|allocated*) ;;
    *) say "node state '$state'; last log lines:"; tail -n 20 "$LOGS/slurmctld.log" "$LOGS/slurmd.log" >&2 || true
       die "the node did not become idle" ;;
esac
say "cluster up: $(sinfo -h -o '%P %D %c %m %G %T' | tr '\n' ';')"
