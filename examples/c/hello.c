/*
 * hello.c: the smallest complete use of shm_queue.h.
 *
 * The parent creates a queue of 24-byte records and forks; the child opens the queue by name
 * (as an unrelated process would) and pushes 100000 particles; the parent pops them until the
 * queue reports that its producer has left (SHMQ_EPIPE).
 *
 *   cc examples/c/hello.c -I include target/release/libshm_queue_ffi.a -lpthread -ldl -lm
 *   ./a.out /my-hello-queue
 */
#define _POSIX_C_SOURCE 200809L /* fork, waitpid */

#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "shm_queue.h"

struct particle {
    double x, y, z; /* 24 bytes: a supported record size */
};

#define CHECK(call)                                                                               \
    do {                                                                                          \
        int rc_ = (call);                                                                         \
        if (rc_ != 0) {                                                                           \
            fprintf(stderr, "%s failed: %s (%s)\n", #call, shmq_strerror(rc_), shmq_last_error()); \
            exit(1);                                                                              \
        }                                                                                         \
    } while (0)

enum { COUNT = 100000 };

int main(int argc, char **argv) {
    const char *name = argc > 1 ? argv[1] : "/shmq-hello";
    shmq_queue *queue;
    shmq_consumer *rx;
    CHECK(shmq_create(name, SHMQ_SPSC, sizeof(struct particle), 1024, &queue));
    CHECK(shmq_consumer_attach(queue, &rx));

    pid_t child = fork();
    if (child < 0) {
        perror("fork");
        return 1;
    }
    if (child == 0) {
        /* Another process: open the queue by name and produce. The handles inherited through
         * fork belong to the parent: leave them alone (closing `queue` would remove the name). */
        shmq_queue *mine;
        shmq_producer *tx;
        CHECK(shmq_open(name, SHMQ_SPSC, sizeof(struct particle), &mine));
        CHECK(shmq_producer_attach(mine, &tx));
        for (int i = 0; i < COUNT; i++) {
            struct particle p = {i, 2.0 * i, 3.0 * i};
            CHECK(shmq_push(tx, &p));
        }
        shmq_producer_close(tx); /* the last producer out closes the queue */
        shmq_queue_close(mine);  /* opened, not created: the name stays */
        _exit(0);
    }

    struct particle p;
    long received = 0;
    double sum = 0;
    int rc;
    while ((rc = shmq_pop(rx, &p)) == 0) {
        received++;
        sum += p.x;
    }
    if (rc != SHMQ_EPIPE) { /* anything but "the producers left and the queue is drained" */
        fprintf(stderr, "pop: %s\n", shmq_strerror(rc));
        return 1;
    }
    int status;
    waitpid(child, &status, 0);
    shmq_consumer_close(rx);
    shmq_queue_close(queue); /* its creator: removes the name from /dev/shm */
    printf("received %ld particles, sum of x = %.0f\n", received, sum);
    return received == COUNT && sum == (double)COUNT * (COUNT - 1) / 2 && status == 0 ? 0 : 1;
}
