/* The server's configuration: ONE table (name, type, bounds, default, flags, help) drives
 * the command-line flags (--name VALUE or --name=VALUE), the environment variables
 * (LONGSERVE_NAME, '-' as '_'; flags win over the environment) and what /info shows.
 * Secrets (--api-key, the contents of --api-key-file and --tls-key) are never logged nor
 * shown. */
#ifndef SRV_OPTIONS_H
#define SRV_OPTIONS_H

#include <stddef.h>
#include <stdio.h>

enum { OPT_MAX_MODELS = 16, OPT_MAX_ALIASES = 16 };

/* OPT_ALIAS: repeatable "NAME" or "NAME=MODEL" (another name requests may use for a model) */
typedef enum { OPT_INT, OPT_STR, OPT_BOOL, OPT_MODEL, OPT_ALIAS } opt_type;

enum {
    OPT_SECRET = 1, /* value never logged; /info shows only whether it is set */
    OPT_NOINFO = 2, /* not shown in /info (paths of this process, debugging aids) */
};

// clang-format off
/*       flag                        field                    type      min   max          default    flags       help */
#define OPT_LIST(X)                                                                                                  \
    X("model-id",                    model_id,                OPT_MODEL, 0,   0,           "",        0,                       \
      "NAME=DIR: serve the Hugging Face model directory DIR as NAME (repeatable; NAME defaults to DIR's last component)") \
    X("served-model-name",           served_model_name,       OPT_ALIAS, 0,   0,           "",        0,                       \
      "ALIAS or ALIAS=NAME: requests' \"model\" (and /v1/models/ALIAS) may name the model NAME (the only model when omitted) ALIAS; repeatable") \
    X("accept-any-model-name",       accept_any_model_name,   OPT_BOOL, 0,    1,           "false",   0,          "with exactly one model served, any \"model\" a request names is that model (OpenAI/TEI/TGI bodies; not /v2 paths)") \
    X("hostname",                    hostname,                OPT_STR,  0,    0,           "0.0.0.0", 0,          "address to listen on") \
    X("port",                        port,                    OPT_INT,  0,    65535,       "3000",    0,          "TCP port; 0 binds an ephemeral port, logged as 'listening on HOST:PORT'") \
    X("port-file",                   port_file,               OPT_STR,  0,    0,           "",        OPT_NOINFO, "write the bound port to this file once listening (before the models load: /ready says when they have)") \
    X("max-batch-tokens",            max_batch_tokens,        OPT_INT,  1,    1 << 24,     "16384",   0,          "a batch closes when it holds this many tokens") \
    X("max-batch-cost",              max_batch_cost,          OPT_INT,  0,    1LL << 50,   "0",       0,          "a batch closes at this attention-aware cost (0: max-batch-tokens at the model's window, no global tokens)") \
    X("max-batch-requests",          max_batch_requests,      OPT_INT,  1,    4096,        "64",      0,          "a batch closes when it holds this many requests") \
    X("max-queue-delay-us",          max_queue_delay_us,      OPT_INT,  0,    10000000,    "0",       0,          "an idle engine waits this long after the oldest request for a fuller batch") \
    X("max-concurrent-requests",     max_concurrent_requests, OPT_INT,  1,    1 << 20,     "512",     0,          "requests admitted at once (queued or running); beyond it 429 with Retry-After") \
    X("max-input-tokens",            max_input_tokens,        OPT_INT,  1,    1 << 22,     "131072",  0,          "tokens one request may carry (rows x length)") \
    X("max-client-batch-size",       max_client_batch_size,   OPT_INT,  1,    1 << 16,     "32",      0,          "inputs one text request may carry (413 beyond)") \
    X("max-chunks",                  max_chunks,              OPT_INT,  1,    1 << 20,     "1024",    0,          "chunks one /embed or /v1/embeddings request may ask for, all inputs together (413 beyond)") \
    X("max-global-tokens",           max_global_tokens,       OPT_INT,  0,    1 << 20,     "512",     0,          "global-attention tokens one sequence may ask for (422 beyond)") \
    X("auto-truncate",               auto_truncate,           OPT_BOOL, 0,    1,           "false",   0,          "truncate over-long text inputs (right) when the request does not say; otherwise they are refused (413)") \
    X("payload-limit",               payload_limit,           OPT_INT,  1,    1LL << 31,   "2000000", 0,          "largest request body in bytes (413 beyond, checked before reading it)") \
    X("max-connections",             max_connections,         OPT_INT,  16,   1 << 20,     "16384",   0,          "client connections open at once; beyond it new ones wait in the listen backlog (the open-file limit is raised to fit; an idle one costs a few KiB)") \
    X("max-connections-per-ip",      max_connections_per_ip,  OPT_INT,  0,    1 << 20,     "0",       0,          "connections one client address may hold; more are refused (0: no limit, as behind a proxy)") \
    X("header-timeout",              header_timeout,          OPT_INT,  1,    3600,        "10",      0,          "seconds a client has to send a request's headers (on a kept-alive connection: from the end of the last request)") \
    X("min-body-rate",               min_body_rate,           OPT_INT,  0,    1LL << 31,   "1024",    0,          "bytes per second a body must average once header-timeout has passed since its headers (0: no limit)") \
    X("idle-timeout",                idle_timeout,            OPT_INT,  1,    86400,       "120",     0,          "seconds a connection may pass with no bytes either way (a request waiting for the engine is not idle)") \
    X("connection-memory",           connection_memory,       OPT_INT,  8192, 1 << 24,     "131072",  0,          "bytes of memory per connection for the request line and headers (431 beyond)") \
    X("request-timeout-ms",          request_timeout_ms,      OPT_INT,  0,    86400000,    "60000",   0,          "deadline of a request from its arrival, also between the steps of a long one (504 beyond); 0: none. The default is the usual proxy read timeout (nginx, ingress): past it nobody reads the reply") \
    X("engine-step-ms",              engine_step_ms,          OPT_INT,  0,    600000,      "50",      0,          "a request predicted to take longer runs a block of layers of about this many ms per engine turn, and queued batches run between its blocks; 0: every request runs in one piece (Reformer models always do)") \
    X("max-request-seconds",         max_request_seconds,     OPT_INT,  0,    86400,       "30",      0,          "refuse (413) a request whose predicted engine time, at the speed measured at warm-up, is over this many seconds; 0: no bound") \
    X("max-request-cost",            max_request_cost,        OPT_INT,  0,    1LL << 60,   "0",       0,          "refuse (413) a request over this cost (the scheduler's units; the model-loaded log line says the bound and its tokens); 0: max-request-seconds at the warm-up speed. Set it to refuse the same requests on every replica") \
    X("long-request-tokens",         long_request_tokens,     OPT_INT,  1,    1 << 24,     "2048",    0,          "requests with more tokens go to the long lane") \
    X("short-lane-weight",           short_lane_weight,       OPT_INT,  1,    1000,        "4",       0,          "share of engine cost the short lane gets against the long lane's 1") \
    X("api-key",                     api_key,                 OPT_STR,  0,    0,           "",        OPT_SECRET, "require 'Authorization: Bearer KEY' (all routes but health and metrics)") \
    X("api-key-file",                api_key_file,            OPT_STR,  0,    0,           "",        OPT_NOINFO, "read the API key from this file (first line)") \
    X("tls-cert",                    tls_cert,                OPT_STR,  0,    0,           "",        0,          "serve HTTPS with this PEM certificate (chain) file; needs --tls-key") \
    X("tls-key",                     tls_key,                 OPT_STR,  0,    0,           "",        0,          "the PEM private key file of --tls-cert (read at start; its contents are never logged)") \
    X("tls-client-ca",               tls_client_ca,           OPT_STR,  0,    0,           "",        0,          "with --tls-cert: require client certificates signed by a CA of this PEM file (401 without)") \
    X("cors-allow-origin",           cors_allow_origin,       OPT_STR,  0,    0,           "",        0,          "send CORS headers for this origin ('*' for any); off when empty") \
    X("json-output",                 json_output,             OPT_BOOL, 0,    1,           "false",   0,          "log one JSON object per line") \
    X("shutdown-timeout",            shutdown_timeout,        OPT_INT,  0,    3600,        "30",      0,          "seconds to drain in-flight requests after SIGTERM/SIGINT") \
    X("window",                      window,                  OPT_INT,  0,    1 << 20,     "0",       0,          "attention window (both sides) of bert/roberta sequences longer than --full-attention (Longformer attention; 0: the engine's default, 512)") \
    X("full-attention",              full_attention,          OPT_INT,  -1,   1 << 20,     "-1",      0,          "bert/roberta: sequences of at most this many tokens attend fully, exactly as the original model (-1: its trained length, max_position_embeddings; 0: never, Longformer attention at every length)") \
    X("threads",                     threads,                 OPT_INT,  0,    1024,        "0",       0,          "CPU threads of the engine (0: OpenMP's default)") \
    X("backend",                     backend,                 OPT_STR,  0,    0,           "cpu",     0,          "engine backend: cpu (our GEMM, ISA by cpuid; LONGSERVE_ISA forces portable/avx2/avx512), blas (OpenBLAS linear layers), ref, cuda") \
    X("dtype",                       dtype,                   OPT_STR,  0,    0,           "float32", 0,          "precision of the linear layers: float32 (exact to Hugging Face) or bfloat16/bf16 (cpu backend, CPUs with AMX-BF16 or AVX512_BF16 only, refused elsewhere; LONGSERVE_BF16 forces amx-bf16/avx512-bf16)") \
    X("debug-engine-delay-ms",       debug_engine_delay_ms,   OPT_INT,  0,    600000,      "0",       OPT_NOINFO, "testing aid: the engine sleeps this long before each batch") \
    X("debug-step-layers",           debug_step_layers,       OPT_INT,  0,    1024,        "0",       OPT_NOINFO, "testing aid: every request of the long lane runs in steps of this many layers, whatever its cost") \
    X("debug-exit-delay-ms",         debug_exit_delay_ms,     OPT_INT,  0,    600000,      "0",       OPT_NOINFO, "testing aid: after the loop stops, the teardown sleeps this long before freeing the models") \
    X("debug-load-delay-ms",         debug_load_delay_ms,     OPT_INT,  0,    600000,      "0",       OPT_NOINFO, "testing aid: each model's loading sleeps this long first (the server answers probes meanwhile)")
