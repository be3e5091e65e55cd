/* Run results of a sweep (results.h). */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/file.h"
#include "sweep/results.h"

#define MAX_LOG_BYTES ((int64_t)1 << 30)

sl_status sl_run_log_read(const char *dir, sl_run_log *log)
{
    *log = (sl_run_log){0};
    char path[SL_PATH_LEN + 32];
    snprintf(path, sizeof path, "%s/metrics.jsonl", dir);
    char *text;
    int64_t len;
    if (access(path, F_OK) != 0) return SL_OK;
    sl_status st = sl_read_text(path, "metrics log", MAX_LOG_BYTES, &text, &len);
    if (st) return st;
    const char *val = NULL;
    for (char *line = text, *next; line && *line; line = next) {
        next = strchr(line, '\n');
        if (next) *next++ = '\0';
        if (strncmp(line, "{\"step\":", 8) != 0) continue;
        const long long step = strtoll(line + 8, NULL, 10);
        if (step > log->steps) log->steps = step;
        if (strstr(line, "\"split\":\"val\"")) val = line;
        if (strstr(line, "\"stopped\":\"target\"")) log->stopped = true;
    }
    if (val && (log->val = cJSON_Parse(val)) && cJSON_IsObject(log->val)) {
        cJSON_DeleteItemFromObjectCaseSensitive(log->val, "step");
        cJSON_DeleteItemFromObjectCaseSensitive(log->val, "split");
    } else {
        cJSON_Delete(log->val);
        log->val = NULL;
    }
    free(text);
    return SL_OK;
}

void sl_run_log_free(sl_run_log *log)
{
    cJSON_Delete(log->val);
    log->val = NULL;
}

/* {axis: value, ...}; an axis of objects gives its index, then its keys. */
static cJSON *params(const sl_sweep *s, int64_t run)
{
    int64_t idx[s->n_axes];
    sl_sweep_indices(s, run, idx);
    cJSON *p = cJSON_CreateObject();
    for (int64_t a = 0; p && a < s->n_axes; a++) {
        const sl_sweep_axis *ax = &s->axes[a];
        const sl_sweep_choice *c = &ax->choice[idx[a]];
        if (ax->objects) cJSON_AddNumberToObject(p, ax->name, (double)idx[a]);
        for (int64_t k = 0; k < c->n; k++)
            cJSON_AddItemToObject(p, c->kv[k].key, cJSON_Duplicate(c->kv[k].json, true));
    }
    return p;
}

cJSON *sl_sweep_result(const sl_sweep *s, int64_t run, const char *status, sl_run_log *log,
                       double wall_s, cJSON **test, const char *error)
{
    char name[SL_SWEEP_NAME_LEN + 1];
    sl_sweep_name(s, run, name, sizeof name);
    cJSON *r = cJSON_CreateObject();
    if (!r) return NULL;
    cJSON_AddStringToObject(r, "name", name);
    cJSON_AddItemToObject(r, "params", params(s, run));
    cJSON_AddStringToObject(r, "status", status);
    if (error) cJSON_AddStringToObject(r, "error", error);
    cJSON_AddNumberToObject(r, "steps", (double)log->steps);
    cJSON_AddNumberToObject(r, "wall_s", (double)(int64_t)(wall_s * 1000 + 0.5) / 1000);
    cJSON_AddBoolToObject(r, "stopped_early", log->stopped);
    cJSON_AddItemToObject(r, "val", log->val ? log->val : cJSON_CreateNull());
    log->val = NULL;
    cJSON_AddItemToObject(r, "test", test && *test ? *test : cJSON_CreateNull());
    if (test) *test = NULL;
    return r;
}

sl_status sl_sweep_result_write(const char *dir, const cJSON *result)
{
    char path[SL_PATH_LEN + 32];
    snprintf(path, sizeof path, "%s/result.json", dir);
    char *text = cJSON_PrintUnformatted(result);
    if (!text) return sl_fail(SL_ERR_OOM, "%s: out of memory", path);
    const size_t n = strlen(text);
    char *line = realloc(text, n + 2);
    if (!line) {
        free(text);
        return sl_fail(SL_ERR_OOM, "%s: out of memory", path);
    }
    line[n] = '\n';
    line[n + 1] = '\0';
    sl_status st = sl_write_atomic(path, line, n + 1);
    free(line);
    return st;
}

cJSON *sl_sweep_result_read(const char *dir)
{
    char path[SL_PATH_LEN + 32];
    snprintf(path, sizeof path, "%s/result.json", dir);
    if (access(path, F_OK) != 0) return NULL;
    char *text;
    int64_t len;
    if (sl_read_text(path, "result", 64 << 20, &text, &len)) return NULL;
    cJSON *r = cJSON_Parse(text);
    free(text);
    if (!cJSON_IsObject(r)) {
        cJSON_Delete(r);
        return NULL;
    }
    return r;
}

bool sl_sweep_result_done(const cJSON *result)
{
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(result, "status");
    return cJSON_IsString(st) && strcmp(st->valuestring, "done") == 0;
}
