/* Config: parsing, type errors naming the key, overrides, validation, and
 * the routing of mixer and task options (globally, per mixer, per layer;
 * from JSON and the command line; in stored checkpoint configs). */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "model/config.h"

static void test_parse_and_roundtrip(void)
{
    sl_config c, d;
    sl_config_defaults(&c);
    const char *j = "{\"d_model\": 64, \"lr\": 0.5, \"bias\": true, \"pos\": \"rope\","
                    " \"layer_mixers\": [\"attention\", \"attention\"], \"n_layers\": 2}";
    CHECK(sl_config_parse(&c, j, "t.json") == SL_OK, "%s", sl_errmsg());
    CHECK(c.d_model == 64 && c.lr == 0.5 && c.bias && strcmp(c.pos, "rope") == 0 &&
              c.n_layer_mixers == 2,
          "values");
    char *s = sl_config_to_json(&c);
    sl_config_defaults(&d);
    CHECK(sl_config_parse(&d, s, "copy") == SL_OK, "reparse: %s", sl_errmsg());
    CHECK(sl_config_model_diff(&c, &d) == NULL && d.lr == c.lr, "round trip");
    free(s);
    strcpy(d.pos, "learned");
    CHECK(sl_config_model_diff(&c, &d) && strcmp(sl_config_model_diff(&c, &d), "pos") == 0, "diff");
}

