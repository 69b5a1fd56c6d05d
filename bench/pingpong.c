// SPDX-License-Identifier: GPL-2.0-only
/* A cache line's round trip between two CPUs (bench/lab.ts records where the
 * vCPUs sit): pingpong CPU_A CPU_B prints the median ns of one round trip
 * (A writes, B sees it and answers, A sees the answer) over 7 runs of 200,000. */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define ROUNDS 200000
static _Alignas(64) atomic_long line;

static void pin(int cpu)
{
	cpu_set_t s;
	CPU_ZERO(&s);
	CPU_SET(cpu, &s);
	if (pthread_setaffinity_np(pthread_self(), sizeof(s), &s)) {
		fprintf(stderr, "cannot pin to CPU %d\n", cpu);
		exit(1);
	}
}

static void *answer(void *arg)
{
	pin(*(int *)arg);
	for (long i = 1; i <= 7L * ROUNDS; i++) {
		while (atomic_load_explicit(&line, memory_order_acquire) != 2 * i - 1)
			;
		atomic_store_explicit(&line, 2 * i, memory_order_release);
	}
	return NULL;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	int a = argc > 1 ? atoi(argv[1]) : 0, b = argc > 2 ? atoi(argv[2]) : 1;
	double runs[7];
	pthread_t t;
	long i = 0;

	pthread_create(&t, NULL, answer, &b);
	pin(a);
	for (int r = 0; r < 7; r++) {
		struct timespec s, e;
		clock_gettime(CLOCK_MONOTONIC, &s);
		for (int k = 0; k < ROUNDS; k++) {
			i++;
			atomic_store_explicit(&line, 2 * i - 1, memory_order_release);
			while (atomic_load_explicit(&line, memory_order_acquire) != 2 * i)
				;
		}
		clock_gettime(CLOCK_MONOTONIC, &e);
		runs[r] = ((e.tv_sec - s.tv_sec) * 1e9 + (e.tv_nsec - s.tv_nsec)) / ROUNDS;
	}
	pthread_join(t, NULL);
	qsort(runs, 7, sizeof(runs[0]), cmp);
	printf("%.1f\n", runs[3]);
	return 0;
}
