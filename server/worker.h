/* The engine worker: one thread per model that owns the model's eng_ctx. The loop thread
 * keeps an open batch in the worker's mailbox and tops it up (wk_offer); the worker takes
 * it when it is idle and the batch is closed or old enough, so the next batch forms while
 * one runs. Finished batches go back through a list and one uv_async_send; the loop
 * drains the whole list in its callback (uv_async_send coalesces). */
#ifndef SRV_WORKER_H
#define SRV_WORKER_H

#include <uv.h>

#include "scheduler.h"

typedef struct wk_worker wk_worker;

/* Runs the engine on b's items whose fate is SCHED_LIVE; on the worker thread. */
typedef void (*wk_run_fn)(void *arg, sched_batch *b);

/* Runs on the worker thread before any batch: loads what the thread will own (the model,
 * its context: thread-local settings such as OpenMP's thread count then apply to the
 * thread that computes). Returns 0, or -1 with a message in err. */
typedef int (*wk_init_fn)(void *arg, char *err, size_t errlen);

/* Starts the thread, which runs init first; does not wait for it. loaded is signalled
 * (uv_async_send) once init has returned (wk_init_result says how), notify whenever a
 * batch is taken or finished. NULL with err filled when the thread cannot start. */
wk_worker *wk_start(wk_init_fn init, wk_run_fn run, void *arg, uv_async_t *notify,
                    uv_async_t *loaded, int debug_delay_ms, char *err, size_t errlen);
/* Loop thread: 1 while init runs, 0 when it succeeded, -1 when it failed (its message in
 * err; the thread has ended). */
int wk_init_result(wk_worker *w, char *err, size_t errlen);
/* Stops after the mailbox is empty and the running batch is done, and joins the thread
 * (after init, which cannot be interrupted: see wk_init_result). wk_stop(NULL) is a no-op. */
void wk_stop(wk_worker *w);

/* Loop thread: tops up the mailbox batch from s (a new one when the worker has taken the
 * last). Items dropped on the way are prepended to *dropped. Returns -1 when out of memory. */
int wk_offer(wk_worker *w, sched *s, sched_item **dropped);
/* Loop thread: the finished batches since the last call (a list through ->next), and
 * whether a batch is running now. */
sched_batch *wk_collect(wk_worker *w, int *running);
/* Loop thread: takes back the mailbox batch the worker has not started (shutdown);
 * NULL when there is none. */
sched_batch *wk_take_open(wk_worker *w);
/* Loop thread: 1 while the worker holds any item (mailbox, running or finished). */
int wk_holds_work(wk_worker *w);

#endif
