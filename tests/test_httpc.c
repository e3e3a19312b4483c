/* Unit tests of tests/httpc.c, the HTTP client of the integration tests and bench_load:
 * canned responses written into one end of a socketpair and read back with hread
 * (Content-Length on a kept-alive connection, chunked with trailers, up to the close). */
#include <check.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "httpc.h"

/* hread of `raw` written to a socket whose writer closes after it when `close_after`. */
static int read_canned(const char *raw, int close_after, hresp *r)
{
    int sv[2];
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    ck_assert_int_eq(hsend(sv[1], raw, strlen(raw)), 0);
    if (close_after) close(sv[1]);
    int st = hread(sv[0], r);
    close(sv[0]);
    if (!close_after) close(sv[1]);
    return st;
}

START_TEST(content_length_kept_alive)
{
    hresp r;
    /* the writer stays open: the response ends where Content-Length says */
    ck_assert_int_eq(
        read_canned("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A:  b c\r\n\r\nhello", 0, &r), 200);
    ck_assert_int_eq(r.len, 5);
    ck_assert_str_eq(r.body, "hello");
    char v[16];
    ck_assert_str_eq(hheader(&r, "x-a", v, sizeof v), "b c");
    ck_assert(hheader(&r, "X-B", v, sizeof v) == NULL);
    ck_assert_str_eq(r.head, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A:  b c");
    hresp_free(&r);
}
END_TEST

START_TEST(chunked)
{
    hresp r;
    ck_assert_int_eq(read_canned("HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n"
                                 "4\r\nwiki\r\nA;ext=1\r\npedia in\r\n\r\n0\r\nX-T: 1\r\n\r\n",
                                 0, &r),
                     201);
    ck_assert_str_eq(r.body, "wikipedia in\r\n");
    ck_assert_int_eq(r.len, 14);
    hresp_free(&r);
    /* cut short by the close, and malformed */
    ck_assert_int_eq(
        read_canned("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab", 1, &r), -1);
    ck_assert(r.body == NULL);
    ck_assert_int_eq(
        read_canned("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 1, &r), -1);
}
END_TEST

START_TEST(until_close)
{
    hresp r;
    ck_assert_int_eq(read_canned("HTTP/1.0 404 Not Found\r\nServer: x\r\n\r\n{\"e\":1}", 1, &r),
                     404);
    ck_assert_str_eq(r.body, "{\"e\":1}");
    hresp_free(&r);
    /* a body shorter than its Content-Length, no head, a bad status line */
    ck_assert_int_eq(read_canned("HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nabc", 1, &r), -1);
    ck_assert_int_eq(read_canned("HTTP/1.1 200 OK\r\nContent-Le", 1, &r), -1);
    ck_assert_int_eq(read_canned("SMTP 200\r\n\r\n", 1, &r), -1);
}
END_TEST

int main(void)
{
    Suite *su = suite_create("httpc");
    TCase *tc = tcase_create("httpc");
    tcase_add_test(tc, content_length_kept_alive);
    tcase_add_test(tc, chunked);
    tcase_add_test(tc, until_close);
    suite_add_tcase(su, tc);
    SRunner *sr = srunner_create(su);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