static void test_errors_name_file_and_key(void)
{
    sl_config c;
    sl_config_defaults(&c);
    struct { const char *json; sl_status st; const char *want; } cases[] = {
        {"{\"d_modle\": 3}", SL_ERR_CONFIG, "unknown key 'd_modle'"},
        {"{\"d_model\": \"big\"}", SL_ERR_CONFIG, "'d_model': expected an integer"},
        {"{\"d_model\": 1.5}", SL_ERR_CONFIG, "'d_model': expected an integer"},
        {"{\"bias\": 1}", SL_ERR_CONFIG, "'bias': expected true or false"},
        {"{\"lr\": \"fast\"}", SL_ERR_CONFIG, "'lr': expected a number"},
        {"{\"layer_mixers\": [1]}", SL_ERR_CONFIG, "'layer_mixers'[0]"},
        {"[1, 2]", SL_ERR_CONFIG, "expected a JSON object"},
        {"{\"d_model\": 3", SL_ERR_CONFIG, "not valid JSON"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        sl_status st = sl_config_parse(&c, cases[i].json, "my.json");
        CHECK(st == cases[i].st && strstr(sl_errmsg(), cases[i].want) &&
                  strstr(sl_errmsg(), "my.json"),
              "%s -> %s", cases[i].json, sl_errmsg());
    }
    CHECK(sl_config_load(&c, "/nonexistent/c.json") == SL_ERR_IO &&
              strstr(sl_errmsg(), "/nonexistent/c.json"),
          "missing file");
}

static void test_overrides(void)
{
    sl_config c;
    sl_config_defaults(&c);
    CHECK(sl_config_set(&c, "n_layers", "3") == SL_OK && c.n_layers == 3, "int");
    CHECK(sl_config_set(&c, "dropout", "0.25") == SL_OK && c.dropout == 0.25, "float");
    CHECK(sl_config_set(&c, "causal", "false") == SL_OK && !c.causal, "bool");
    CHECK(sl_config_set(&c, "layer_mixers", "attention,attention,attention") == SL_OK &&
              c.n_layer_mixers == 3,
          "list");
    CHECK(sl_config_set(&c, "n_layers", "three") == SL_ERR_CONFIG && strstr(sl_errmsg(), "--n_layers"),
          "bad int");
    CHECK(sl_config_set(&c, "lr", "nan") == SL_ERR_CONFIG, "nan refused");
    CHECK(sl_config_set(&c, "nope", "1") == SL_ERR_CONFIG && strstr(sl_errmsg(), "--nope"), "unknown");
}

static void test_validation(void)
{
    sl_config c;
    sl_config_defaults(&c);
    CHECK(sl_config_validate(&c) == SL_OK, "defaults valid: %s", sl_errmsg());
    c.n_heads = 5;
    CHECK(sl_config_validate(&c) == SL_ERR_SHAPE && strstr(sl_errmsg(), "n_heads = 5") &&
              strstr(sl_errmsg(), "d_model = 128"),
          "%s", sl_errmsg());
    sl_config_defaults(&c);
    c.seq_len = 1000;
    CHECK(sl_config_validate(&c) == SL_ERR_SHAPE && strstr(sl_errmsg(), "max_seq_len"), "seq_len");
    sl_config_defaults(&c);
    strcpy(c.norm, "batchnorm");
    CHECK(sl_config_validate(&c) == SL_ERR_CONFIG && strstr(sl_errmsg(), "'norm'"), "norm");
    sl_config_defaults(&c);
    c.d_model = 0;
    CHECK(sl_config_validate(&c) == SL_ERR_CONFIG && strstr(sl_errmsg(), "'d_model'"), "zero");
    sl_config_defaults(&c);
    c.n_layers = 2;
    c.n_layer_mixers = 3;
    CHECK(sl_config_validate(&c) == SL_ERR_CONFIG && strstr(sl_errmsg(), "layer_mixers"), "list len");
}

/* Layer i's option `name` as text. */
static const char *layer_opt(const sl_config *c, int64_t i, const char *name)
{
    static char buf[SL_OPT_LEN];
    const sl_mixer_vtable *vt;
    sl_mixer_dims d;
    sl_opts o;
    if (sl_config_layer(c, i, &vt, &d, &o)) return sl_errmsg();
    const sl_option *op = sl_option_find(o.table, name);
    snprintf(buf, sizeof buf, "%s", op ? o.v[op - o.table.opt].s : "?");
    return buf;
}

static void test_mixer_options(void)
{
    sl_config c;
    sl_config_defaults(&c);
    /* Per mixer in JSON, per layer in a layer entry: the layer's own wins. */
    const char *j = "{\"n_layers\": 3, \"layer_mixers\": [\"attention\", {\"mixer\": "
                    "\"attention\", \"window\": 7}, \"linear_attention\"],"
                    " \"mixer_options\": {\"attention\": {\"window\": 64},"
                    " \"linear_attention\": {\"feature_map\": \"taylor\", \"normalize\": true}},"
                    " \"task_options\": {\"text\": {\"holdout_every\": 10}}}";
    CHECK(sl_config_parse(&c, j, "t.json") == SL_OK, "%s", sl_errmsg());
    CHECK(sl_config_validate(&c) == SL_OK, "%s", sl_errmsg());
    CHECK(strcmp(layer_opt(&c, 0, "window"), "64") == 0, "mixer-wide: %s", layer_opt(&c, 0, "window"));
    CHECK(strcmp(layer_opt(&c, 1, "window"), "7") == 0, "per layer: %s", layer_opt(&c, 1, "window"));
    CHECK(strcmp(layer_opt(&c, 2, "feature_map"), "taylor") == 0 &&
              strcmp(layer_opt(&c, 2, "normalize"), "true") == 0 &&
              strcmp(layer_opt(&c, 2, "feature_dim"), "0") == 0,
          "linear_attention's own, defaults elsewhere");
    /* The command line: NAME.option (which also replaces the config's
     * per-layer values of that option) and layers.N.option. */
    CHECK(sl_config_set(&c, "attention.window", "32") == SL_OK &&
              strcmp(layer_opt(&c, 1, "window"), "32") == 0,
          "the override wins: %s", layer_opt(&c, 1, "window"));
    CHECK(sl_config_set(&c, "layers.1.window", "3") == SL_OK &&
              sl_config_set(&c, "text.holdout_every", "50") == SL_OK,
          "%s", sl_errmsg());
    CHECK(strcmp(layer_opt(&c, 0, "window"), "32") == 0 && strcmp(layer_opt(&c, 1, "window"), "3") == 0,
          "overridden");
    const sl_task_vtable *tv;
    sl_opts to;
    CHECK(sl_config_task(&c, &tv, &to) == SL_OK && sl_opt_int(&to, "holdout_every") == 50,
          "task option");
    /* Stored and read back: every layer's resolved options, the same model. */
    char *s = sl_config_to_json(&c);
    CHECK(s && strstr(s, "{\"mixer\":\"attention\",\"window\":3,\"n_kv_heads\":0}") &&
              strstr(s, "\"holdout_every\":50"),
          "resolved: %s", s ? s : sl_errmsg());
    sl_config d;
    sl_config_defaults(&d);
    CHECK(s && sl_config_parse(&d, s, "copy") == SL_OK, "reparse: %s", sl_errmsg());
    CHECK(sl_config_model_diff(&c, &d) == NULL, "same model: %s", sl_config_model_diff(&c, &d));
    free(s);
    CHECK(sl_config_set(&d, "layers.2.feature_dim", "4") == SL_OK, "%s", sl_errmsg());
    const char *diff = sl_config_model_diff(&c, &d);
    CHECK(diff && strstr(diff, "layer 2") && strstr(diff, "feature_dim"), "diff: %s",
          diff ? diff : "none");
    d = c;
    CHECK(sl_config_set(&d, "layer_mixers", "attention,attention,retnet") == SL_OK, "mixers");
    diff = sl_config_model_diff(&c, &d);
    CHECK(diff && strstr(diff, "layer 2's mixer"), "diff: %s", diff ? diff : "none");
}

static void test_option_errors(void)
{
    struct { const char *json; const char *want[3]; } cases[] = {
        {"{\"mixer_options\": {\"attention\": {\"windw\": 3}}}",
         {"attention", "no option 'windw'", "window"}},
        {"{\"mixer_options\": {\"attention\": {\"window\": -1}}}",
         {"attention", "'window' = -1", "an integer in [0, "}},
        {"{\"mixer_options\": {\"attention\": {\"window\": \"8\"}}}",
         {"attention", "'window' = \"8\"", "integer"}},
        {"{\"mixer_options\": {\"linear_attention\": {\"feature_map\": \"cos\"}}}",
         {"linear_attention", "'feature_map'", "one of elu1, relu, identity, taylor"}},
        {"{\"mixer_options\": {\"linear_attention\": {\"normalize\": 1}}}",
         {"linear_attention", "'normalize'", "true or false"}},
        {"{\"mixer_options\": {\"mamba3\": {}}}", {"unknown mixer 'mamba3'", "", ""}},
        {"{\"mixer_options\": {\"attention\": 3}}", {"mixer_options.attention", "object", ""}},
        {"{\"task_options\": {\"text\": {\"holdout_every\": 1}}}",
         {"task 'text'", "holdout_every", "[3, "}},
        {"{\"layer_mixers\": [{\"mixer\": \"retnet\", \"window\": 3}]}",
         {"mixer 'retnet'", "no option 'window'", "none"}},
        {"{\"layer_mixers\": [{\"window\": 3}]}", {"layer_mixers'[0]", "mixer", ""}},
        {"{\"window\": 5}", {"unknown key 'window'", "option of attention", "mixer_options"}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        sl_config c;
        sl_config_defaults(&c);
        sl_status st = sl_config_parse(&c, cases[i].json, "my.json");
        bool named = strstr(sl_errmsg(), "my.json") != NULL;
        for (int k = 0; k < 3; k++) named &= strstr(sl_errmsg(), cases[i].want[k]) != NULL;
        CHECK(st == SL_ERR_CONFIG && named, "%s -> %s", cases[i].json, sl_errmsg());
    }
    sl_config c;
    sl_config_defaults(&c);
    CHECK(sl_config_set(&c, "attention.window", "x") == SL_ERR_CONFIG &&
              strstr(sl_errmsg(), "--attention.window=x") && strstr(sl_errmsg(), "integer"),
          "%s", sl_errmsg());
    CHECK(sl_config_set(&c, "nobody.x", "1") == SL_ERR_CONFIG &&
              strstr(sl_errmsg(), "'nobody' is neither a mixer nor a task"),
          "%s", sl_errmsg());
    CHECK(sl_config_set(&c, "feature_map", "taylor") == SL_ERR_CONFIG &&
              strstr(sl_errmsg(), "option of linear_attention") &&
              strstr(sl_errmsg(), "--MIXER.feature_map"),
          "%s", sl_errmsg());
    CHECK(sl_config_set(&c, "layers.x.window", "1") == SL_ERR_CONFIG &&
              strstr(sl_errmsg(), "--layers.N.option"),
          "%s", sl_errmsg());
    /* A layer's setting is checked against the mixer it ends up with. */
    CHECK(sl_config_set(&c, "layers.0.window", "4") == SL_OK &&
              sl_config_set(&c, "mixer", "retnet") == SL_OK,
          "%s", sl_errmsg());
    CHECK(sl_config_validate(&c) == SL_ERR_CONFIG && strstr(sl_errmsg(), "layer 0") &&
              strstr(sl_errmsg(), "retnet") && strstr(sl_errmsg(), "'window'"),
          "%s", sl_errmsg());
    sl_config_defaults(&c);
    CHECK(sl_config_set(&c, "layers.9.window", "4") == SL_OK, "set");
    CHECK(sl_config_validate(&c) == SL_ERR_CONFIG && strstr(sl_errmsg(), "layer 9"), "%s",
          sl_errmsg());
}

/* Checkpoints written before mixers owned their options stored flat keys:
 * they still load, each key given to the mixers that declare it. */
static void test_stored_flat_keys(void)
{
    const char *j = "{\"window\": 5, \"feature_map\": \"relu\", \"normalize\": false,"
                    " \"feature_dim\": 0, \"block_size\": 64, \"decay\": false}";
    sl_config c;
    sl_config_defaults(&c);
    CHECK(sl_config_parse_stored(&c, j, "ck") == SL_OK, "%s", sl_errmsg());
    CHECK(strcmp(layer_opt(&c, 0, "window"), "5") == 0, "window: %s", layer_opt(&c, 0, "window"));
    CHECK(sl_config_set(&c, "mixer", "linear_attention") == SL_OK &&
              strcmp(layer_opt(&c, 0, "feature_map"), "relu") == 0,
          "feature_map");
    sl_config_defaults(&c);
    CHECK(sl_config_parse_stored(&c, "{\"block_size\": 0}", "ck") == SL_ERR_CONFIG &&
              strstr(sl_errmsg(), "block_size"),
          "checked: %s", sl_errmsg());
    CHECK(sl_config_parse_stored(&c, "{\"blocksize\": 1}", "ck") == SL_ERR_CONFIG, "unknown");
}

/* Every size has an upper bound, reached from an override, a config file
 * and a checkpoint's stored config alike; the message names the key and
 * the range (issue 9: these values aborted, wrapped or segfaulted). */
static void test_upper_bounds(void)
{
    const char *cases[][2] = {
        {"d_model", "1000000000000000"}, {"d_ff", "1099511627776"},
        {"max_seq_len", "1099511627776"}, {"max_seq_len", "9223372036854775807"},
        {"vocab_size", "1099511627776"}, {"vocab_size", "9223372036854775807"},
        {"batch_size", "9223372036854775807"}, {"seq_len", "9223372036854775807"},
        {"n_heads", "131072"}, {"grad_accum", "9223372036854775807"},
        {"eval_batches", "9223372036854775807"}, {"chunk_size", "1099511627776"},
        {"conv_size", "1099511627776"}, {"threads", "1000000"},
        {"steps", "9223372036854775807"}, {"seed", "9223372036854775807"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        sl_config c;
        sl_config_defaults(&c);
        char want[64], json[128];
        snprintf(want, sizeof want, "'%s' = %s: expected an integer in [", cases[i][0],
                 cases[i][1]);
        CHECK(sl_config_set(&c, cases[i][0], cases[i][1]) == SL_OK &&
                  sl_config_validate(&c) == SL_ERR_CONFIG && strstr(sl_errmsg(), want),
              "--%s=%s: %s", cases[i][0], cases[i][1], sl_errmsg());
        /* JSON keeps integers below 9e15; from there it is a type error. */
        snprintf(json, sizeof json, "{\"%s\": %s}", cases[i][0], cases[i][1]);
        sl_config_defaults(&c);
        sl_status st = sl_config_parse_stored(&c, json, "ck");
        if (!st) st = sl_config_validate(&c);
        CHECK(st == SL_ERR_CONFIG && strstr(sl_errmsg(), cases[i][0]), "%s: %s", json,
              sl_errmsg());
    }
    sl_config c;
    sl_config_defaults(&c);
    c.d_model = 65536;
    c.n_heads = 1;
    c.max_seq_len = c.seq_len = (int64_t)1 << 24;
    c.d_ff = (int64_t)1 << 18;
    c.vocab_size = (int64_t)1 << 24;
    CHECK(sl_config_validate(&c) == SL_OK, "the bounds themselves: %s", sl_errmsg());
}

/* A config is one JSON object and nothing else, written as JSON writes it. */
static void test_strict_json(void)
{
    struct { const char *json, *want; } cases[] = {
        {"{\"d_model\": 16} xyz", "offset 16: content after the JSON object"},
        {"{\"d_model\": 16}} , \"n_layers\": 2}", "offset 15: content after the JSON object"},
        {"{\"d_model\": 16}{}", "content after the JSON object"},
        {"{\"d_model\": 010}", "offset 12: a number with a leading zero"},
        {"{\"lr\": -00.5}", "leading zero"},
        {"{\"d_mo\\u0000del\": 16}", "offset 6: a NUL character"},
        {"{\"data\": \"a\\u0000b\"}", "NUL character"},
        {"{\"n_layers\": 1, \"layer_mixers\": [\"\"]}", "'layer_mixers'[0]: empty mixer name"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        for (int stored = 0; stored < 2; stored++) {
            sl_config c;
            sl_config_defaults(&c);
            sl_status st = stored ? sl_config_parse_stored(&c, cases[i].json, "my.json")
                                  : sl_config_parse(&c, cases[i].json, "my.json");
            CHECK(st == SL_ERR_CONFIG && strstr(sl_errmsg(), cases[i].want) &&
                      strstr(sl_errmsg(), "my.json"),
                  "%s (stored %d) -> %s", cases[i].json, stored, sl_errmsg());
        }
    /* Still JSON: zeros after a point or in an exponent, trailing
     * whitespace, an escaped backslash before "u0000". */
    sl_config c;
    sl_config_defaults(&c);
    CHECK(sl_config_parse(&c, "{\"lr\": 0.005, \"norm_eps\": 1e-05, \"d_model\": 0}\n ",
                          "ok.json") == SL_OK && c.lr == 0.005 && c.norm_eps == 1e-5,
          "%s", sl_errmsg());
    CHECK(sl_config_parse(&c, "{\"data\": \"a\\\\u0000\"}", "ok.json") == SL_OK &&
              strcmp(c.data, "a\\u0000") == 0, "%s", sl_errmsg());
    /* A NUL byte in the file cuts nothing silently. */
    char path[] = "/tmp/seqlab-nul-XXXXXX";
    int fd = mkstemp(path);
    FILE *f = fdopen(fd, "wb");
    static const char nul[] = "{\"d_model\": 16}\0{\"x\": 1}";
    fwrite(nul, 1, sizeof nul - 1, f);
    fclose(f);
    CHECK(sl_config_load(&c, path) == SL_ERR_CONFIG && strstr(sl_errmsg(), path) &&
              strstr(sl_errmsg(), "offset 15: a NUL byte"), "%s", sl_errmsg());
    remove(path);
}

int main(void)
{
    RUN(test_parse_and_roundtrip);
    RUN(test_errors_name_file_and_key);
    RUN(test_overrides);
    RUN(test_validation);
    RUN(test_upper_bounds);
    RUN(test_strict_json);
    RUN(test_mixer_options);
    RUN(test_option_errors);
    RUN(test_stored_flat_keys);
    return TEST_SUMMARY();
}
