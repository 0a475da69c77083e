/*
 * api_check.c: checks the return codes of shm_queue.h in a single process, one call at a
 * time: argument checks, mismatches on open, full and empty rings, timeouts, chunks, closing,
 * poisoning, dead peers, names. Run by shm-queue-ffi/tests/c_interop.rs as `api_check NAME` (NAME is a
 * fresh segment name; everything created is removed again).
 */
#define _POSIX_C_SOURCE 200809L /* fork, kill, pipe under -std=c11 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "shm_queue.h"

static int failures;

#define EXPECT(call, want)                                                                        \
    do {                                                                                          \
        int got_ = (call);                                                                        \
        if (got_ != (want)) {                                                                     \
            fprintf(stderr, "%s:%d: %s returned %d (%s), expected %d (%s); last error: %s\n",     \
                    __FILE__, __LINE__, #call, got_, shmq_strerror(got_), (int)(want),            \
                    shmq_strerror(want), shmq_last_error());                                      \
            failures++;                                                                           \
        }                                                                                         \
    } while (0)

#define TRUE(cond)                                                                                \
    do {                                                                                          \
        if (!(cond)) {                                                                            \
            fprintf(stderr, "%s:%d: expected %s\n", __FILE__, __LINE__, #cond);                  \
            failures++;                                                                           \
        }                                                                                         \
    } while (0)

typedef struct {
    uint64_t words[8]; /* 64 bytes */
} record;

static record rec(uint64_t n) {
    record r;
    for (int i = 0; i < 8; i++) r.words[i] = n * 8 + i;
    return r;
}

/* A failing call from an atexit handler, after the library's thread-local storage is gone:
 * it must still return its code (it used to abort the program). */
static void fail_at_exit(void) {
    int rc = shmq_unlink("/bad/name");
    const char *message = shmq_last_error();
    if (rc == SHMQ_EINVAL && message != NULL) {
        printf("a call at exit returned its code\n");
    }
    fflush(stdout);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: api_check NAME\n");
        return 1;
    }
    const char *name = argv[1];
    char other[300];
    snprintf(other, sizeof other, "%s-kept", name);

    /* Record sizes. */
    TRUE(shmq_record_size_supported(24));
    TRUE(!shmq_record_size_supported(40));
    TRUE(shmq_record_size_fit(40) == 48);
    TRUE(shmq_record_size_fit(1) == 1);
    TRUE(shmq_record_size_fit(SHMQ_MAX_RECORD_SIZE + 1) == 0);

    /* Bad arguments to create. */
    shmq_queue *q = (shmq_queue *)&failures; /* must be reset to NULL on failure */
    EXPECT(shmq_create(name, SHMQ_SPSC, 40, 8, &q), SHMQ_EINVAL);
    TRUE(q == NULL);
    EXPECT(shmq_create(name, SHMQ_SPSC, 64, 3, &q), SHMQ_EINVAL);
    EXPECT(shmq_create(name, 9, 64, 8, &q), SHMQ_EINVAL);
    EXPECT(shmq_create("no-slash", SHMQ_SPSC, 64, 8, &q), SHMQ_EINVAL);
    EXPECT(shmq_create(NULL, SHMQ_SPSC, 64, 8, &q), SHMQ_EINVAL);
    EXPECT(shmq_create(name, SHMQ_SPSC, 64, 8, NULL), SHMQ_EINVAL);
    shmq_options_t options;
    EXPECT(shmq_options_init(&options, SHMQ_MPSC, 64, 8), 0);
    options.bound = 4; /* only SPSC may hold fewer than its capacity */
    EXPECT(shmq_create_with(name, &options, &q), SHMQ_EINVAL);
    TRUE(strlen(shmq_last_error()) > 0);

    /* Create, and the mismatches of open. */
    EXPECT(shmq_options_init(&options, SHMQ_SPSC, sizeof(record), 8), 0);
    options.bound = 6;
    EXPECT(shmq_create_with(name, &options, &q), 0);
    shmq_queue *dup;
    EXPECT(shmq_create(name, SHMQ_SPSC, 64, 8, &dup), SHMQ_EEXIST);
    shmq_queue *opened;
    EXPECT(shmq_open(name, SHMQ_SPSC, 32, &opened), SHMQ_EPROTO);
    EXPECT(shmq_open(name, SHMQ_MPSC, 64, &opened), SHMQ_EPROTO);
    EXPECT(shmq_open(name, SHMQ_SPSC, 40, &opened), SHMQ_EINVAL);
    EXPECT(shmq_open("/shmq-test-ffi-no-such-queue", SHMQ_ANY_KIND, SHMQ_ANY_SIZE, &opened),
           SHMQ_ENOENT);
    EXPECT(shmq_open(name, SHMQ_ANY_KIND, SHMQ_ANY_SIZE, &opened), 0);
    shmq_stats_t stats;
    EXPECT(shmq_stats(opened, &stats), 0);
    TRUE(stats.kind == SHMQ_SPSC && stats.record_size == 64 && stats.capacity == 8);
    TRUE(stats.bound == 6 && stats.producers == 0 && stats.consumers == 0 && !stats.poisoned);
    EXPECT(shmq_stats_by_name(name, &stats), 0);
    TRUE(stats.record_size == 64 && stats.bound == 6);

    /* Ends. */
    shmq_producer *tx, *tx2;
    shmq_consumer *rx;
    EXPECT(shmq_producer_attach(q, &tx), 0);
    EXPECT(shmq_producer_attach(opened, &tx2), SHMQ_EBUSY);
    TRUE(tx2 == NULL);
    EXPECT(shmq_consumer_attach(opened, &rx), 0);
    EXPECT(shmq_producer_check_peers(tx), 0); /* every peer lives */
    EXPECT(shmq_consumer_check_peers(rx), 0);

    /* Empty. */
    record r;
    const void *items;
    void *slots;
    size_t len;
    EXPECT(shmq_try_pop(rx, &r), SHMQ_EAGAIN);
    EXPECT(shmq_pop_timeout(rx, &r, 1000000), SHMQ_ETIMEDOUT);
    EXPECT(shmq_try_read(rx, 4, &items, &len), SHMQ_EAGAIN);
    TRUE(items == NULL && len == 0);
    EXPECT(shmq_read_timeout(rx, 4, &items, &len, 1000000), SHMQ_ETIMEDOUT);

    /* Full at the bound (6 of 8 slots). */
    for (uint64_t i = 0; i < 6; i++) {
        r = rec(i);
        EXPECT(shmq_try_push(tx, &r), 0);
    }
    r = rec(6);
    EXPECT(shmq_try_push(tx, &r), SHMQ_EAGAIN);
    EXPECT(shmq_push_timeout(tx, &r, 1000000), SHMQ_ETIMEDOUT);
    EXPECT(shmq_try_reserve(tx, 1, &slots, &len), SHMQ_EAGAIN);
    EXPECT(shmq_reserve_timeout(tx, 1, &slots, &len, 1000000), SHMQ_ETIMEDOUT);
    EXPECT(shmq_stats(q, &stats), 0);
    TRUE(stats.pushed == 6 && stats.len == 6 && stats.producers == 1 && stats.consumers == 1);

    /* A read chunk: in place, and the handle is busy until released. */
    EXPECT(shmq_read(rx, 3, &items, &len), 0);
    TRUE(len >= 1 && len <= 3);
    for (size_t k = 0; k < len; k++) TRUE(((const record *)items)[k].words[7] == k * 8 + 7);
    EXPECT(shmq_try_pop(rx, &r), SHMQ_EBUSY);
    EXPECT(shmq_try_read(rx, 1, &items, &len), SHMQ_EBUSY);
    EXPECT(shmq_consumer_stats(rx, &stats), SHMQ_EBUSY);
    EXPECT(shmq_release(rx), 0);
    EXPECT(shmq_release(rx), SHMQ_EINVAL);
    EXPECT(shmq_consumer_stats(rx, &stats), 0);
    uint64_t next = stats.popped;
    TRUE(next >= 1 && next <= 3);
    while (shmq_try_pop(rx, &r) == 0) TRUE(r.words[0] == 8 * next++);
    TRUE(next == 6);

    /* A write chunk: in place, busy until committed; abandoning one on SPSC discards it. */
    EXPECT(shmq_reserve(tx, 4, &slots, &len), 0);
    TRUE(len >= 1 && len <= 4);
    for (size_t k = 0; k < len; k++) ((record *)slots)[k] = rec(next + k);
    EXPECT(shmq_try_push(tx, &r), SHMQ_EBUSY);
    EXPECT(shmq_reserve(tx, 1, &slots, &len), SHMQ_EBUSY);
    EXPECT(shmq_commit(tx), 0);
    EXPECT(shmq_commit(tx), SHMQ_EINVAL);
    EXPECT(shmq_abandon(tx), SHMQ_EINVAL);
    EXPECT(shmq_producer_stats(tx, &stats), 0);
    uint64_t committed = stats.pushed;
    EXPECT(shmq_reserve(tx, 1, &slots, &len), 0);
    EXPECT(shmq_abandon(tx), 0);
    EXPECT(shmq_producer_stats(tx, &stats), 0);
    TRUE(stats.pushed == committed && !stats.poisoned);
    while (shmq_try_pop(rx, &r) == 0) TRUE(r.words[0] == 8 * next++);
    TRUE(next == committed);

    /* Publishing the first records of a chunk, as a filter does; on SPSC the rest returns. */
    EXPECT(shmq_reserve(tx, 4, &slots, &len), 0);
    for (size_t k = 0; k < len; k++) ((record *)slots)[k] = rec(next + k);
    EXPECT(shmq_commit_first(tx, len + 1), SHMQ_EINVAL);
    EXPECT(shmq_commit_first(tx, 1), 0);
    EXPECT(shmq_commit_first(tx, 0), SHMQ_EINVAL);
    while (shmq_try_pop(rx, &r) == 0) TRUE(r.words[0] == 8 * next++);
    TRUE(next == committed + 1);

    /* Batches. */
    record batch[5];
    for (int i = 0; i < 5; i++) batch[i] = rec(next + i);
    size_t n = 99;
    EXPECT(shmq_push_many(tx, batch, 5, &n), 0);
    TRUE(n == 5);
    record back[8];
    EXPECT(shmq_pop_many(rx, back, 8, &n), 0);
    TRUE(n >= 1 && n <= 5 && back[0].words[0] == 8 * next);
    EXPECT(shmq_pop_many(rx, back, 8, NULL), SHMQ_EINVAL);

    /* Closing: the last producer out closes the queue; consumers drain, then SHMQ_EPIPE. */
    r = rec(1000);
    EXPECT(shmq_try_push(tx, &r), SHMQ_OK);
    EXPECT(shmq_producer_close(tx), 0);
    while (shmq_try_pop(rx, &r) == 0) {
    }
    EXPECT(shmq_try_pop(rx, &r), SHMQ_EPIPE);
    EXPECT(shmq_pop(rx, &r), SHMQ_EPIPE);
    EXPECT(shmq_producer_attach(q, &tx), SHMQ_EPIPE);
    EXPECT(shmq_stats(q, &stats), 0);
    TRUE(stats.producers_gone && stats.len == 0);
    EXPECT(shmq_consumer_close(rx), 0);
    EXPECT(shmq_queue_close(opened), 0);

    /* NULL handles. */
    EXPECT(shmq_push(NULL, &r), SHMQ_EINVAL);
    EXPECT(shmq_pop(NULL, &r), SHMQ_EINVAL);
    EXPECT(shmq_stats(NULL, &stats), SHMQ_EINVAL);
    EXPECT(shmq_producer_close(NULL), 0);
    EXPECT(shmq_consumer_close(NULL), 0);
    EXPECT(shmq_queue_close(NULL), 0);
    EXPECT(shmq_producer_check_peers(NULL), SHMQ_EINVAL);
    EXPECT(shmq_consumer_check_peers(NULL), SHMQ_EINVAL);

    /* The creator's close removes the name. */
    EXPECT(shmq_queue_close(q), 0);
    EXPECT(shmq_unlink(name), SHMQ_ENOENT);

    /* A poller finds a dead producer by asking: shmq_try_pop never looks. */
    EXPECT(shmq_create(name, SHMQ_MPMC, 8, 16, &q), 0);
    EXPECT(shmq_consumer_attach(q, &rx), 0);
    int attached[2];
    if (pipe(attached) != 0) {
        perror("pipe");
        return 1;
    }
    fflush(stdout);
    fflush(stderr);
    pid_t child = fork();
    if (child < 0) {
        perror("fork");
        return 1;
    }
    if (child == 0) {
        /* Never outlives the test by long, even if the parent dies before its kill. */
        alarm(60);
        close(attached[0]);
        shmq_producer *mine;
        char ok = shmq_producer_attach(q, &mine) == 0;
        if (write(attached[1], &ok, 1) != 1) _exit(2);
        pause();
        _exit(0);
    }
    close(attached[1]); /* a child that dies before writing ends the read */
    char child_ok = 0;
    TRUE(read(attached[0], &child_ok, 1) == 1 && child_ok);
    close(attached[0]);
    TRUE(kill(child, SIGKILL) == 0 && waitpid(child, NULL, 0) == child);
    uint64_t got;
    EXPECT(shmq_try_pop(rx, &got), SHMQ_EAGAIN);
    EXPECT(shmq_consumer_check_peers(rx), SHMQ_EOWNERDEAD);
    EXPECT(shmq_try_pop(rx, &got), SHMQ_EOWNERDEAD); /* poisoned now */
    EXPECT(shmq_consumer_close(rx), 0);
    EXPECT(shmq_queue_close(q), 0);

    /* Poison, and a kept name. */
    EXPECT(shmq_create(other, SHMQ_MPMC, 8, 16, &q), 0);
    EXPECT(shmq_keep_name(q), 0);
    EXPECT(shmq_producer_attach(q, &tx), 0);
    EXPECT(shmq_producer_attach(q, &tx2), 0); /* multi-producer */
    EXPECT(shmq_consumer_attach(q, &rx), 0);
    uint64_t word = 7;
    EXPECT(shmq_push(tx, &word), 0);
    EXPECT(shmq_reserve(tx2, 2, &slots, &len), 0);
    EXPECT(shmq_poison(q), 0);
    EXPECT(shmq_pop(rx, &word), SHMQ_ENOTRECOVERABLE);
    EXPECT(shmq_push(tx, &word), SHMQ_ENOTRECOVERABLE);
    shmq_consumer *late;
    EXPECT(shmq_consumer_attach(q, &late), SHMQ_ENOTRECOVERABLE);
    TRUE(late == NULL);
    EXPECT(shmq_stats(q, &stats), 0);
    TRUE(stats.poisoned && stats.dead_peer == 0);
    EXPECT(shmq_producer_close(tx2), 0); /* abandons its chunk */
    EXPECT(shmq_producer_close(tx), 0);
    EXPECT(shmq_queue_close(q), 0);
    EXPECT(shmq_stats_by_name(other, &stats), 0); /* the name was kept */
    TRUE(stats.poisoned && stats.kind == SHMQ_MPMC && stats.record_size == 8);
    EXPECT(shmq_unlink(other), 0);
    EXPECT(shmq_unlink(other), SHMQ_ENOENT);
    EXPECT(shmq_consumer_close(rx), 0);

    /* Messages. */
    TRUE(strcmp(shmq_strerror(SHMQ_EPIPE), shmq_strerror(-SHMQ_EPIPE)) == 0);
    TRUE(strlen(shmq_strerror(SHMQ_EOWNERDEAD)) > 0 && strlen(shmq_strerror(-12345)) > 0);
    EXPECT(shmq_unlink("/bad/name"), SHMQ_EINVAL);
    TRUE(shmq_last_error_code() == SHMQ_EINVAL && strstr(shmq_last_error(), "name") != NULL);

    if (failures) {
        fprintf(stderr, "%d check(s) failed\n", failures);
        return 1;
    }
    printf("all checks passed\n");
    atexit(fail_at_exit);
    return 0;
}
