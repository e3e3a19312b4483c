/* The integration tests' harness: the real server (longserve, from $LONGSERVE) on
 * 127.0.0.1 with an ephemeral port (--port 0, --port-file), the fixture models, longserve-run
 * for comparisons, and requests whose responses are validated against proto/openapi.yaml.
 * Nothing depends on timing luck: a request is known to be queued or running by reading
 * /metrics (inflight requests, engine busy), and --debug-engine-delay-ms keeps it there for
 * long enough; every wait has a generous timeout. Every failure fails the test (Check). */
#ifndef LS_TESTS_SERVER_HARNESS_H
#define LS_TESTS_SERVER_HARNESS_H

#include <stddef.h>
#include <sys/types.h>

#include <check.h>
#include <cjson/cJSON.h>

#include "httpc.h"

/* ---- the server process ------------------------------------------------------------------ */

typedef struct {
    pid_t pid;
    int port;
    char port_file[64], log_file[64];
} server;

/* $LS_FIXTURES/model (tests/fixtures by default) into buf. */
const char *fixture(const char *model, char *buf, size_t n);
double now_s(void);
void sleep_ms(int ms);

/* Starts longserve with models ("name=fixture-subdir" or "name=/abs/dir", NULL-terminated)
 * and extra flags (NULL-terminated, after the harness's own: a flag given again wins);
 * returns once it is ready (/ready 200). Its stderr goes to s->log_file. */
void server_start_models(server *s, const char *const *models, const char *const *extra);
/* The steps of server_start_models: start the process; wait until it has written its port
 * (it listens, models may still load); wait until /ready is 200. Each fails the test when
 * the process exits or after a generous timeout. */
void server_spawn_models(server *s, const char *const *models, const char *const *extra);
void server_wait_port(server *s);
void server_wait_ready(server *s);
/* Waits for the process to exit by itself: its exit status (or -signal); fails after
 * timeout_s. The port and log files are left for the test to read. */
int server_wait_exit(server *s, double timeout_s);
/* Starts longserve with the models lf_base, lf_qa and lf_seqcls and extra flags. */
void server_start(server *s, const char *const *extra);
/* Starts longserve with the text-route fixtures of tools/make_embed_fixtures.py
 * (tests/fixtures/embed/: st_tiny, seqcls, tokcls, mlm, qa) and lf_base. */
void text_server(server *s, const char *const *extra);
/* SIGTERM, then the exit status (or -signal); fails after timeout_s. */
int server_stop(server *s, double timeout_s);

/* ---- proto/openapi.yaml: every response is validated against the schema of its route ---- */

/* The spec, loaded once. */
const cJSON *spec(void);
/* Validates a response against the spec where the spec documents a JSON body for its route,
 * method and status (silently skipped otherwise); returns OA_OK or OA_UNDOCUMENTED. */
int spec_check(const char *method, const char *path, const hresp *r);
/* As spec_check, and the spec must document this response's JSON body. */
void spec_expect(const char *method, const char *path, const hresp *r);

/* ---- requests ------------------------------------------------------------------------------ */

/* One request on its own connection, the response in *r, checked with spec_check. */
void hreq(int port, const char *method, const char *path, const char *headers, const char *body,
          hresp *r);
/* POST a cJSON body (deleted here). */
void post_json(int port, const char *path, cJSON *body, hresp *r);
/* max |a - b| / max |b| over two JSON arrays of numbers of the same length. */
double json_rel_err(const cJSON *a, const cJSON *b);
/* The float32 values of OpenAI's base64 (of little-endian bytes) into out[0..cap): their
 * count (fails the test on a character outside the alphabet). */
int b64_floats(const char *s, float *out, int cap);
/* The body as JSON (it must be). */
cJSON *hjson(const hresp *r);
/* GET /metrics and the value of one series (exact name with labels), -1 when absent; a
 * bare name whose samples all carry labels (the per-model series) gives their sum. */
double metric(int port, const char *series);
void wait_metric_at_least(int port, const char *series, double v);
/* Runs `promtool check metrics` on GET /metrics when promtool is on PATH (1), failing the
 * test on any problem it reports; 0 (with a message) when promtool is not installed. */
int promtool_check(int port);
void expect_healthy(int port);

/* ---- bodies and files ---------------------------------------------------------------------- */

/* A v2 body for lf_base: `rows` rows of `len` token ids from a seed (0 ... 2 framed). */
char *v2_body(int rows, int len, int seed);
/* The whole file, NUL-terminated (malloc'd); fails when absent. */
char *read_file(const char *path);
/* A fixture file (path under tests/fixtures) parsed as JSON. */
cJSON *fixture_json(const char *rel);
/* longserve-run's stdout for a body (its trailing newline removed). */
char *run_runner(const char *model, const char *body);

/* zlib for the Content-Encoding tests: in[0..n) inflated (gzip or zlib format) or compressed
 * (gzip when gzip, else zlib), malloc'd (NUL-terminated when inflated); NULL on bad data. */
char *hinflate(const char *in, size_t n, size_t *outlen);
char *hdeflate(const char *in, size_t n, int gzip, size_t *outlen);

/* Runs a suite and frees it: main's exit status (0 when every test passed). */
int harness_run(Suite *su);

#endif
