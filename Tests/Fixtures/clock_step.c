// Preloaded into a process (LD_PRELOAD), steps its wall clock as NTP would: from
// TGSM_CLOCK_STEP_AFTER seconds after the process started, CLOCK_REALTIME (and gettimeofday, time)
// read TGSM_CLOCK_STEP_SECONDS ahead. The monotonic clock and every timer are left alone.
//
// Why not libfaketime: 0.9.10 with FAKETIME_DONT_FAKE_MONOTONIC also moves absolute CLOCK_MONOTONIC
// deadlines (timerfd_settime, clock_nanosleep) by the offset. A timer then fired at once, or, on a
// machine up for less than the offset, was refused (EINVAL) and never fired: libdispatch's timers,
// and with them every Task.sleep of the process, stopped. Built by TgsmConnectTests with cc.
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <sys/time.h>
#include <time.h>

static int (*real_clock_gettime)(clockid_t, struct timespec *);
static long step_seconds;
static double step_after;
static struct timespec started;

static void set_up(void) {
    if (real_clock_gettime != NULL) return;
    int (*found)(clockid_t, struct timespec *) = (int (*)(clockid_t, struct timespec *))dlsym(RTLD_NEXT, "clock_gettime");
    const char *step = getenv("TGSM_CLOCK_STEP_SECONDS");
    const char *after = getenv("TGSM_CLOCK_STEP_AFTER");
    step_seconds = step != NULL ? strtol(step, NULL, 10) : 0;
    step_after = after != NULL ? strtod(after, NULL) : 0;
    found(CLOCK_MONOTONIC, &started);
    real_clock_gettime = found;
}

__attribute__((constructor)) static void clock_step_start(void) { set_up(); }

static long offset_now(void) {
    struct timespec now;
    real_clock_gettime(CLOCK_MONOTONIC, &now);
    double elapsed = (double)(now.tv_sec - started.tv_sec) + (double)(now.tv_nsec - started.tv_nsec) / 1e9;
    return elapsed >= step_after ? step_seconds : 0;
}

int clock_gettime(clockid_t clock, struct timespec *time) {
    set_up();
    int result = real_clock_gettime(clock, time);
    if (result == 0 && (clock == CLOCK_REALTIME || clock == CLOCK_REALTIME_COARSE)) time->tv_sec += offset_now();
    return result;
}

int gettimeofday(struct timeval *restrict value, void *restrict zone) {
    (void)zone;
    struct timespec now;
    int result = clock_gettime(CLOCK_REALTIME, &now);
    // glibc declares `value` non-null.
    if (result == 0) {
        value->tv_sec = now.tv_sec;
        value->tv_usec = now.tv_nsec / 1000;
    }
    return result;
}

time_t time(time_t *out) {
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    if (out != NULL) *out = now.tv_sec;
    return now.tv_sec;
}
