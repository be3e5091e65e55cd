/* A program built against an installed seqlab: loads a checkpoint, scores a
 * text through the checkpoint's vocabulary and prints the total and mean
 * log-probability and each character's.
 *   cc score.c $(pkg-config --cflags --libs seqlab)
 *   ./a.out runs/demo/checkpoint.safetensors "In the beginning" */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <seqlab.h>

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s CKPT TEXT\n", argv[0]);
        return 2;
    }
    seqlab_model *m;
    if (seqlab_load(argv[1], &m) != SEQLAB_OK) {
        fprintf(stderr, "error: %s\n", seqlab_errmsg());
        return 1;
    }
    int64_t n = (int64_t)strlen(argv[2]);
    int32_t *ids = malloc((size_t)(n ? n : 1) * sizeof *ids);
    float *lp = malloc((size_t)(n ? n : 1) * sizeof *lp);
    double total = 0;
    int rc = 0;
    if (!ids || !lp || seqlab_encode(m, argv[2], n, ids) != SEQLAB_OK ||
        seqlab_logprobs(m, ids, n, lp, &total) != SEQLAB_OK) {
        fprintf(stderr, "error: %s\n", ids && lp ? seqlab_errmsg() : "out of memory");
        rc = 1;
    } else {
        printf("vocab %lld total %.4f nats, %.4f per predicted character\n",
               (long long)seqlab_vocab_size(m), total, n > 1 ? total / (double)(n - 1) : 0.0);
        for (int64_t t = 1; t < n; t++) printf("%c %.4f\n", argv[2][t], (double)lp[t]);
    }
    free(ids);
    free(lp);
    seqlab_free(m);
    return rc;
}
