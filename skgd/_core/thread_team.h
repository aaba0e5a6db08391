/* A team of threads for the parallel parts of a minibatch, kept for a
   fit: the caller's thread and n - 1 workers that wait for work by
   spinning, so that a part costs a store and two cache-line transfers to
   start and end (~0.1 us on 2 cores) where an OpenMP parallel region
   costs ~1 us, a sixth of a dense float32 batch of 256 rows.

   skgd_team_run(team, fn, ctx, n) calls fn(ctx, p) for p = 0 .. n - 1,
   thread i taking a contiguous range of parts (OpenMP's static schedule),
   the caller's thread the first, and returns when all are done. A thread
   that waits (a worker for the next run, the caller for the workers'
   parts) spins for SKGD_TEAM_SPIN_NS, then sleeps on a condition variable
   until woken: between epochs, while Python runs, and whenever the cores
   are shared with other busy threads, where spinning would keep the core
   from the thread it waits for (two such fits side by side on 2 cores:
   225 ms per epoch with a spin of ~0.15 ms before yielding, 14 ms with
   OpenMP's regions).

   A worker claims its range before it runs it. The caller, once its own
   range is done, runs the ranges no worker has claimed if the workers are
   late: at once when one was asleep (waking it takes ~0.1 ms here), after
   its spin otherwise (a worker that does not start within 20 us is not on
   a core: more threads are busy than there are cores, or the machine's
   hypervisor took that core for a while). After SKGD_TEAM_STEALS such
   runs in a row it makes the next runs alone (SKGD_TEAM_STEALS, then twice
   as many each time, up to SKGD_TEAM_MAX_SOLO; each run the workers keep
   up with halves that). Four 2-thread fits in Python threads on 2 cores
   went from 0.3-0.5x the speed of the same fits one after another to
   1.1-1.4x; two float32 fits side by side from 28-38 to 8-11 ms per epoch
   (3.3 alone). Which thread runs a part never changes its result.

   POSIX threads; elsewhere skgd_team_start returns NULL and the caller
   runs the parts itself. */
#ifndef SKGD_THREAD_TEAM_H
#define SKGD_THREAD_TEAM_H

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

typedef void (*skgd_part_fn)(void* ctx, Py_ssize_t part);

/* Time a waiting thread spins before it sleeps (a batch's serial work
   between its parallel parts takes ~1-3 us), unless the caller expects a
   longer gap (skgd_team_expect_gap). */
#define SKGD_TEAM_SPIN_NS 20000

/* Runs in a row in which the caller took the range of a late worker that
   was awake before it makes runs alone, and the most runs it makes alone
   in one go. */
#define SKGD_TEAM_STEALS 16
#define SKGD_TEAM_MAX_SOLO 4096

#if defined(__GNUC__) && !defined(_WIN32)
#include <pthread.h>
#include <time.h>

/* A worker's own cache line: the last generation whose range was claimed
   (by the worker, or by the caller for it). */
typedef struct skgd_worker {
    long claimed;
    struct skgd_team* team;
    int index;
} __attribute__((aligned(64))) skgd_worker;

typedef struct skgd_team {
    int n_threads;
    int stop;
    int sleepers;  /* workers asleep or about to sleep (atomic) */
    int caller_sleeps;  /* the caller asleep or about to sleep (atomic) */
    long spin_ns;  /* how long a thread that starts to wait spins (atomic) */
    pthread_mutex_t lock;
    pthread_cond_t wake;  /* a worker's: a new generation */
    pthread_cond_t finished;  /* the caller's: the workers are done */
    skgd_worker* workers;  /* [1 .. n_threads - 1] */
    pthread_t* threads;
    /* The caller's alone: the count of finished ranges it waits for, the
       runs in which it ran a worker's range (taken from a late worker or
       made alone), the runs in a row in which it took a late worker's
       range, the runs it makes alone after them and the runs still to
       make alone. */
    long awaited __attribute__((aligned(64)));
    long alone_runs;
    int steals;
    int backoff;
    int solo;
    long generation __attribute__((aligned(64)));
    /* Written by the caller's thread with `generation`, on its cache line,
       read by the workers once they see a new generation. */
    skgd_part_fn fn;
    void* ctx;
    Py_ssize_t n_parts;
    int held;  /* workers ignore the runs, as if off their cores (tests) */
    /* Ranges finished by workers. */
    long done __attribute__((aligned(64)));
} skgd_team;

