/* Lanes, fairness and batch formation (scheduler.h). */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "scheduler.h"

uint64_t sched_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void sched_init(sched *s, const sched_params *p)
{
    memset(s, 0, sizeof *s);
    s->p = *p;
    for (int l = 0; l < SCHED_NLANES; l++)
        if (s->p.weight[l] <= 0) s->p.weight[l] = 1;
}

void sched_push(sched *s, sched_item *it, uint64_t now_ns)
{
    (void)now_ns;
    it->lane = it->tokens > s->p.long_tokens ? SCHED_LONG : SCHED_SHORT;
    it->fate = SCHED_LIVE;
    it->next = NULL;
    sched__lane *q = &s->lane[it->lane];
    if (q->n == 0) {
        /* a lane that was idle banks no credit: it restarts level with the busiest */
        for (int l = 0; l < SCHED_NLANES; l++)
            if (l != it->lane && s->lane[l].n && s->vt[l] > s->vt[it->lane])
                s->vt[it->lane] = s->vt[l];
    }
    if (q->tail)
        q->tail->next = it;
    else
        q->head = it;
    q->tail = it;
    q->n++;
    q->cost += it->cost;
}

int sched_depth(const sched *s)
{
    int n = 0;
    for (int l = 0; l < SCHED_NLANES; l++)
        n += s->lane[l].n;
    return n;
}

double sched_queued_cost(const sched *s)
{
    double c = 0;
    for (int l = 0; l < SCHED_NLANES; l++)
        c += s->lane[l].cost;
    return c < 0 ? 0 : c;
}

static sched_item *sched__pop(sched *s, int l)
{
    sched__lane *q = &s->lane[l];
    sched_item *it = q->head;
    if (!it) return NULL;
    q->head = it->next;
    if (!q->head) q->tail = NULL;
    it->next = NULL;
    q->n--;
    q->cost -= it->cost;
    if (q->n == 0) q->cost = 0; /* no drift from float sums */
    return it;
}

int sched_unfill_solo(sched *s, sched_batch *b)
{
    if (b->n != 1 || !b->items[0]->solo || sched_depth(s) == 0) return 0;
    sched_item *it = b->items[0];
    sched__lane *q = &s->lane[it->lane];
    it->next = q->head;
    q->head = it;
    if (!q->tail) q->tail = it;
    q->n++;
    q->cost += it->cost;
    s->vt[it->lane] -= it->cost / s->p.weight[it->lane]; /* as if never served */
    b->n = 0;
    b->tokens = 0;
    b->cost = 0;
    b->closed = 0;
    return 1;
}

sched_item *sched_take_all(sched *s)
{
    sched_item *all = NULL, **tail = &all;
    for (int l = 0; l < SCHED_NLANES; l++) {
        sched_item *it;
        while ((it = sched__pop(s, l))) {
            *tail = it;
            tail = &it->next;
        }
    }
    return all;
}

sched_batch *sched_batch_new(const sched_params *p)
{
    sched_batch *b = calloc(1, sizeof *b);
    if (!b) return NULL;
    b->cap = p->max_requests > 0 ? p->max_requests : 1;
    b->items = calloc((size_t)b->cap, sizeof *b->items);
    if (!b->items) {
        free(b);
        return NULL;
    }
    return b;
}

void sched_batch_free(sched_batch *b)
{
    if (!b) return;
    free(b->items);
    free(b);
}

/* A half-closed peer (FIN received) may still read its reply, or may have closed
 * altogether: TCP tells the two apart only when bytes reach a closed peer, which answers
 * with a reset. So the first time, a connection that has sent nothing yet gets an interim
 * "100 Continue" (every HTTP/1.1 client must skip 1xx replies) and the reset is awaited a
 * moment; later checks see it as POLLERR. */
enum { SCHED__PROBE_WAIT_MS = 20 };

