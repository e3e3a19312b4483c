/* The one batch loop every job kind runs on the engine worker: pack the rows (token
 * sequences) of several jobs into one ragged eng_batch, run the forward, and hand each
 * job its slice of the outputs; when the forward refuses the batch for an input error
 * (something only the engine can judge, such as a QA row without its separators), every
 * job runs alone, so that one request's bad input cannot fail its batch-mates and its
 * message is its own.
 *
 *     static const bt_ops ops = {.nrows = my_nrows, .row = my_row, .keep = my_keep,
 *                                .fail = my_fail};
 *     bt_run(ctx, &ops, (void *const *)jobs, n, &stats, err, errlen);
 *
 * A job's outputs never depend on its batch-mates: rows are independent sequences. */
#ifndef SRV_BATCH_H
#define SRV_BATCH_H

#include <stddef.h>
#include <stdint.h>

#include "../engine/engine.h"

/* One row of a job, borrowed for the packing. */
typedef struct {
    int n;                   /* tokens */
    const int32_t *ids;      /* [n] */
    const int32_t *type_ids; /* [n], or NULL: all 0 */
    const uint8_t *attn;     /* [n] 1 keep / 0 padding, or NULL: all kept */
    const uint8_t *glob;     /* [n] 1 global, or NULL: the head's automatic choice */
    int num_hashes;          /* Reformer LSH rounds, 0: the model's */
    int has_hash_seed;       /* Reformer rotations' seed given (hash_seed) */
    int64_t hash_seed;
} bt_row;

typedef struct {
    int (*nrows)(const void *job);
    void (*row)(const void *job, int i, bt_row *out);
    /* Before a run: clears the job's verdict. */
    void (*reset)(void *job);
    /* After a successful forward: the job keeps what it needs of its rows (tokens from
     * tok0, sequences from seq0); a failure becomes the job's verdict. */
    void (*keep)(void *job, const eng_outputs *out, size_t tok0, size_t seq0);
    /* The forward failed for the job: its verdict (st, msg). */
    void (*fail)(void *job, ls_status st, const char *msg);
} bt_ops;

typedef struct {
    size_t tokens, pad; /* tokens packed, of which padding (attn 0) */
} bt_stats;

/* Runs jobs of one kind as one packed batch (or one by one, see above) and sets every
 * job's verdict through ops. Jobs whose rows mix explicit and automatic global masks
 * cannot share a batch (eng_batch has one mask or none): they run one by one. Returns
 * LS_OK unless something failed for all of them that is not the requests' fault (out of
 * memory, device); stats (may be NULL) adds what was packed. */
ls_status bt_run(eng_ctx *ctx, const bt_ops *ops, void *const *jobs, int n, bt_stats *stats,
                 char *err, size_t errlen);

/* A job's forward in steps (engine.h eng_fwd_*), so that a long request holds the engine
 * one step at a time and other batches run between its steps:
 *
 *     bt_steps_plan(&j->steps, info, cost, step_cost, 0);  // loop: one-shot or steps
 *     while (...) bt_step(ctx, &ops, j, &j->steps, ...);    // worker: one step per turn
 *     bt_steps_free(&j->steps);                             // with the job
 *
 * The rows of the job are one packed batch, as bt_run packs them alone; the outputs are
 * bit for bit bt_run's. */
typedef struct {
    eng_fwd *fwd; /* the engine's state between steps, NULL before the first and after the last */
    int per;      /* layers per step; 0: the job runs one-shot (bt_run) */
    int layers;   /* the model's */
    int started;  /* the first step has run */
} bt_steps;

/* Chooses steps for a job of `cost` (eng_model_cost units) when one engine turn may take
 * step_cost: none when the job fits in one turn, the model cannot step (a Reformer) or
 * step_cost is 0; force_per > 0 forces that many layers per step (testing). Returns
 * s->per. */
int bt_steps_plan(bt_steps *s, const eng_model_info *info, double cost, double step_cost,
                  int force_per);
/* The share of cost the next step computes (cost itself when the job runs one-shot). */
double bt_steps_next_cost(const bt_steps *s, double cost);
/* 1 while the job has steps left (it started and has not finished). */
int bt_steps_more(const bt_steps *s);
/* Runs the job's next step: its embeddings and first layers on the first call, its head
 * and ops->keep after the last layer. Verdicts as bt_run's: an input error or a failure
 * ends the steps (the state is freed) and becomes the job's; LS_OK unless the failure is
 * not the request's fault. */
ls_status bt_step(eng_ctx *ctx, const bt_ops *ops, void *job, bt_steps *s, bt_stats *stats,
                  char *err, size_t errlen);
void bt_steps_free(bt_steps *s);

#endif
