#!/usr/bin/env bash
# A private single-node Slurm cluster on this machine (munged + slurmctld + slurmd on 127.0.0.1),
# for psaq's Slurm tests and for trying the sbatch scripts without a real cluster.
#
#   cluster/local_slurm.sh start    start what is not running yet; wait until the node is idle
#   cluster/local_slurm.sh stop     cancel the jobs, stop the daemons this script started
#   cluster/local_slurm.sh status   daemons, node state, log paths (exit 3 when not all running)
#   cluster/local_slurm.sh env      print `export SLURM_CONF=...` (use: eval "$(... env)")
#
# Everything lives under one run directory and never touches /etc/slurm, /etc/munge or a system
# munged: etc/slurm.conf (generated), munge/ (key, socket, log), state/, spool/, log/, run/ (pids).
# Clients (sbatch, srun, squeue, scontrol) find the cluster through SLURM_CONF.
# Must run as root (slurmd launches jobs as the submitting user; CI and containers are root).
# `start` is idempotent; it clears the previous queue (slurmctld -c), so a killed test run never
# leaves jobs occupying the node. `stop` keeps the run directory (key, logs) for inspection.
#
# Environment:
#   PSAQ_SLURM_DIR            run directory (default /tmp/psaq-slurm; keep it short: the munge
#                             socket path must fit in 108 bytes)
#   PSAQ_SLURM_PORT           slurmctld port; slurmd uses the next one (default: the first free
#                             pair from 6817, so several run directories can coexist)
#   PSAQ_SLURM_CRED_EXPIRE    job credential lifetime in seconds (default 10, Slurm's is 120).
#                             Slurm 22.05 holds a requeued job for this long + 1 s before it may
#                             start again (job_mgr.c, _job_requeue_op), so it sets the requeue delay.
#   PSAQ_SLURM_START_TIMEOUT  seconds to wait for the node to become idle (default 60)
set -euo pipefail

RUN_DIR="${PSAQ_SLURM_DIR:-/tmp/psaq-slurm}"
CONF="$RUN_DIR/etc/slurm.conf"
MUNGE_DIR="$RUN_DIR/munge"
MUNGE_SOCKET="$MUNGE_DIR/munged.socket"
CRED_EXPIRE="${PSAQ_SLURM_CRED_EXPIRE:-10}"
START_TIMEOUT="${PSAQ_SLURM_START_TIMEOUT:-60}"
NODE="$(hostname -s)"
PARTITION="local"

log() { printf '[local_slurm] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# alive NAME PID: PID is a live (not zombie) process named NAME (pids are recycled; a daemon
# orphaned under a PID 1 that does not reap stays a zombie).
alive() {
  [ "$(cat "/proc/$2/comm" 2>/dev/null)" = "$1" ] || return 1
  local stat
  stat="$(cat "/proc/$2/stat" 2>/dev/null)" || return 1
  stat="${stat##*) }"
  [ "${stat%% *}" != Z ]
}

# pid_of NAME: the pid in NAME's pid file when that process is alive.
pid_of() {
  local name="$1" file pid
  case "$name" in
    munged) file="$MUNGE_DIR/munged.pid" ;;
    *) file="$RUN_DIR/run/$name.pid" ;;
  esac
  [ -r "$file" ] || return 1
  pid="$(tr -dc '0-9' <"$file")"
  [ -n "$pid" ] && alive "$name" "$pid" || return 1
  echo "$pid"
}

# port_busy PORT: true when something accepts TCP connections on 127.0.0.1:PORT.
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

choose_port() {
  if [ -n "${PSAQ_SLURM_PORT:-}" ]; then
    echo "$PSAQ_SLURM_PORT"; return
  fi
  local p
  for p in $(seq 6817 2 6899); do
    if ! port_busy "$p" && ! port_busy $((p + 1)); then echo "$p"; return; fi
  done
  die "no free port pair in 6817-6900; set PSAQ_SLURM_PORT"
}

