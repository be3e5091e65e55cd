/* Whether a call stops the program: ops treat a bad shape or bad packed
 * bounds as a bug in the caller and abort (sl_require), so a test of that
 * check runs the call in a forked child and looks at how the child ended. */
#ifndef SL_ABORT_CHECK_H
#define SL_ABORT_CHECK_H

#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

/* true when fn(arg) ends its process with SIGABRT. The child's stderr goes
 * to /dev/null (the op's message is the expected outcome, not a failure to
 * show), and an alarm ends a child that neither aborts nor returns. The
 * child must abort or return before starting any OpenMP team: a team
 * inherited across fork need not work. */
static inline bool aborts(void (*fn)(void *), void *arg)
{
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) return false;
    if (pid == 0) {
        int fd = open("/dev/null", O_WRONLY);
        if (fd >= 0) dup2(fd, STDERR_FILENO);
        alarm(30);
        fn(arg);
        _exit(0);
    }
    int status = 0;
    if (waitpid(pid, &status, 0) != pid) return false;
    return WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT;
}

#endif
