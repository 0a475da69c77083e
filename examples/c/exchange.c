/*
 * exchange.c: a peer process for exchanging records with another program (C or Rust) across a
 * shm_queue, checking on the consuming side that every record arrives exactly once and, per
 * producer, in order. Used by shm-queue-ffi/tests/c_interop.rs; also a tour of the API:
 * single pushes and pops, zero-copy chunks (shmq_reserve/shmq_commit, shmq_read/shmq_release)
 * and batches (shmq_push_many, shmq_pop_many).
 *
 *   exchange create-produce NAME KIND COUNT
 *       create NAME (KIND, 24-byte records, 1024 slots), push COUNT records as producer 0,
 *       wait for a consumer to have attached, then close (removing the name).
 *   exchange produce NAME KIND ID COUNT
 *       open NAME (waiting for it to appear), push COUNT records as producer ID, close.
 *   exchange consume NAME PRODUCERS COUNT
 *       open NAME whatever its kind (waiting for it to appear), pop until every producer has
 *       left, and check that each of PRODUCERS producers sent records 0..COUNT-1, in order.
 *
 * KIND is spsc, mpsc, spmc or mpmc. Exit status 0 on success, 1 on an API error, 2 on a
 * record that is lost, repeated, out of order or corrupt.
 */
#define _POSIX_C_SOURCE 200809L /* nanosleep */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "shm_queue.h"

/* The record both sides agree on: 24 bytes, the Rust side's [u8; 24]. */
struct rec {
    uint64_t producer;
    uint64_t seq;
    uint64_t check;
};

static uint64_t check_of(uint64_t producer, uint64_t seq) {
    return (seq * UINT64_C(0x9E3779B97F4A7C15)) ^ (producer + 1);
}

static struct rec make(uint64_t producer, uint64_t seq) {
    struct rec r = {producer, seq, check_of(producer, seq)};
    return r;
}

#define CHECK(call)                                                                               \
    do {                                                                                          \
        int rc_ = (call);                                                                         \
        if (rc_ != 0) {                                                                           \
            fprintf(stderr, "exchange: %s failed: %s (%s)\n", #call, shmq_strerror(rc_),          \
                    shmq_last_error());                                                           \
            exit(1);                                                                              \
        }                                                                                         \
    } while (0)

static int parse_kind(const char *s) {
    if (strcmp(s, "spsc") == 0) return SHMQ_SPSC;
    if (strcmp(s, "mpsc") == 0) return SHMQ_MPSC;
    if (strcmp(s, "spmc") == 0) return SHMQ_SPMC;
    if (strcmp(s, "mpmc") == 0) return SHMQ_MPMC;
    fprintf(stderr, "exchange: unknown kind %s\n", s);
    exit(1);
}

static void sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Opens NAME, waiting up to 30 s for its creator. */
static shmq_queue *open_when_there(const char *name, int kind, size_t record_size) {
    shmq_queue *queue = NULL;
    for (int waited = 0;; waited++) {
        int rc = shmq_open(name, kind, record_size, &queue);
        if (rc == 0) return queue;
        if (rc != SHMQ_ENOENT || waited >= 30000) {
            fprintf(stderr, "exchange: shmq_open(%s): %s (%s)\n", name, shmq_strerror(rc),
                    shmq_last_error());
            exit(1);
        }
        sleep_ms(1);
    }
}

/* Pushes records 0..count-1 of producer `id`, a thousand at a time in turn by single pushes,
 * by zero-copy chunks and by batches. */
static void produce(shmq_queue *queue, uint64_t id, uint64_t count) {
    shmq_producer *tx;
    CHECK(shmq_producer_attach(queue, &tx));
    uint64_t seq = 0;
    while (seq < count) {
        uint64_t end = seq + 1000 < count ? seq + 1000 : count;
        switch ((seq / 1000) % 3) {
        case 0:
            for (; seq < end; seq++) {
                struct rec r = make(id, seq);
                CHECK(shmq_push(tx, &r));
            }
            break;
        case 1:
            while (seq < end) {
                void *slots;
                size_t len;
                CHECK(shmq_reserve(tx, (size_t)(end - seq), &slots, &len));
                struct rec *out = slots; /* records are 8-byte aligned in the ring */
                for (size_t k = 0; k < len; k++) out[k] = make(id, seq++);
                CHECK(shmq_commit(tx));
            }
            break;
        default: {
            static struct rec batch[1000];
            size_t n = (size_t)(end - seq), pushed = 0;
            for (size_t k = 0; k < n; k++) batch[k] = make(id, seq + k);
            CHECK(shmq_push_many(tx, batch, n, &pushed));
            if (pushed != n) {
                fprintf(stderr, "exchange: pushed %zu of %zu\n", pushed, n);
                exit(1);
            }
            seq = end;
        }
        }
    }
    CHECK(shmq_producer_close(tx)); /* the last producer out closes the queue */
}

