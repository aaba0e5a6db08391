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
   OpenMP's regions). POSIX threads; elsewhere skgd_team_start returns
   NULL and the caller runs the parts itself. */
#ifndef SKGD_THREAD_TEAM_H
#define SKGD_THREAD_TEAM_H

#include <stddef.h>
#include <stdlib.h>

typedef void (*skgd_part_fn)(void* ctx, Py_ssize_t part);

/* Time a waiting thread spins before it sleeps (a batch's serial work
   between its parallel parts takes ~1-3 us), unless the caller expects a
   longer gap (skgd_team_expect_gap). */
#define SKGD_TEAM_SPIN_NS 20000

#if defined(__GNUC__) && !defined(_WIN32)
#include <pthread.h>
#include <time.h>

typedef struct skgd_team {
    int n_threads;
    int stop;
    int sleepers;  /* workers asleep or about to sleep (atomic) */
    int caller_sleeps;  /* the caller asleep or about to sleep (atomic) */
    long spin_ns;  /* how long a thread that starts to wait spins (atomic) */
    pthread_mutex_t lock;
    pthread_cond_t wake;  /* a worker's: a new generation */
    pthread_cond_t finished;  /* the caller's: the workers are done */
    long generation __attribute__((aligned(64)));
    /* Written by the caller's thread with `generation`, on its cache line,
       read by the workers once they see a new generation. */
    skgd_part_fn fn;
    void* ctx;
    Py_ssize_t n_parts;
    /* Runs finished by workers (one per worker and generation). */
    long done __attribute__((aligned(64)));
    pthread_t* threads;
} skgd_team;

typedef struct {
    skgd_team* team;
    int index;
} skgd_worker;

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

/* Wait for generation seen + 1 and return it. */
static long skgd_team_next(skgd_team* team, long seen)
{
    if (!skgd_spin_until(team, &team->generation, seen + 1))
        skgd_sleep_until(team, &team->generation, seen + 1, &team->sleepers,
                         &team->wake);
    return seen + 1;
}

/* Start generation g: the workers that sleep are woken. */
static void skgd_team_publish(skgd_team* team, long g)
{
    __atomic_store_n(&team->generation, g, __ATOMIC_SEQ_CST);
    skgd_team_signal(team, &team->sleepers, &team->wake);
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
        skgd_team_share(team, self->index);
        __atomic_add_fetch(&team->done, 1, __ATOMIC_SEQ_CST);
        skgd_team_signal(team, &team->caller_sleeps, &team->finished);
    }
    free(self);
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
    free(team);
}

/* A team of n_threads (the caller's and n_threads - 1 new ones), or NULL
   if one thread is asked for or a thread could not be made. */
static skgd_team* skgd_team_start(int n_threads)
{
    skgd_team* team;
    skgd_worker* worker;
    int i;
    if (n_threads < 2) return NULL;
    if (posix_memalign((void**)&team, 64, sizeof(skgd_team)) != 0)
        return NULL;
    team->fn = NULL;
    team->ctx = NULL;
    team->n_parts = 0;
    team->n_threads = 1;
    team->stop = 0;
    team->sleepers = 0;
    team->caller_sleeps = 0;
    team->spin_ns = SKGD_TEAM_SPIN_NS;
    team->generation = 0;
    team->done = 0;
    team->threads = (pthread_t*)calloc(n_threads, sizeof(pthread_t));
    if (team->threads == NULL) {
        free(team);
        return NULL;
    }
    pthread_mutex_init(&team->lock, NULL);
    pthread_cond_init(&team->wake, NULL);
    pthread_cond_init(&team->finished, NULL);
    for (i = 1; i < n_threads; i++) {
        worker = (skgd_worker*)malloc(sizeof(skgd_worker));
        if (worker != NULL) {
            worker->team = team;
            worker->index = i;
        }
        if (worker == NULL || pthread_create(&team->threads[i], NULL,
                                             skgd_team_worker, worker) != 0) {
            free(worker);
            skgd_team_stop(team);  /* (the n_threads - 1 made so far) */
            return NULL;
        }
        team->n_threads = i + 1;
    }
    return team;
}

static void skgd_team_run(skgd_team* team, skgd_part_fn fn, void* ctx,
                          Py_ssize_t n_parts)
{
    long g = team->generation + 1, target = g * (team->n_threads - 1);
    team->fn = fn;
    team->ctx = ctx;
    team->n_parts = n_parts;
    skgd_team_publish(team, g);
    skgd_team_share(team, 0);
    if (!skgd_spin_until(team, &team->done, target))
        skgd_sleep_until(team, &team->done, target, &team->caller_sleeps,
                         &team->finished);
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
#endif

#endif
