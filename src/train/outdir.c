/* out_dir ownership: lock, checkpoint guard, stale temporary files. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "model/config.h"
#include "train/outdir.h"

/* mkdir -p; messages name the config key, since dir comes from it. */
static sl_status make_dirs(const char *path)
{
    if (!path[0])
        return sl_fail(SL_ERR_CONFIG, "config key 'out_dir' is empty: expected a directory");
    char buf[SL_PATH_LEN];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1;; p++) {
        if (*p == '/' || *p == '\0') {
            char c = *p;
            *p = '\0';
            if (mkdir(buf, 0777) != 0 && errno != EEXIST)
                return sl_fail(SL_ERR_IO, "config key 'out_dir' = \"%s\": cannot create %s: %s",
                               path, buf, strerror(errno));
            *p = c;
            if (!c) break;
        }
    }
    struct stat s;
    if (stat(path, &s) != 0 || !S_ISDIR(s.st_mode))
        return sl_fail(SL_ERR_IO, "config key 'out_dir' = \"%s\": not a directory", path);
    return SL_OK;
}

/* Takes dir's lock and writes this process's pid into the lock file. */
static sl_status lock_dir(sl_outdir *o, const char *dir)
{
    char p[SL_PATH_LEN + 32];
    snprintf(p, sizeof p, "%s/" SL_LOCK_NAME, dir);
    int fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
    if (fd < 0) return sl_fail(SL_ERR_IO, "%s: cannot open the lock file: %s", p, strerror(errno));
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        char pid[32] = "";
        ssize_t n = pread(fd, pid, sizeof pid - 1, 0);
        pid[n > 0 ? n : 0] = '\0';
        pid[strcspn(pid, "\n")] = '\0';
        close(fd);
        if (e != EWOULDBLOCK) return sl_fail(SL_ERR_IO, "%s: cannot lock: %s", p, strerror(e));
        return sl_fail(SL_ERR_IO,
                       "out_dir %s is in use by another seqlab train (pid %s holds %s); wait for "
                       "it to finish or choose another out_dir",
                       dir, pid[0] ? pid : "unknown", p);
    }
    char pid[32];
    int n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) != 0 || pwrite(fd, pid, (size_t)n, 0) != n) {
        sl_status st = sl_fail(SL_ERR_IO, "%s: cannot write: %s", p, strerror(errno));
        close(fd);
        return st;
    }
    o->lock_fd = fd;
    return SL_OK;
}

/* Whether name is a safetensors writer's temporary file: *.tmp.PID.N. */
static bool is_temp_name(const char *name)
{
    const char *t = strstr(name, ".tmp.");
    if (!t) return false;
    const char *p = t + 5;
    for (int part = 0; part < 2; part++) {
        if (*p < '0' || *p > '9') return false;
        while (*p >= '0' && *p <= '9') p++;
        if (part == 0 && *p++ != '.') return false;
    }
    return *p == '\0';
}

static void remove_stale_temps(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return;
    for (struct dirent *e; (e = readdir(d));) {
        if (!is_temp_name(e->d_name)) continue;
        char p[SL_PATH_LEN + 300];
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        if (unlink(p) == 0) fprintf(stderr, "removed %s, left by a writer that stopped\n", p);
    }
    closedir(d);
}

/* Refuses to replace dir's checkpoint unless asked, or resumed from. */
static sl_status guard_checkpoint(const char *dir, const char *resume, bool overwrite)
{
    char p[SL_PATH_LEN + 32];
    snprintf(p, sizeof p, "%s/checkpoint.safetensors", dir);
    struct stat have, from;
    if (overwrite || stat(p, &have) != 0) return SL_OK;
    /* A resume file that cannot be read fails later, naming it. */
    if (resume &&
        (stat(resume, &from) != 0 || (from.st_dev == have.st_dev && from.st_ino == have.st_ino)))
        return SL_OK;
    return sl_fail(SL_ERR_IO,
                   "out_dir %s already holds %s; continue it with --resume %s, or pass "
                   "--overwrite to replace it, or choose another out_dir",
                   dir, p, p);
}

sl_status sl_outdir_claim(sl_outdir *o, const char *dir, const char *resume, bool overwrite)
{
    o->lock_fd = -1;
    sl_status st = make_dirs(dir);
    if (!st) st = lock_dir(o, dir);
    if (!st) st = guard_checkpoint(dir, resume, overwrite);
    if (st) {
        sl_outdir_release(o);
        return st;
    }
    remove_stale_temps(dir);
    return SL_OK;
}

void sl_outdir_release(sl_outdir *o)
{
    if (o->lock_fd >= 0) close(o->lock_fd);
    o->lock_fd = -1;
}
