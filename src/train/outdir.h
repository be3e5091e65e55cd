/* Ownership of a training run's out_dir: one writer at a time (an flock on
 * OUT_DIR/seqlab.lock holding the writer's pid), no silent replacement of a
 * checkpoint, and no temporary files left by writers that died. */
#ifndef SL_OUTDIR_H
#define SL_OUTDIR_H

#include <stdbool.h>

#include "core/status.h"

#define SL_LOCK_NAME "seqlab.lock"

typedef struct sl_outdir {
    int lock_fd; /* -1 when not held */
} sl_outdir;

/* Creates dir (as mkdir -p) and takes its lock, failing with the holder's
 * pid when another process has it. Then refuses a dir that already holds
 * checkpoint.safetensors unless overwrite is set or resume names that same
 * file, and removes the safetensors writer's temporary files
 * (NAME.tmp.PID.N), which only a dead writer can have left while the lock
 * is held. */
sl_status sl_outdir_claim(sl_outdir *o, const char *dir, const char *resume, bool overwrite);
/* Drops the lock (the lock file stays: removing it would race a new
 * writer). */
void sl_outdir_release(sl_outdir *o);

#endif
