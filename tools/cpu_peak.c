/* The CPU's peak, measured: fp32 FMA and bf16 dot-product throughput of one core (AVX-512), and its clock.
 *
 *   gcc -O2 -march=native tools/cpu_peak.c -o /tmp/cpu_peak && /tmp/cpu_peak
 *
 * 12 independent accumulator chains hide the FMA latency (4 cycles x 2 pipes = 8 in flight at least), so the
 * loop runs at the pipes' throughput: GFLOP/s / GHz = FLOPs per cycle per core, which train/cpu.py's
 * fma_lanes_per_cycle and bf16_flops_factor assume (Zen 4: 32 fp32, 64 bf16). A dependent chain of integer
 * adds runs one per cycle: its rate is the clock the core runs at. Run it on an idle machine (wall time).
 * Used for docs/explanation/speed.md's roofline; cnnlab itself never compiles or runs it. */
#include <immintrin.h>
#include <stdio.h>
#include <time.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

int main(void) {
    const long n = 200000000L;
    __m512 acc[12];
    __m512 b = _mm512_set1_ps(1.0000001f), c = _mm512_set1_ps(1e-9f);
    for (int i = 0; i < 12; i++) acc[i] = _mm512_set1_ps((float)i);
    double t = now();
    for (long k = 0; k < n; k++) {
#pragma GCC unroll 12
        for (int i = 0; i < 12; i++) acc[i] = _mm512_fmadd_ps(acc[i], b, c);
    }
    t = now() - t;
    float sum = 0;
    for (int i = 0; i < 12; i++) sum += _mm512_reduce_add_ps(acc[i]);
    printf("fp32 VFMADD (zmm):   %6.1f GFLOP/s  (check %g)\n", n * 12.0 * 16 * 2 / t / 1e9, sum);

    __m512bh x = (__m512bh)_mm512_set1_epi16(0x3f80), y = (__m512bh)_mm512_set1_epi16(0x3f80);  /* 1.0 in bf16 */
    for (int i = 0; i < 12; i++) acc[i] = _mm512_setzero_ps();
    t = now();
    for (long k = 0; k < n; k++) {
#pragma GCC unroll 12
        for (int i = 0; i < 12; i++) acc[i] = _mm512_dpbf16_ps(acc[i], x, y);
    }
    t = now() - t;
    sum = 0;
    for (int i = 0; i < 12; i++) sum += _mm512_reduce_add_ps(acc[i]);
    printf("bf16 VDPBF16PS (zmm): %6.1f GFLOP/s  (check %g)\n", n * 12.0 * 32 * 2 / t / 1e9, sum);

    long v = 0;
    t = now();
    for (long k = 0; k < 2000000000L; k++) __asm__ volatile("add $1, %0" : "+r"(v));
    t = now() - t;
    printf("clock (dependent adds): %.2f GHz\n", 2e9 / t / 1e9);
    return 0;
}
