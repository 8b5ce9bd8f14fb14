// Preemption requests by signal. Slurm's `--signal=B:USR1@300` (forwarded to the ranks by
// cluster/psaq.sbatch), `scancel --signal=USR1`, mpirun's forwarding of SIGUSR1, and the SIGTERM a
// scheduler sends before killing: each only sets a flag here. The long-running jobs poll it at
// their safe points (launch/job/job_options.h should_stop), combine it across ranks, checkpoint together
// and exit with kPreemptedExitCode, so that a requeued or restarted run resumes.
#pragma once

namespace psaq::launch {

// Exit status of a run that stopped at a checkpoint on request (EX_TEMPFAIL: try again).
constexpr int kPreemptedExitCode = 75;

// Installs the handlers for SIGUSR1 and SIGTERM (async-signal-safe: they store one flag).
// A second SIGTERM restores the default action and re-raises it, so an impatient user or
// launcher can still kill the process.
void InstallStopSignalHandlers();

// True once SIGUSR1 or SIGTERM arrived in this process.
bool StopRequested();

// The signal that set the flag (0 = none), for the log line.
int StopSignal();

}  // namespace psaq::launch