static int sched__gone(int fd, short revents)
{
    if (revents & (POLLHUP | POLLERR | POLLNVAL)) return 1;
    int err = 0;
    socklen_t n = sizeof err;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &n) == 0 && err) return 1;
    return send(fd, "", 0, MSG_NOSIGNAL | MSG_DONTWAIT) < 0 &&
           (errno == EPIPE || errno == ECONNRESET);
}

sched_fate sched_item_check(sched_item *it, uint64_t now_ns)
{
    if (it->deadline_ns && now_ns >= it->deadline_ns) return SCHED_DROP_DEADLINE;
    if (it->fd < 0) return SCHED_LIVE;
    /* the connection is suspended, so nobody reads it (pipelined bytes are not an EOF) */
    struct pollfd pf = {.fd = it->fd, .events = POLLIN | POLLRDHUP};
    if (poll(&pf, 1, 0) != 1) return SCHED_LIVE;
    if (sched__gone(it->fd, pf.revents)) return SCHED_DROP_GONE;
    if (!(pf.revents & POLLRDHUP) || it->probe != 1) return SCHED_LIVE;
    static const char probe[] = "HTTP/1.1 100 Continue\r\n\r\n";
    it->probe = 2;
    if (send(it->fd, probe, sizeof probe - 1, MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
        return errno == EAGAIN || errno == EWOULDBLOCK ? SCHED_LIVE : SCHED_DROP_GONE;
    pf.events = 0; /* wakes for a reset or a hang-up only */
    pf.revents = 0;
    if (poll(&pf, 1, SCHED__PROBE_WAIT_MS) == 1 && (pf.revents & (POLLHUP | POLLERR)))
        return SCHED_DROP_GONE;
    return sched__gone(it->fd, 0) ? SCHED_DROP_GONE : SCHED_LIVE;
}

static int sched__fits(const sched *s, const sched_batch *b, const sched_item *it)
{
    if (b->n == 0) return 1; /* a request over the budget still runs, alone */
    if (it->solo || b->items[0]->solo) return 0;
    return it->key == b->key && b->n < b->cap && b->tokens + it->tokens <= s->p.max_tokens &&
           b->cost + it->cost <= s->p.max_cost;
}

int sched_fill(sched *s, sched_batch *b, uint64_t now_ns, sched_item **dropped)
{
    int moved = 0;
    while (!b->closed) {
        /* drop dead heads first so that they do not decide the lane order */
        for (int l = 0; l < SCHED_NLANES; l++) {
            sched_item *h;
            while ((h = s->lane[l].head) && (h->fate = sched_item_check(h, now_ns)) != SCHED_LIVE) {
                sched__pop(s, l);
                h->next = *dropped;
                *dropped = h;
            }
        }
        int order[SCHED_NLANES] = {SCHED_SHORT, SCHED_LONG};
        if (s->vt[SCHED_LONG] < s->vt[SCHED_SHORT]) {
            order[0] = SCHED_LONG;
            order[1] = SCHED_SHORT;
        }
        int lane = -1, any = 0;
        for (int k = 0; k < SCHED_NLANES && lane < 0; k++) {
            const sched_item *h = s->lane[order[k]].head;
            any |= h != NULL;
            if (h && sched__fits(s, b, h)) lane = order[k];
        }
        if (lane < 0) {
            if (any && b->n > 0) b->closed = 1; /* the next item does not fit */
            break;
        }
        sched_item *it = sched__pop(s, lane);
        s->vt[lane] += it->cost / s->p.weight[lane];
        if (b->n == 0) {
            b->key = it->key;
            b->not_before_ns = it->arrival_ns + s->p.delay_ns;
        }
        b->items[b->n++] = it;
        b->tokens += it->tokens;
        b->cost += it->cost;
        moved++;
        if (b->n >= b->cap || b->tokens >= s->p.max_tokens || b->cost >= s->p.max_cost)
            b->closed = 1;
    }
    return moved;
}
