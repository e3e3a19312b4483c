/* The one reader of small whole files. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "file.h"

ls_status ls_read_file(const char *path, size_t limit, char **buf, size_t *len, char *err,
                       size_t errlen)
{
    *buf = NULL;
    FILE *fp = fopen(path, "rb");
    if (!fp) return ls_fail(err, errlen, LS_ERR_IO, "%s: %s", path, strerror(errno));
    size_t cap = 4096, n = 0;
    char *b = malloc(cap + 1);
    int too_big = 0;
    while (b) {
        n += fread(b + n, 1, cap - n, fp);
        if (n < cap) break;
        if (cap >= limit) {
            too_big = 1;
            break;
        }
        char *nb = realloc(b, cap * 2 + 1);
        if (!nb) {
            free(b);
            b = NULL;
            break;
        }
        b = nb;
        cap *= 2;
    }
    int bad = ferror(fp);
    fclose(fp);
    if (!b || bad || too_big || n > limit) {
        free(b);
        too_big |= n > limit;
        return ls_fail(err, errlen,
                       bad       ? LS_ERR_IO
                       : too_big ? LS_ERR_FORMAT
                                 : LS_ERR_NOMEM,
                       "%s: cannot read (%s)", path,
                       bad       ? "read error"
                       : too_big ? "larger than the limit"
                                 : "out of memory");
    }
    b[n] = 0;
    *buf = b;
    *len = n;
    return LS_OK;
}
