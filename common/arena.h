/* A memory arena: many allocations, one free. A request's temporary arrays come from its
 * arena and die with it, so code that builds a response has no free ladder.
 *
 *     ls_arena a = {0};
 *     int *counts = ls_arena_calloc(&a, n, sizeof *counts);   // NULL: out of memory
 *     ...
 *     ls_arena_free(&a);                                     // everything at once
 *
 * Not thread-safe: one thread at a time (a request's steps hand it on in order). */
#ifndef LS_ARENA_H
#define LS_ARENA_H

#include <stddef.h>

typedef struct ls_arena__block ls_arena__block;

typedef struct {
    ls_arena__block *head; /* the newest block; allocations come from its tail */
} ls_arena;

/* n bytes aligned for any type, or NULL when out of memory (n == 0 gives a valid
 * pointer). */
void *ls_arena_alloc(ls_arena *a, size_t n);
/* count x size zeroed bytes, or NULL when out of memory or on overflow. */
void *ls_arena_calloc(ls_arena *a, size_t count, size_t size);
/* Releases every block; the arena is empty and usable again. */
void ls_arena_free(ls_arena *a);

#endif
