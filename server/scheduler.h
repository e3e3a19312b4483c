/* The scheduler (DESIGN §5): per model, two lanes (short and long requests) served with
 * weighted fairness by cost, and batch formation under a token budget, a cost budget and
 * a request count. It runs on the loop thread and knows nothing of HTTP or the engine:
 * items carry their cost, token count, batch-compatibility key, deadline and socket. A
 * cost is whatever the model says its work costs (eng_model_cost: attention-aware units
 * for Longformer), so the scheduler stays model-agnostic. */
#ifndef SRV_SCHED_H
#define SRV_SCHED_H

#include <stddef.h>
#include <stdint.h>

enum { SCHED_SHORT, SCHED_LONG, SCHED_NLANES };
enum { SCHED_MAX_OPS = 16 }; /* kernel ops a batch reports timings for */

typedef enum { SCHED_LIVE, SCHED_DROP_DEADLINE, SCHED_DROP_GONE } sched_fate;

typedef struct sched_item {
    struct sched_item *next;
    /* filled by the submitter */
    size_t tokens;
    double cost;
    int key;              /* only items with equal keys share a batch */
    int solo;             /* shares a batch with nothing (a step of a job in steps) */
    int fd;               /* the client's socket, to see it leave (-1: unknown) */
    int probe;            /* 1: nothing is sent on fd yet and the client speaks HTTP/1.1, so
                           * a peer that half-closed may be asked once whether it still
                           * reads (an interim 100 Continue); 2: asked */
    uint64_t arrival_ns;  /* monotonic */
    uint64_t deadline_ns; /* 0: none */
    void *owner;
    /* filled by the scheduler and the worker */
    int lane;
    sched_fate fate;
    uint64_t start_ns; /* when its batch started */
} sched_item;

typedef struct {
    size_t max_tokens;
    double max_cost;
    int max_requests;
    uint64_t delay_ns;  /* an idle engine waits this long after the oldest item */
    size_t long_tokens; /* items with more tokens are long */
    double weight[SCHED_NLANES];
} sched_params;

typedef struct sched_batch {
    sched_item **items; /* [cap] */
    int n, cap;
    size_t tokens;
    double cost;
    int key;
    int closed;                     /* budget reached: no more items */
    uint64_t not_before_ns;         /* the engine may start it before only when closed */
    double infer_s;                 /* engine seconds, set by the worker */
    double kernel_s[SCHED_MAX_OPS]; /* seconds in each engine kernel op (eng_op_name order) */
    double pad_ratio; /* padding tokens / tokens of the items that ran, set by the worker */
    int status;       /* ls_status of the whole batch, set by the worker */
    struct sched_batch *next;
} sched_batch;

typedef struct {
    sched_item *head, *tail;
    int n;
    double cost;
} sched__lane;

typedef struct {
    sched_params p;
    sched__lane lane[SCHED_NLANES];
    double vt[SCHED_NLANES]; /* cost served / weight: the lane furthest behind goes next */
} sched;

void sched_init(sched *s, const sched_params *p);
void sched_push(sched *s, sched_item *it, uint64_t now_ns);
int sched_depth(const sched *s);
double sched_queued_cost(const sched *s);
/* Takes every queued item out (shutdown), as a list. */
sched_item *sched_take_all(sched *s);

sched_batch *sched_batch_new(const sched_params *p);
void sched_batch_free(sched_batch *b);

/* Moves queued items into b while they fit, lane by lane in fairness order. Items past
 * their deadline or whose client left are not moved but prepended to *dropped with their
 * fate set. Returns the number of items moved. */
int sched_fill(sched *s, sched_batch *b, uint64_t now_ns, sched_item **dropped);

/* A batch not yet taken that holds only a step of a job in steps (a solo item) goes back to
 * its lane's head when other items wait, so that sched_fill chooses again by fairness: a
 * short request that arrives after the step was put in the mailbox still runs before it.
 * Returns 1 when b was emptied. */
int sched_unfill_solo(sched *s, sched_batch *b);

/* The item's fate at now: deadline passed, client gone (its connection reset or closed
 * both ways; a half-close alone is legal), or live. May send it->fd its probe. */
sched_fate sched_item_check(sched_item *it, uint64_t now_ns);

uint64_t sched_now_ns(void);

#endif
