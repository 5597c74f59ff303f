#!/bin/bash
# A one-node Slurm cluster on localhost, for testing the Slurm recipe (docs/scale-out.md):
# munged, slurmctld and slurmd run from DIR with a generated slurm.conf (their own key, socket,
# ports, state and logs), so nothing of the machine's Slurm or munge setup is used or changed.
#   scripts/slurm/local-cluster.sh start DIR   # prints "export SLURM_CONF=DIR/slurm.conf"
#   scripts/slurm/local-cluster.sh stop DIR    # stops the three daemons it started
#   scripts/slurm/local-cluster.sh install     # apt-get install slurm-wlm munge if missing
# Exit status 77: the packages are missing and cannot be installed here (the reason is printed).
set -euo pipefail

need=(munged slurmctld slurmd sbatch squeue scontrol)
missing() {
    local m=()
    for b in "${need[@]}"; do command -v "$b" >/dev/null || [ -x "/usr/sbin/$b" ] || m+=("$b"); done
    echo "${m[*]}"
}

install() {
    [ -z "$(missing)" ] && return 0
    if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
        echo "slurm not installed and apt-get is not usable here (need root and Debian): missing $(missing)" >&2
        exit 77
    fi
    if ! DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends slurm-wlm munge >/dev/null 2>&1
    then
        apt-get update >/dev/null 2>&1 || true
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends slurm-wlm munge >/dev/null 2>&1 || {
            echo "apt-get install slurm-wlm munge failed (no package index or network?)" >&2
            exit 77
        }
    fi
    [ -z "$(missing)" ] || { echo "slurm-wlm installed but still missing: $(missing)" >&2; exit 77; }
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

start() {
    local dir
    dir=$(cd "$1" && pwd)
    # The daemons must not inherit the caller's descriptors beyond stdio (a caller waiting for a
    # pipe to close, such as Foundation's Process, would wait for the daemons to exit).
    local fd
    for fd in $(ls /proc/$$/fd); do
        if [ "$fd" -gt 2 ]; then eval "exec $fd>&-" 2>/dev/null || true; fi
    done
    exec </dev/null
    export PATH="$PATH:/usr/sbin"
    [ -z "$(missing)" ] || { echo "slurm not installed: missing $(missing) (run: $0 install)" >&2; exit 77; }
    mkdir -p "$dir/state" "$dir/spool" "$dir/munge"
    chmod 700 "$dir/munge"
    head -c 1024 /dev/urandom >"$dir/munge/munge.key"
    chmod 400 "$dir/munge/munge.key"
    munged --force --key-file="$dir/munge/munge.key" --socket="$dir/munge/munge.socket" \
        --pid-file="$dir/munge/munged.pid" --log-file="$dir/munge/munged.log" \
        --seed-file="$dir/munge/munged.seed"
    local user cpus
    user=$(id -un)
    cpus=$(nproc)
    cat >"$dir/slurm.conf" <<EOF
ClusterName=headlight-test
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort=$(free_port)
SlurmdPort=$(free_port)
SlurmUser=$user
SlurmdUser=$user
AuthType=auth/munge
AuthInfo=socket=$dir/munge/munge.socket
CredType=cred/munge
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/slurmctld.log
SlurmdLogFile=$dir/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/builtin
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
MpiDefault=none
JobCompType=jobcomp/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MaxArraySize=64
NodeName=hlnode NodeAddr=127.0.0.1 NodeHostname=localhost CPUs=$cpus State=UNKNOWN
PartitionName=debug Nodes=hlnode Default=YES MaxTime=INFINITE State=UP OverSubscribe=YES
EOF
    export SLURM_CONF="$dir/slurm.conf"
    slurmctld -i
    slurmd -N hlnode
    # Wait until the node accepts jobs.
    for _ in $(seq 1 60); do
        if sinfo -h -N -o '%t' 2>/dev/null | grep -qE '^(idle|mix|alloc)'; then
            echo "export SLURM_CONF=$dir/slurm.conf"
            return 0
        fi
        sleep 0.5
    done
    echo "slurm node did not come up; logs in $dir (slurmctld.log, slurmd.log)" >&2
    stop "$dir"
    exit 1
}

stop() {
    local dir
    dir=$(cd "$1" && pwd)
    for f in slurmd.pid slurmctld.pid munge/munged.pid; do
        [ -f "$dir/$f" ] || continue
        local pid
        pid=$(cat "$dir/$f")
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null || true
        rm -f "$dir/$f"
    done
}

case "${1:-}" in
start) start "${2:?usage: $0 start DIR}" ;;
stop) stop "${2:?usage: $0 stop DIR}" ;;
install) install ;;
*) echo "usage: $0 start DIR | stop DIR | install" >&2; exit 2 ;;
esac
