/* Child processes (procs.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/core.h"
#include "sweep/procs.h"

static int open_log(const char *path, bool append)
{
    return open(path, O_WRONLY | O_CREAT | O_CLOEXEC | (append ? O_APPEND : O_TRUNC), 0666);
}

pid_t sl_spawn(char *const *argv, const char *out_path, bool append, const char *err_path,
               const sigset_t *mask)
{
    const bool same = strcmp(out_path, err_path) == 0;
    int out = open_log(out_path, append);
    int err = same || out < 0 ? out : open_log(err_path, true);
    int in = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (out < 0 || err < 0 || in < 0) {
        sl_fail(SL_ERR_IO, "%s: cannot open: %s", out < 0 ? out_path : err < 0 ? err_path : "/dev/null",
                strerror(errno));
        if (out >= 0) close(out);
        if (err >= 0 && !same) close(err);
        if (in >= 0) close(in);
        return -1;
    }
    const pid_t parent = getpid();
    pid_t pid = fork();
    if (pid == 0) {
        setpgid(0, 0);
        /* A sweep killed outright takes its runs along (they save first). */
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != parent) _exit(127);
        sigprocmask(SIG_SETMASK, mask, NULL);
        if (dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(err, 2) < 0) _exit(127);
        execv(argv[0], argv);
        dprintf(2, "seqlab sweep: cannot run %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    const int e = errno;
    close(in);
    close(out);
    if (!same) close(err);
    if (pid < 0) sl_fail(SL_ERR_IO, "cannot start %s: %s", argv[0], strerror(e));
    return pid;
}

void sl_wait_text(int status, char *buf, size_t n)
{
    if (WIFEXITED(status)) snprintf(buf, n, "exited with status %d", WEXITSTATUS(status));
    else if (WIFSIGNALED(status)) snprintf(buf, n, "was killed by signal %d (%s)", WTERMSIG(status), strsignal(WTERMSIG(status)));
    else snprintf(buf, n, "ended with wait status %d", status);
}
