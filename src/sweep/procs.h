/* The child processes of a sweep: each run's `seqlab train` and `seqlab
 * eval` run apart, so that a crash of one never takes the sweep down. */
#ifndef SL_SWEEP_PROCS_H
#define SL_SWEEP_PROCS_H

#include <signal.h>
#include <stdbool.h>
#include <sys/types.h>

#include "core/status.h"

/* Starts argv[0] with argv: stdin from /dev/null, stdout to out_path
 * (appended when append, else truncated), stderr appended to err_path (the
 * same file when the paths are equal). The child gets its own process group,
 * so a terminal's Ctrl-C reaches the sweep alone (which passes it on once),
 * and SIGTERM when the sweep dies; mask is the signal mask it starts with.
 * Returns the pid, or -1 with sl_errmsg set. */
pid_t sl_spawn(char *const *argv, const char *out_path, bool append, const char *err_path,
               const sigset_t *mask);
/* A wait status as words: "exited with status 1", "was killed by signal 9". */
void sl_wait_text(int status, char *buf, size_t n);

#endif
