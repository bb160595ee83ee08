// See include/Interlocked.h.
#include "Interlocked.h"
#include "KernelSimInstrumentation.h"

#include <stddef.h>

/// Reports an atomic access made at instruction `pc` (Instrumentation.c).
void ks_report_atomic(const volatile void *address, uintptr_t size, int write, void *pc);

#define CALLER __builtin_return_address(0)
#define RMW(address) ks_report_atomic(address, sizeof(*(address)), 1, CALLER)

int32_t InterlockedIncrement(volatile int32_t *a) { RMW(a); return __atomic_add_fetch(a, 1, __ATOMIC_SEQ_CST); }
int32_t InterlockedDecrement(volatile int32_t *a) { RMW(a); return __atomic_sub_fetch(a, 1, __ATOMIC_SEQ_CST); }
int32_t InterlockedExchange(volatile int32_t *a, int32_t v) { RMW(a); return __atomic_exchange_n(a, v, __ATOMIC_SEQ_CST); }
int32_t InterlockedExchangeAdd(volatile int32_t *a, int32_t v) { RMW(a); return __atomic_fetch_add(a, v, __ATOMIC_SEQ_CST); }
int32_t InterlockedCompareExchange(volatile int32_t *a, int32_t exchange, int32_t comparand) {
    RMW(a);
    __atomic_compare_exchange_n(a, &comparand, exchange, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
    return comparand;
}
int32_t InterlockedOr(volatile int32_t *a, int32_t v) { RMW(a); return __atomic_fetch_or(a, v, __ATOMIC_SEQ_CST); }
int32_t InterlockedAnd(volatile int32_t *a, int32_t v) { RMW(a); return __atomic_fetch_and(a, v, __ATOMIC_SEQ_CST); }

int64_t InterlockedIncrement64(volatile int64_t *a) { RMW(a); return __atomic_add_fetch(a, 1, __ATOMIC_SEQ_CST); }
int64_t InterlockedDecrement64(volatile int64_t *a) { RMW(a); return __atomic_sub_fetch(a, 1, __ATOMIC_SEQ_CST); }
int64_t InterlockedExchange64(volatile int64_t *a, int64_t v) { RMW(a); return __atomic_exchange_n(a, v, __ATOMIC_SEQ_CST); }
int64_t InterlockedExchangeAdd64(volatile int64_t *a, int64_t v) { RMW(a); return __atomic_fetch_add(a, v, __ATOMIC_SEQ_CST); }
int64_t InterlockedCompareExchange64(volatile int64_t *a, int64_t exchange, int64_t comparand) {
    RMW(a);
    __atomic_compare_exchange_n(a, &comparand, exchange, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
    return comparand;
}

void *InterlockedExchangePointer(void *volatile *a, void *v) { RMW(a); return __atomic_exchange_n(a, v, __ATOMIC_SEQ_CST); }
void *InterlockedCompareExchangePointer(void *volatile *a, void *exchange, void *comparand) {
    RMW(a);
    __atomic_compare_exchange_n(a, &comparand, exchange, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
    return comparand;
}

int32_t ReadNoFence(const volatile int32_t *a) {
    ks_report_atomic(a, sizeof(*a), 0, CALLER);
    return __atomic_load_n(a, __ATOMIC_RELAXED);
}
void WriteNoFence(volatile int32_t *a, int32_t v) { RMW(a); __atomic_store_n(a, v, __ATOMIC_RELAXED); }
int32_t ReadAcquire(const volatile int32_t *a) {
    ks_report_atomic(a, sizeof(*a), 0, CALLER);
    return __atomic_load_n(a, __ATOMIC_ACQUIRE);
}
void WriteRelease(volatile int32_t *a, int32_t v) { RMW(a); __atomic_store_n(a, v, __ATOMIC_RELEASE); }

void KeMemoryBarrier(void) { __atomic_thread_fence(__ATOMIC_SEQ_CST); }