# node_hardware: the NodeName= attributes for this machine: the CPU layout slurmd -C reads from
# hwloc, or CPUs=2 when it finds fewer (two tasks is the least an MPI test needs; with
# config_overrides slurmd accepts more CPUs than there are, and tasks then share a core).
node_hardware() {
  local line cpus
  line="$(slurmd -C 2>/dev/null | head -1)"
  cpus="$(sed -n 's/.* CPUs=\([0-9]*\).*/\1/p' <<<"$line")"
  [ -n "$cpus" ] || cpus="$(nproc)"
  if [ "$cpus" -ge 2 ] && [[ "$line" == *" CoresPerSocket="* ]]; then
    grep -o -E '(CPUs|Boards|SocketsPerBoard|CoresPerSocket|ThreadsPerCore)=[0-9]+' <<<"$line" | tr '\n' ' '
  else
    echo "CPUs=$((cpus < 2 ? 2 : cpus))"
  fi
}

start_munged() {
  if pid_of munged >/dev/null; then return; fi
  # munged wants: a key readable only by its user, the socket's directory searchable by all,
  # no directory on the path writable by others (sticky /tmp is accepted).
  mkdir -p "$MUNGE_DIR"
  chmod 755 "$RUN_DIR" "$MUNGE_DIR"
  if [ ! -s "$MUNGE_DIR/munge.key" ]; then
    log "creating munge key $MUNGE_DIR/munge.key"
    (umask 077; dd if=/dev/urandom of="$MUNGE_DIR/munge.key" bs=1024 count=1 status=none)
  fi
  chmod 600 "$MUNGE_DIR/munge.key"
  local as=()
  if id munge >/dev/null 2>&1; then  # Debian runs munged as the munge user
    chown -R munge:munge "$MUNGE_DIR"
    as=(runuser -u munge --)
  fi
  rm -f "$MUNGE_SOCKET" "$MUNGE_SOCKET.lock"
  "${as[@]}" munged --socket="$MUNGE_SOCKET" --key-file="$MUNGE_DIR/munge.key" \
    --pid-file="$MUNGE_DIR/munged.pid" --log-file="$MUNGE_DIR/munged.log" \
    --seed-file="$MUNGE_DIR/munged.seed" --num-threads=2 ||
    die "munged failed to start; see $MUNGE_DIR/munged.log:$(tail -n 5 "$MUNGE_DIR/munged.log" 2>/dev/null)"
  munge -n --socket="$MUNGE_SOCKET" | unmunge --socket="$MUNGE_SOCKET" >/dev/null ||
    die "munged does not answer on $MUNGE_SOCKET"
}

