/* Arena blocks: 64 KiB, or one block of its own for an allocation larger than that. */
#include <stdalign.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"

enum { LS_ARENA__BLOCK = 64 * 1024 };

struct ls_arena__block {
    ls_arena__block *next;
    size_t used, cap;
    alignas(max_align_t) unsigned char data[];
};

static size_t ls_arena__round(size_t n)
{
    const size_t a = alignof(max_align_t);
    return (n + a - 1) / a * a;
}

void *ls_arena_alloc(ls_arena *a, size_t n)
{
    const size_t need = ls_arena__round(n ? n : 1);
    if (need < n) return NULL; /* overflow */
    ls_arena__block *b = a->head;
    if (!b || b->cap - b->used < need) {
        const size_t cap = need > LS_ARENA__BLOCK ? need : LS_ARENA__BLOCK;
        if (cap > SIZE_MAX - sizeof *b) return NULL;
        ls_arena__block *nb = malloc(sizeof *nb + cap);
        if (!nb) return NULL;
        nb->used = 0;
        nb->cap = cap;
        if (b && need > LS_ARENA__BLOCK && b->cap - b->used >= LS_ARENA__BLOCK / 4) {
            /* a big one-off block goes behind the current one, which keeps filling */
            nb->next = b->next;
            b->next = nb;
            nb->used = need;
            return nb->data;
        }
        nb->next = b;
        a->head = b = nb;
    }
    void *p = b->data + b->used;
    b->used += need;
    return p;
}

void *ls_arena_calloc(ls_arena *a, size_t count, size_t size)
{
    if (size && count > SIZE_MAX / size) return NULL;
    void *p = ls_arena_alloc(a, count * size);
    if (p) memset(p, 0, count * size);
    return p;
}

void ls_arena_free(ls_arena *a)
{
    ls_arena__block *b = a->head;
    while (b) {
        ls_arena__block *next = b->next;
        free(b);
        b = next;
    }
    a->head = NULL;
}
