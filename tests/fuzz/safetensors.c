/* Fuzz target: the safetensors reader, then the checkpoint layer on what it
 * accepts. Oracles: every accepted tensor lies inside the file with a
 * consistent byte count and is findable by name; a refusal names the file;
 * an accepted file re-written sealed reads back sealed, and
 * sl_checkpoint_open on it either accepts it or names the file. */
#include "fuzz/fuzz.h"
#include "train/checkpoint.h"
#include "train/safetensors.h"

static char st_dir[64];

static void st_fuzz_rmdir(void) { rmdir(st_dir); }

/* A tmpfs directory for the re-sealed copy (the writer renames into place). */
static const char *st_fuzz_dir(void)
{
    if (!st_dir[0]) {
        snprintf(st_dir, sizeof st_dir, "%s/seqlab-fuzz-XXXXXX",
                 access("/dev/shm", W_OK) ? "/tmp" : "/dev/shm");
        if (!mkdtemp(st_dir)) abort();
        atexit(st_fuzz_rmdir);
    }
    return st_dir;
}

/* Re-writes f sealed (without its own digest entry) and opens it as a
 * checkpoint: reaches the stored-config and metadata checks, which an
 * unsealed mutant would only reach with a note on stderr per input. */
static void st_fuzz_reseal(const sl_st_file *f)
{
    sl_st_meta *meta = malloc((f->nmeta + 1) * sizeof *meta);
    size_t nm = 0;
    for (size_t i = 0; i < f->nmeta; i++)
        if (strcmp(f->meta[i].key, SL_ST_DIGEST_KEY)) meta[nm++] = f->meta[i];
    char path[128];
    snprintf(path, sizeof path, "%s/ck.safetensors", st_fuzz_dir());
    sl_status st = sl_st_write_sealed(path, f->tensors, f->ntensors, meta, nm);
    free(meta);
    if (st != SL_OK) return; /* a name the writer refuses, as it may */
    sl_st_file g;
    FUZZ_ASSERT(sl_st_read(path, &g) == SL_OK && g.sealed && g.ntensors == f->ntensors,
                "a re-sealed file reads back sealed");
    sl_st_close(&g);
    sl_checkpoint ck;
    st = sl_checkpoint_open(&ck, path);
    if (st == SL_OK)
        sl_checkpoint_close(&ck);
    else
        FUZZ_ASSERT(strstr(sl_errmsg(), path) != NULL, "a refused checkpoint is named");
    unlink(path);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[64];
    int fd = fuzz_file(data, size, path);
    sl_st_file f;
    sl_status st = sl_st_read(path, &f);
    if (st != SL_OK) {
        FUZZ_ASSERT(strstr(sl_errmsg(), path) != NULL, "a refusal names the file");
        close(fd);
        return 0;
    }
    size_t total = 0;
    for (size_t i = 0; i < f.ntensors; i++) {
        const sl_st_tensor *t = &f.tensors[i];
        uint64_t numel = 1;
        for (int d = 0; d < t->ndim; d++) numel *= (uint64_t)t->shape[d];
        FUZZ_ASSERT(t->nbytes == numel * sl_st_dtype_size(t->dtype), "byte count");
        FUZZ_ASSERT(sl_st_find(&f, t->name) == t, "findable by name");
        volatile uint8_t sink = 0;
        for (size_t k = 0; k < t->nbytes; k++) sink ^= ((const uint8_t *)t->data)[k];
        (void)sink;
        total += t->nbytes;
    }
    FUZZ_ASSERT(8 + total <= size, "data inside the file");
    if (sl_st_meta_find(&f, "format")) st_fuzz_reseal(&f);
    sl_st_close(&f);
    close(fd);
    return 0;
}
