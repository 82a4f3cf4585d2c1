/*
 * A small STREAM-style bandwidth test (copy and triad), written for gpuscout to check
 * its own host-memory figure against compiled code on the same arrays and threads.
 *
 *   gcc -O3 -march=native -fopenmp scripts/stream_triad.c -o stream_triad
 *   OMP_NUM_THREADS=4 ./stream_triad N [REPEATS]
 *
 * N is the number of doubles per array (three arrays). Bytes are counted as STREAM
 * counts them: copy reads one array and writes one (16 B per element), triad reads two
 * and writes one (24 B). Prints best and median GB/s (1e9 bytes) as "key value" lines.
 */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>

static int cmp_double(const void *x, const void *y) {
    double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

static void report(const char *name, double *t, int reps, double bytes) {
    qsort(t, (size_t)reps, sizeof(double), cmp_double);
    double med = reps % 2 ? t[reps / 2] : 0.5 * (t[reps / 2 - 1] + t[reps / 2]);
    printf("%s_best_gbs %.3f\n", name, bytes / t[0] / 1e9);
    printf("%s_median_gbs %.3f\n", name, bytes / med / 1e9);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s N [REPEATS]\n", argv[0]);
        return 2;
    }
    long n = atol(argv[1]);
    int reps = argc > 2 ? atoi(argv[2]) : 20;
    if (n <= 0 || reps < 2) {
        fprintf(stderr, "N must be > 0 and REPEATS >= 2\n");
        return 2;
    }
    double *a = malloc((size_t)n * sizeof(double));
    double *b = malloc((size_t)n * sizeof(double));
    double *c = malloc((size_t)n * sizeof(double));
    double *t_copy = malloc((size_t)reps * sizeof(double));
    double *t_triad = malloc((size_t)reps * sizeof(double));
    if (!a || !b || !c || !t_copy || !t_triad) {
        fprintf(stderr, "out of memory\n");
        return 1;
    }
    const double s = 3.0;
    /* Parallel first touch, so pages sit where the threads that stream them run. */
#pragma omp parallel for schedule(static)
    for (long j = 0; j < n; j++) {
        a[j] = 1.0;
        b[j] = 2.0;
        c[j] = 0.5;
    }
    for (int k = 0; k < reps; k++) {
        double t0 = omp_get_wtime();
#pragma omp parallel for schedule(static)
        for (long j = 0; j < n; j++) a[j] = b[j];
        t_copy[k] = omp_get_wtime() - t0;

        t0 = omp_get_wtime();
#pragma omp parallel for schedule(static)
        for (long j = 0; j < n; j++) a[j] = b[j] + s * c[j];
        t_triad[k] = omp_get_wtime() - t0;
    }
    /* Check the last triad so the compiler cannot drop it and the result is right. */
    for (long j = 0; j < n; j += n / 97 + 1) {
        if (a[j] != 2.0 + s * 0.5) {
            fprintf(stderr, "triad check failed at %ld: %f\n", j, a[j]);
            return 1;
        }
    }
    printf("threads %d\n", omp_get_max_threads());
    printf("elems %ld\n", n);
    printf("array_bytes %ld\n", n * (long)sizeof(double));
    report("copy", t_copy, reps, 2.0 * sizeof(double) * (double)n);
    report("triad", t_triad, reps, 3.0 * sizeof(double) * (double)n);
    free(a);
    free(b);
    free(c);
    free(t_copy);
    free(t_triad);
    return 0;
}
