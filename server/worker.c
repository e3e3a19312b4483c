/* The engine worker thread and its mailbox. All fields under mu; the loop thread and the
 * worker meet only here. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "worker.h"

struct wk_worker {
    pthread_t th;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    sched_batch *open;              /* mailbox: filled by the loop until the worker takes it */
    sched_batch *done, **done_tail; /* finished, oldest first */
    int running, stop;
    wk_init_fn init;
    wk_run_fn run;
    void *arg;
    int init_done, init_rc; /* the load, reported through `loaded` */
    char init_err[1024];
    uv_async_t *notify, *loaded;
    int delay_ms;
};

static void wk__sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR) {
    }
}

static void *wk__main(void *p)
{
    wk_worker *w = p;
    char err[sizeof w->init_err] = "";
    int rc = w->init ? w->init(w->arg, err, sizeof err) : 0;
    pthread_mutex_lock(&w->mu);
    w->init_done = 1;
    w->init_rc = rc;
    memcpy(w->init_err, err, sizeof err);
    pthread_mutex_unlock(&w->mu);
    uv_async_send(w->loaded); /* after init_done: the loop reads it when this arrives */
    if (rc) return NULL;
    pthread_mutex_lock(&w->mu);
    for (;;) {
        sched_batch *b = w->open;
        if (b && b->n > 0) {
            uint64_t now = sched_now_ns();
            if (b->closed || now >= b->not_before_ns || w->stop) {
                w->open = NULL;
                w->running = 1;
                pthread_mutex_unlock(&w->mu);
                uv_async_send(w->notify); /* the loop starts the next batch */
                /* items whose client left or whose deadline passed while they waited do
                 * not run */
                int live = 0;
                for (int i = 0; i < b->n; i++) {
                    sched_item *it = b->items[i];
                    it->fate = sched_item_check(it, now);
                    it->start_ns = now;
                    live += it->fate == SCHED_LIVE;
                }
                if (live && w->delay_ms) wk__sleep_ms(w->delay_ms);
                uint64_t t0 = sched_now_ns();
                if (live) w->run(w->arg, b);
                b->infer_s = (double)(sched_now_ns() - t0) * 1e-9;
                pthread_mutex_lock(&w->mu);
                b->next = NULL;
                *w->done_tail = b;
                w->done_tail = &b->next;
                w->running = 0;
                uv_async_send(w->notify);
                continue;
            }
            /* wait for the batch to fill or age */
            struct timespec ts = {(time_t)(b->not_before_ns / 1000000000u),
                                  (long)(b->not_before_ns % 1000000000u)};
            pthread_cond_timedwait(&w->cv, &w->mu, &ts);
            continue;
        }
        if (w->stop) break;
        pthread_cond_wait(&w->cv, &w->mu);
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

wk_worker *wk_start(wk_init_fn init, wk_run_fn run, void *arg, uv_async_t *notify,
                    uv_async_t *loaded, int debug_delay_ms, char *err, size_t errlen)
{
    wk_worker *w = calloc(1, sizeof *w);
    if (!w) {
        snprintf(err, errlen, "engine worker: out of memory");
        return NULL;
    }
    w->init = init;
    w->run = run;
    w->arg = arg;
    w->notify = notify;
    w->loaded = loaded;
    w->delay_ms = debug_delay_ms;
    w->done_tail = &w->done;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC); /* deadlines come from sched_now_ns */
    int rc = pthread_mutex_init(&w->mu, NULL);
    if (!rc) rc = pthread_cond_init(&w->cv, &ca);
    pthread_condattr_destroy(&ca);
    if (!rc) rc = pthread_create(&w->th, NULL, wk__main, w);
    if (rc) {
        snprintf(err, errlen, "engine worker: %s", strerror(rc));
        free(w);
        return NULL;
    }
    return w;
}

int wk_init_result(wk_worker *w, char *err, size_t errlen)
{
    pthread_mutex_lock(&w->mu);
    int rc = !w->init_done ? 1 : w->init_rc ? -1 : 0;
    if (rc < 0) snprintf(err, errlen, "%s", w->init_err);
    pthread_mutex_unlock(&w->mu);
    return rc;
}

void wk_stop(wk_worker *w)
{
    if (!w) return;
    pthread_mutex_lock(&w->mu);
    w->stop = 1;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->th, NULL);
    pthread_cond_destroy(&w->cv);
    pthread_mutex_destroy(&w->mu);
    sched_batch_free(w->open);
    for (sched_batch *b = w->done, *n; b; b = n) {
        n = b->next;
        sched_batch_free(b);
    }
    free(w);
}

int wk_offer(wk_worker *w, sched *s, sched_item **dropped)
{
    if (sched_depth(s) == 0) return 0;
    int rc = 0;
    pthread_mutex_lock(&w->mu);
    if (!w->open && !(w->open = sched_batch_new(&s->p))) rc = -1;
    if (w->open) {
        int had = w->open->n;
        if (sched_unfill_solo(s, w->open)) had = -1;
        sched_fill(s, w->open, sched_now_ns(), dropped);
        if (w->open->n != had) pthread_cond_signal(&w->cv);
    }
    pthread_mutex_unlock(&w->mu);
    return rc;
}

sched_batch *wk_collect(wk_worker *w, int *running)
{
    pthread_mutex_lock(&w->mu);
    sched_batch *d = w->done;
    w->done = NULL;
    w->done_tail = &w->done;
    *running = w->running;
    pthread_mutex_unlock(&w->mu);
    return d;
}

int wk_holds_work(wk_worker *w)
{
    pthread_mutex_lock(&w->mu);
    int r = (w->open && w->open->n) || w->running || w->done;
    pthread_mutex_unlock(&w->mu);
    return r;
}

sched_batch *wk_take_open(wk_worker *w)
{
    pthread_mutex_lock(&w->mu);
    sched_batch *b = w->open;
    w->open = NULL;
    pthread_mutex_unlock(&w->mu);
    return b;
}
