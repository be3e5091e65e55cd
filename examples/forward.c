/* A program built against an installed seqlab: builds a small Transformer
 * from the default config, runs one forward and prints the loss of random
 * tokens (about ln V before training).
 *   cc forward.c $(pkg-config --cflags --libs seqlab) */
#include <math.h>
#include <stdio.h>

#include <seqlab.h>

int main(void)
{
    sl_config c;
    sl_config_defaults(&c);
    c.vocab_size = 50;
    c.n_layers = 2;
    c.d_model = 32;
    c.n_heads = 2;
    sl_model m;
    if (sl_model_create(&m, &c) != SL_OK) {
        fprintf(stderr, "error: %s\n", sl_errmsg());
        return 1;
    }
    sl_model_init_weights(&m, 1);
    int32_t tok[64], tgt[64];
    for (int i = 0; i < 64; i++) {
        tok[i] = (i * 7) % 50;
        tgt[i] = (i * 11) % 50;
    }
    sl_ctx ctx;
    sl_ctx_init(&ctx, 1 << 20);
    sl_tensor *loss = sl_model_loss(&m, &ctx, tok, tgt, 2, 32);
    printf("params %zu loss %.3f ln(V) %.3f\n", sl_params_numel(&m.params), loss->data[0], log(50.0));
    sl_ctx_free(&ctx);
    sl_model_free(&m);
    return 0;
}