static uint64_t *next_seq;
static uint64_t producers, total;

static void accept_record(const struct rec *r) {
    if (r->producer >= producers || r->seq != next_seq[r->producer] ||
        r->check != check_of(r->producer, r->seq)) {
        fprintf(stderr,
                "exchange: bad record {producer %llu, seq %llu, check %llx} after %llu records"
                " (expected seq %llu)\n",
                (unsigned long long)r->producer, (unsigned long long)r->seq,
                (unsigned long long)r->check, (unsigned long long)total,
                r->producer < producers ? (unsigned long long)next_seq[r->producer] : 0ULL);
        exit(2);
    }
    next_seq[r->producer]++;
    total++;
}

/* Pops until the producers have left, in turn by single pops, zero-copy chunks and batches. */
static void consume(shmq_queue *queue, uint64_t count) {
    shmq_consumer *rx;
    CHECK(shmq_consumer_attach(queue, &rx));
    next_seq = calloc(producers, sizeof *next_seq);
    int rc = 0;
    for (unsigned round = 0; rc == 0; round++) {
        switch (round % 3) {
        case 0: {
            struct rec r;
            if ((rc = shmq_pop(rx, &r)) == 0) accept_record(&r);
            break;
        }
        case 1: {
            const void *items;
            size_t len;
            if ((rc = shmq_read(rx, 256, &items, &len)) == 0) {
                const struct rec *in = items;
                for (size_t k = 0; k < len; k++) accept_record(&in[k]);
                CHECK(shmq_release(rx));
            }
            break;
        }
        default: {
            struct rec batch[64];
            size_t n;
            if ((rc = shmq_pop_many(rx, batch, 64, &n)) == 0)
                for (size_t k = 0; k < n; k++) accept_record(&batch[k]);
        }
        }
    }
    if (rc != SHMQ_EPIPE) { /* the only normal end: producers gone, queue drained */
        fprintf(stderr, "exchange: pop: %s (%s)\n", shmq_strerror(rc), shmq_last_error());
        exit(1);
    }
    for (uint64_t p = 0; p < producers; p++) {
        if (next_seq[p] != count) {
            fprintf(stderr, "exchange: producer %llu: %llu records, expected %llu\n",
                    (unsigned long long)p, (unsigned long long)next_seq[p],
                    (unsigned long long)count);
            exit(2);
        }
    }
    CHECK(shmq_consumer_close(rx));
    printf("consumed %llu records from %llu producers, exactly once and in order\n",
           (unsigned long long)total, (unsigned long long)producers);
}

int main(int argc, char **argv) {
    if (argc == 5 && strcmp(argv[1], "create-produce") == 0) {
        shmq_queue *queue;
        CHECK(shmq_create(argv[2], parse_kind(argv[3]), sizeof(struct rec), 1024, &queue));
        produce(queue, 0, strtoull(argv[4], NULL, 10));
        /* Closing the queue removes the name: first make sure the consumer got to open it. */
        for (int waited = 0;; waited++) {
            shmq_stats_t stats;
            CHECK(shmq_stats(queue, &stats));
            if (stats.consumers > 0 || stats.consumers_gone) break;
            if (waited >= 30000) {
                fprintf(stderr, "exchange: no consumer attached within 30 s\n");
                shmq_queue_close(queue);
                return 1;
            }
            sleep_ms(1);
        }
        CHECK(shmq_queue_close(queue));
        printf("produced %s records\n", argv[4]);
        return 0;
    }
    if (argc == 6 && strcmp(argv[1], "produce") == 0) {
        shmq_queue *queue = open_when_there(argv[2], parse_kind(argv[3]), sizeof(struct rec));
        produce(queue, strtoull(argv[4], NULL, 10), strtoull(argv[5], NULL, 10));
        CHECK(shmq_queue_close(queue));
        printf("produced %s records\n", argv[5]);
        return 0;
    }
    if (argc == 5 && strcmp(argv[1], "consume") == 0) {
        shmq_queue *queue = open_when_there(argv[2], SHMQ_ANY_KIND, SHMQ_ANY_SIZE);
        shmq_stats_t stats;
        CHECK(shmq_stats(queue, &stats));
        if (stats.record_size != sizeof(struct rec)) {
            fprintf(stderr, "exchange: records of %llu bytes, expected %zu\n",
                    (unsigned long long)stats.record_size, sizeof(struct rec));
            return 1;
        }
        producers = strtoull(argv[3], NULL, 10);
        consume(queue, strtoull(argv[4], NULL, 10));
        CHECK(shmq_queue_close(queue));
        return 0;
    }
    fprintf(stderr, "usage: exchange create-produce NAME KIND COUNT\n"
                    "       exchange produce NAME KIND ID COUNT\n"
                    "       exchange consume NAME PRODUCERS COUNT\n");
    return 1;
}
