/* Config: parsing, type errors naming the key, overrides, validation. */
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

int main(void)
{
    RUN(test_parse_and_roundtrip);
    RUN(test_errors_name_file_and_key);
    RUN(test_overrides);
    RUN(test_validation);
    return TEST_SUMMARY();
}