write_conf() {
  local port="$1" hardware
  hardware="$(node_hardware)"
  mkdir -p "$RUN_DIR/etc" "$RUN_DIR/state" "$RUN_DIR/spool" "$RUN_DIR/log" "$RUN_DIR/run"
  cat >"$CONF" <<EOF
# Generated by psaq cluster/local_slurm.sh; rewritten on every start from nothing running.
ClusterName=psaqlocal
SlurmctldHost=$NODE(127.0.0.1)
SlurmctldPort=$port
SlurmdPort=$((port + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
# cred_expire also sets how long a requeued job waits before it may start again.
AuthInfo=socket=$MUNGE_SOCKET,cred_expire=$CRED_EXPIRE
StateSaveLocation=$RUN_DIR/state
SlurmdSpoolDir=$RUN_DIR/spool
SlurmctldPidFile=$RUN_DIR/run/slurmctld.pid
SlurmdPidFile=$RUN_DIR/run/slurmd.pid
SlurmctldLogFile=$RUN_DIR/log/slurmctld.log
SlurmdLogFile=$RUN_DIR/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
MailProg=/bin/true
# No cgroups: containers rarely delegate them; linuxproc tracks a job's processes by parentage.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SwitchType=switch/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=2,bf_interval=2
MpiDefault=none
JobRequeue=1
ReturnToService=2
SlurmctldTimeout=10
SlurmdTimeout=30
MessageTimeout=10
BatchStartTimeout=10
KillWait=5
InactiveLimit=0
Waittime=0
MinJobAge=600
SlurmdParameters=config_overrides
NodeName=$NODE NodeAddr=127.0.0.1 ${hardware% } RealMemory=1024 State=UNKNOWN
PartitionName=$PARTITION Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
EOF
}

# node_state: idle, mixed, down*, ...; empty while slurmctld does not answer.
node_state() { SLURM_CONF="$CONF" sinfo -h -n "$NODE" -o '%T' 2>/dev/null | head -1 || true; }

show_logs() {
  local f
  for f in "$MUNGE_DIR/munged.log" "$RUN_DIR/log/slurmctld.log" "$RUN_DIR/log/slurmd.log"; do
    [ -r "$f" ] && { log "--- last lines of $f"; tail -n 15 "$f" >&2; }
  done
  return 0
}

cmd_start() {
  [ "$(id -u)" -eq 0 ] || die "must run as root (slurmd launches jobs as their owner); try sudo"
  local bin
  for bin in munged munge slurmctld slurmd sinfo; do
    command -v "$bin" >/dev/null || die "$bin not found: install the Debian packages slurm-wlm munge"
  done
  start_munged
  if ! pid_of slurmctld >/dev/null && ! pid_of slurmd >/dev/null; then
    local port
    port="$(choose_port)"
    write_conf "$port"
  fi
  [ -r "$CONF" ] || die "$CONF missing while a Slurm daemon runs; run stop first"
  if ! pid_of slurmctld >/dev/null; then
    slurmctld -c -f "$CONF" || { show_logs; die "slurmctld failed to start"; }
  fi
  if ! pid_of slurmd >/dev/null; then
    slurmd -f "$CONF" -N "$NODE" || { show_logs; die "slurmd failed to start"; }
  fi
  local waited=0 state=""
  while :; do
    state="$(node_state)"
    case "$state" in
      idle | mixed | allocated) break ;;
    esac
    if [ "$waited" -ge "$START_TIMEOUT" ]; then
      show_logs
      die "node $NODE not idle after ${START_TIMEOUT}s (state: '${state:-no answer}'); daemons left running for inspection, run stop"
    fi
    sleep 1
    waited=$((waited + 1))
  done
  log "up: node $NODE ($state), partition $PARTITION, port $(sed -n 's/^SlurmctldPort=//p' "$CONF")"
  log "export SLURM_CONF=$CONF"
  log "logs: $RUN_DIR/log/{slurmctld,slurmd}.log $MUNGE_DIR/munged.log"
}

# stop_daemons NAME...: SIGTERM to each, wait up to 10 s for all, then SIGKILL the rest.
stop_daemons() {
  local name pid i names=() pids=()
  for name in "$@"; do
    if pid="$(pid_of "$name")"; then
      kill -TERM "$pid" 2>/dev/null || true
      names+=("$name")
      pids+=("$pid")
    fi
  done
  for i in "${!pids[@]}"; do
    local waited=0
    while alive "${names[$i]}" "${pids[$i]}" && [ "$waited" -lt 100 ]; do
      sleep 0.1
      waited=$((waited + 1))
    done
    if alive "${names[$i]}" "${pids[$i]}"; then
      log "${names[$i]} (${pids[$i]}) ignored SIGTERM for 10 s; killing it"
      kill -KILL "${pids[$i]}" 2>/dev/null || true
    else
      log "stopped ${names[$i]} (${pids[$i]})"
    fi
  done
}

cmd_stop() {
  if pid_of slurmctld >/dev/null; then
    # Cancel the jobs first so slurmd ends their slurmstepd and processes before it goes.
    local jobs i
    jobs="$(SLURM_CONF="$CONF" squeue -h -o '%A' 2>/dev/null | tr '\n' ' ')"
    if [ -n "${jobs// /}" ]; then
      log "cancelling jobs: $jobs"
      # shellcheck disable=SC2086
      SLURM_CONF="$CONF" scancel $jobs 2>/dev/null || true
      for i in $(seq 1 30); do
        [ -z "$(SLURM_CONF="$CONF" squeue -h -o '%A' 2>/dev/null)" ] && break
        sleep 1
      done
    fi
  fi
  stop_daemons slurmd slurmctld
  stop_daemons munged  # last: the Slurm daemons authenticate through it until they exit
  log "stopped; logs kept in $RUN_DIR/log and $MUNGE_DIR"
}

cmd_status() {
  local name pid all=0
  for name in munged slurmctld slurmd; do
    if pid="$(pid_of "$name")"; then
      echo "$name: running (pid $pid)"
    else
      echo "$name: not running"; all=3
    fi
  done
  if [ "$all" -eq 0 ]; then
    echo "node $NODE: $(node_state)"
  fi
  echo "SLURM_CONF=$CONF"
  echo "logs: $RUN_DIR/log/slurmctld.log $RUN_DIR/log/slurmd.log $MUNGE_DIR/munged.log"
  return "$all"
}

case "${1:-}" in
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  env) echo "export SLURM_CONF=$CONF" ;;
  *) echo "usage: $0 {start|stop|status|env}" >&2; exit 2 ;;
esac
