// The floor under ClientBench's 1-in-flight round trip: two processes exchanging 100 bytes over
// loopback TCP with epoll, as the client and the test DC do, with no work in between. Run with both
// processes free to use any CPU and with both on one CPU (taskset), it shows what a wake-up across
// CPUs costs on this machine, which no code on either side can remove.
// usage: pingpong [round trips] [bytes]
// FLOOR_SPIN=client, echo or both: that side polls epoll without sleeping. On a VM whose idle vCPU
// halts at once (no guest halt-polling), this shows how much of the floor is waking a halted vCPU.
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static int byValue(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static int spins;

static int watch(int fd) {
    int poller = epoll_create1(0);
    struct epoll_event event = {.events = EPOLLIN};
    if (poller < 0 || epoll_ctl(poller, EPOLL_CTL_ADD, fd, &event) != 0) exit(2);
    return poller;
}

// Waits on epoll as an event loop does, then reads until `size` bytes came.
static void receive(int fd, int poller, char *buffer, int size) {
    int got = 0;
    while (got < size) {
        struct epoll_event event;
        int ready;
        do { ready = epoll_wait(poller, &event, 1, spins ? 0 : -1); } while (spins && ready == 0);
        if (ready < 0) exit(3);
        ssize_t n = read(fd, buffer + got, size - got);
        if (n == 0) exit(4);
        if (n > 0) got += (int)n;
    }
}

int main(int argc, char **argv) {
    int count = argc > 1 ? atoi(argv[1]) : 20000;
    int size = argc > 2 ? atoi(argv[2]) : 100;
    if (count < 100 || size < 1 || size > 65536) return 1;
    const char *spin = getenv("FLOOR_SPIN");
    if (spin != NULL && *spin == 0) spin = NULL;
    int one = 1;
    int listener = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t length = sizeof address;
    if (bind(listener, (struct sockaddr *)&address, sizeof address) != 0 || listen(listener, 1) != 0
        || getsockname(listener, (struct sockaddr *)&address, &length) != 0) return 5;
    static char buffer[65536];
    memset(buffer, 1, sizeof buffer);
    pid_t echo = fork();
    if (echo == 0) {
        int peer = accept(listener, NULL, NULL);
        spins = spin != NULL && (strcmp(spin, "echo") == 0 || strcmp(spin, "both") == 0);
        setsockopt(peer, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        int poller = watch(peer);
        for (int i = 0; i < count; i++) {
            receive(peer, poller, buffer, size);
            if (write(peer, buffer, size) != size) exit(6);
        }
        exit(0);
    }
    spins = spin != NULL && (strcmp(spin, "client") == 0 || strcmp(spin, "both") == 0);
    int client = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(client, (struct sockaddr *)&address, sizeof address) != 0) return 7;
    setsockopt(client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    int poller = watch(client);
    double *latencies = malloc(sizeof(double) * count);
    if (latencies == NULL) return 8;
    for (int i = 0; i < count; i++) {
        double begin = now();
        if (write(client, buffer, size) != size) return 9;
        receive(client, poller, buffer, size);
        latencies[i] = now() - begin;
    }
    waitpid(echo, NULL, 0);
    qsort(latencies, count, sizeof(double), byValue);
    printf("loopback TCP ping-pong (%d bytes, epoll%s, no work): p50 %.3f ms, p99 %.3f ms\n", size,
           spin == NULL ? "" : strcmp(spin, "both") == 0 ? ", both sides polling" : strcmp(spin, "client") == 0 ? ", client polling" : ", echo polling",
           latencies[count / 2] * 1e3, latencies[count * 99 / 100] * 1e3);
    return 0;
}