static inline void skgd_pause(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

static long skgd_now_ns(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (long)now.tv_sec * 1000000000L + now.tv_nsec;
}

/* Spin until *value >= target or the team's spin time has passed;
   whether it was reached. */
static int skgd_spin_until(skgd_team* team, long* value, long target)
{
    long deadline = 0, spin_ns = __atomic_load_n(&team->spin_ns,
                                                 __ATOMIC_RELAXED);
    unsigned spins;
    for (spins = 1;; spins++) {
        if (__atomic_load_n(value, __ATOMIC_ACQUIRE) >= target) return 1;
        skgd_pause();
        if (spins % 64 == 0) {  /* (the clock costs ~20 ns: not every turn) */
            if (deadline == 0)
                deadline = skgd_now_ns() + spin_ns;
            else if (skgd_now_ns() > deadline)
                return 0;
        }
    }
}

/* Sleep until *value >= target. The sleeper announces itself in *flag
   before it reads the value, and the thread that raises the value reads
   the flag after it, both sequentially consistent: either the sleeper
   sees the new value or the other thread sees the flag and signals `cond`
   under the lock (skgd_team_signal). */
static void skgd_sleep_until(skgd_team* team, long* value, long target,
                             int* flag, pthread_cond_t* cond)
{
    pthread_mutex_lock(&team->lock);
    __atomic_add_fetch(flag, 1, __ATOMIC_SEQ_CST);
    while (__atomic_load_n(value, __ATOMIC_SEQ_CST) < target)
        pthread_cond_wait(cond, &team->lock);
    __atomic_sub_fetch(flag, 1, __ATOMIC_SEQ_CST);
    pthread_mutex_unlock(&team->lock);
}

static void skgd_team_signal(skgd_team* team, int* flag, pthread_cond_t* cond)
{
    if (__atomic_load_n(flag, __ATOMIC_SEQ_CST) > 0) {
        pthread_mutex_lock(&team->lock);
        pthread_cond_broadcast(cond);
        pthread_mutex_unlock(&team->lock);
    }
}

/* Wait for a generation after `seen` and return the newest. */
static long skgd_team_next(skgd_team* team, long seen)
{
    if (!skgd_spin_until(team, &team->generation, seen + 1))
        skgd_sleep_until(team, &team->generation, seen + 1, &team->sleepers,
                         &team->wake);
    return __atomic_load_n(&team->generation, __ATOMIC_ACQUIRE);
}

/* Start generation g: the workers that sleep are woken; whether one
   slept. */
static int skgd_team_publish(skgd_team* team, long g)
{
    int asleep;
    __atomic_store_n(&team->generation, g, __ATOMIC_SEQ_CST);
    asleep = __atomic_load_n(&team->sleepers, __ATOMIC_SEQ_CST) > 0;
    skgd_team_signal(team, &team->sleepers, &team->wake);
    return asleep;
}

/* Claim worker w's range of generation g (once: for the worker or the
   caller, whichever comes first). */
static int skgd_team_claim(skgd_worker* w, long g)
{
    long last = __atomic_load_n(&w->claimed, __ATOMIC_RELAXED);
    return last < g && __atomic_compare_exchange_n(
        &w->claimed, &last, g, 0, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED);
}

/* Thread i's parts of n on t threads: OpenMP's static schedule. */
static inline void skgd_team_share(skgd_team* team, int i)
{
    Py_ssize_t n = team->n_parts, t = team->n_threads;
    Py_ssize_t q = n / t, r = n % t;
    Py_ssize_t lo = i * q + (i < r ? i : r), hi = lo + q + (i < r), p;
    for (p = lo; p < hi; p++) team->fn(team->ctx, p);
}

static void* skgd_team_worker(void* arg)
{
    skgd_worker* self = (skgd_worker*)arg;
    skgd_team* team = self->team;
    long seen = 0;
    for (;;) {
        seen = skgd_team_next(team, seen);
        if (team->stop) break;
        if (__atomic_load_n(&team->held, __ATOMIC_RELAXED)) continue;
        if (!skgd_team_claim(self, seen)) continue;  /* the caller's */
        skgd_team_share(team, self->index);
        __atomic_add_fetch(&team->done, 1, __ATOMIC_SEQ_CST);
        skgd_team_signal(team, &team->caller_sleeps, &team->finished);
    }
    return NULL;
}

static void skgd_team_stop(skgd_team* team)
{
    int i;
    if (team == NULL) return;
    team->stop = 1;
    skgd_team_publish(team, team->generation + 1);
    for (i = 1; i < team->n_threads; i++)
        pthread_join(team->threads[i], NULL);
    pthread_cond_destroy(&team->wake);
    pthread_cond_destroy(&team->finished);
    pthread_mutex_destroy(&team->lock);
    free(team->threads);
    free(team->workers);
    free(team);
}

/* A team of n_threads (the caller's and n_threads - 1 new ones), or NULL
   if one thread is asked for or a thread could not be made. */
static skgd_team* skgd_team_start(int n_threads)
{
    skgd_team* team;
    int i;
    if (n_threads < 2) return NULL;
    if (posix_memalign((void**)&team, 64, sizeof(skgd_team)) != 0)
        return NULL;
    memset(team, 0, sizeof(skgd_team));  /* counts, flags and pointers */
    team->n_threads = 1;
    team->spin_ns = SKGD_TEAM_SPIN_NS;
    team->threads = (pthread_t*)calloc(n_threads, sizeof(pthread_t));
    if (posix_memalign((void**)&team->workers, 64,
                       n_threads * sizeof(skgd_worker)) != 0)
        team->workers = NULL;
    if (team->threads == NULL || team->workers == NULL) {
        free(team->threads);
        free(team->workers);
        free(team);
        return NULL;
    }
    pthread_mutex_init(&team->lock, NULL);
    pthread_cond_init(&team->wake, NULL);
    pthread_cond_init(&team->finished, NULL);
    for (i = 1; i < n_threads; i++) {
        team->workers[i].claimed = 0;
        team->workers[i].team = team;
        team->workers[i].index = i;
        if (pthread_create(&team->threads[i], NULL, skgd_team_worker,
                           &team->workers[i]) != 0) {
            skgd_team_stop(team);  /* (the n_threads - 1 made so far) */
            return NULL;
        }
        team->n_threads = i + 1;
    }
    return team;
}

/* After a run in which the caller took `stolen` ranges of late workers
   (`waited`: after its spin, not because one was asleep): SKGD_TEAM_STEALS
   such runs in a row and the next runs are made alone (the workers are
   not getting a core), twice as many as the time before, up to
   SKGD_TEAM_MAX_SOLO; a run the workers keep up with halves that. A worker
   that was asleep is not counted for or against: after runs made alone it
   is, and it takes ~0.1 ms to wake. */
static void skgd_team_pace(skgd_team* team, int stolen, int waited)
{
    if (stolen == 0) {
        team->steals = 0;
        team->backoff /= 2;
        return;
    }
    if (!waited || ++team->steals < SKGD_TEAM_STEALS) return;
    team->backoff = team->backoff < SKGD_TEAM_STEALS ? SKGD_TEAM_STEALS
        : team->backoff < SKGD_TEAM_MAX_SOLO / 2 ? 2 * team->backoff
        : SKGD_TEAM_MAX_SOLO;
    team->solo = team->backoff;
}

static void skgd_team_run(skgd_team* team, skgd_part_fn fn, void* ctx,
                          Py_ssize_t n_parts)
{
    long g = team->generation + 1;
    Py_ssize_t p;
    int i, asleep, stolen = 0;
    if (team->solo > 0) {
        team->solo--;
        team->alone_runs++;
        for (p = 0; p < n_parts; p++) fn(ctx, p);
        return;
    }
    team->fn = fn;
    team->ctx = ctx;
    team->n_parts = n_parts;
    asleep = skgd_team_publish(team, g);
    skgd_team_share(team, 0);
    team->awaited += team->n_threads - 1;
    if (asleep || !skgd_spin_until(team, &team->done, team->awaited)) {
        for (i = 1; i < team->n_threads; i++) {
            if (skgd_team_claim(&team->workers[i], g)) {
                skgd_team_share(team, i);
                stolen++;
            }
        }
        team->awaited -= stolen;
        if (!(asleep && skgd_spin_until(team, &team->done, team->awaited)))
            skgd_sleep_until(team, &team->done, team->awaited,
                             &team->caller_sleeps, &team->finished);
    }
    team->alone_runs += stolen > 0;
    skgd_team_pace(team, stolen, !asleep);
}

/* Runs in which the caller ran a worker's range (for tests). */
static long skgd_team_alone_runs(skgd_team* team)
{
    return team->alone_runs;
}

/* Workers asleep or about to sleep (for tests). */
static int skgd_team_sleepers(skgd_team* team)
{
    return __atomic_load_n(&team->sleepers, __ATOMIC_SEQ_CST);
}

/* While held, the workers let every run pass without taking their range,
   as if they were never on a core in time (for tests). */
static void skgd_team_hold(skgd_team* team, int held)
{
    __atomic_store_n(&team->held, held, __ATOMIC_RELAXED);
}

/* The threads that start to wait from now on spin for gap_ns (at least
   SKGD_TEAM_SPIN_NS) before they sleep: the caller expects its serial
   work to take that long, and waking a thread costs more. */
static void skgd_team_expect_gap(skgd_team* team, long gap_ns)
{
    __atomic_store_n(&team->spin_ns, gap_ns > SKGD_TEAM_SPIN_NS ? gap_ns
                     : SKGD_TEAM_SPIN_NS, __ATOMIC_RELAXED);
}

#else
typedef struct skgd_team skgd_team;
static long skgd_now_ns(void) { return 0; }
static void skgd_team_expect_gap(skgd_team* team, long gap_ns) {}
static skgd_team* skgd_team_start(int n_threads) { return NULL; }
static void skgd_team_stop(skgd_team* team) {}
static void skgd_team_run(skgd_team* team, skgd_part_fn fn, void* ctx,
                          Py_ssize_t n_parts) {}
static long skgd_team_alone_runs(skgd_team* team) { return 0; }
static int skgd_team_sleepers(skgd_team* team) { return 0; }
static void skgd_team_hold(skgd_team* team, int held) {}
#endif

#endif