// clang-format on

typedef struct {
    char name[128];
    char path[1024];
} opt_model;

typedef struct {
    char alias[128];
    int model; /* index in model_id[] */
} opt_alias;

typedef struct {
    opt_model model_id[OPT_MAX_MODELS];
    int nmodels;
    opt_alias served_model_name[OPT_MAX_ALIASES];
    int naliases;
    char alias_spec[OPT_MAX_ALIASES][260]; /* as given, resolved once every model is known */
#define OPT__FIELD_OPT_INT(f) long long f;
#define OPT__FIELD_OPT_STR(f) char *f;
#define OPT__FIELD_OPT_BOOL(f) int f;
#define OPT__FIELD_OPT_MODEL(f)
#define OPT__FIELD_OPT_ALIAS(f)
#define OPT__FIELD(flag, f, type, lo, hi, def, flags, help) OPT__FIELD_##type(f)
    OPT_LIST(OPT__FIELD)
#undef OPT__FIELD
    /* the contents of --tls-cert, --tls-key and --tls-client-ca, read by opt_parse (NULL
     * without TLS); tls_key_pem is wiped by opt_free */
    char *tls_cert_pem, *tls_key_pem, *tls_ca_pem;
    char *strings[64]; /* every string value is a copy owned here */
    int nstrings;
} opt_options;

/* Fills o from the defaults, the environment and argv, in that order. Returns 0, or 1
 * after --help / --version (printed), or -1 with a message in err. */
int opt_parse(opt_options *o, int argc, char **argv, char *err, size_t errlen);
void opt_free(opt_options *o);
void opt_usage(FILE *f);

/* Walks the table for /info and the startup log: name (with '_'), type, value; secrets
 * come as OPT_SECRET with the value NULL or "set". key, and sval for OPT_MODEL and
 * OPT_ALIAS, live on opt_visit's stack: copy them to keep them past the call. */
typedef void (*opt_visit_fn)(void *arg, const char *key, opt_type type, int flags, long long ival,
                             const char *sval);
void opt_visit(const opt_options *o, opt_visit_fn fn, void *arg);

#endif
