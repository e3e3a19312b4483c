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

#endif
