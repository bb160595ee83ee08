// KernelSim's runtime for ThreadSanitizer instrumentation (see include/KernelSimInstrumentation.h).
// The entry points and their signatures are those of compiler-rt's tsan_interface.h, which the
// compiler's instrumentation pass calls; only the accesses are forwarded, nothing is checked here.
#define _GNU_SOURCE
#include "KernelSimInstrumentation.h"

#include <dlfcn.h>
#include <malloc.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

static ks_access_hook_t access_hook;
static ks_free_hook_t free_hook;
/// `__tsan_ignore_thread_begin/end` nesting (Swift brackets some runtime-internal accesses).
static __thread int ignoring;

void ks_set_access_hook(ks_access_hook_t hook) { access_hook = hook; }
void ks_set_free_hook(ks_free_hook_t hook) { free_hook = hook; }

static inline void report(const void *address, uintptr_t size, unsigned flags, void *pc) {
    ks_access_hook_t hook = access_hook;
    if (__builtin_expect(hook != NULL && ignoring == 0, 0)) {
        hook((uintptr_t)address, size, flags, (uintptr_t)pc);
    }
}

#define CALLER __builtin_return_address(0)

void ks_report_atomic(const volatile void *address, uintptr_t size, int write, void *pc) {
    report((const void *)address, size, KS_ACCESS_ATOMIC | (write ? KS_ACCESS_WRITE : 0), pc);
}

void __tsan_init(void) {}
void __tsan_func_entry(void *pc) { (void)pc; }
void __tsan_func_exit(void) {}
void __tsan_ignore_thread_begin(void) { ignoring++; }
void __tsan_ignore_thread_end(void) { ignoring--; }

#define PLAIN(n)                                                                                   \
    void __tsan_read##n(void *a) { report(a, n, 0, CALLER); }                                     \
    void __tsan_write##n(void *a) { report(a, n, KS_ACCESS_WRITE, CALLER); }                      \
    void __tsan_unaligned_read##n(void *a) { report(a, n, 0, CALLER); }                           \
    void __tsan_unaligned_write##n(void *a) { report(a, n, KS_ACCESS_WRITE, CALLER); }            \
    void __tsan_read##n##_pc(void *a, void *pc) { report(a, n, 0, pc); }                          \
    void __tsan_write##n##_pc(void *a, void *pc) { report(a, n, KS_ACCESS_WRITE, pc); }
PLAIN(1)
PLAIN(2)
PLAIN(4)
PLAIN(8)
PLAIN(16)

void __tsan_read_range(void *a, unsigned long size) { report(a, size, 0, CALLER); }
void __tsan_write_range(void *a, unsigned long size) { report(a, size, KS_ACCESS_WRITE, CALLER); }
void __tsan_vptr_read(void **a) { report(a, sizeof(void *), 0, CALLER); }
void __tsan_vptr_update(void **a, void *value) { (void)value; report(a, sizeof(void *), KS_ACCESS_WRITE, CALLER); }

// Swift's inout (modify) and read accesses to variables whose storage is not a plain load/store,
// such as collections; `tag` is Swift's access-race tag. Swift passes its function's own return
// address as `pc`, which names the caller's line, so the access is placed at this call instead.
void __tsan_external_read(void *a, void *pc, void *tag) {
    (void)pc, (void)tag;
    report(a, 1, KS_ACCESS_INOUT, CALLER);
}
void __tsan_external_write(void *a, void *pc, void *tag) {
    (void)pc, (void)tag;
    report(a, 1, KS_ACCESS_INOUT | KS_ACCESS_WRITE, CALLER);
}

void *__tsan_memset(void *d, int c, size_t n) {
    report(d, n, KS_ACCESS_WRITE, CALLER);
    return memset(d, c, n);
}
void *__tsan_memcpy(void *d, const void *s, size_t n) {
    report(s, n, 0, CALLER);
    report(d, n, KS_ACCESS_WRITE, CALLER);
    return memcpy(d, s, n);
}
void *__tsan_memmove(void *d, const void *s, size_t n) {
    report(s, n, 0, CALLER);
    report(d, n, KS_ACCESS_WRITE, CALLER);
    return memmove(d, s, n);
}

// Atomics: performed sequentially consistent (at least as strong as any order asked for) and
// reported as atomic accesses, which order like acquire/release and never race with each other.
#define ATOMIC_RMW(n, T, op, builtin)                                                             \
    T __tsan_atomic##n##_##op(volatile T *a, T v, int mo) {                                       \
        (void)mo;                                                                                 \
        report((void *)a, sizeof(T), KS_ACCESS_ATOMIC | KS_ACCESS_WRITE, CALLER);                 \
        return builtin(a, v, __ATOMIC_SEQ_CST);                                                   \
    }
#define ATOMICS(n, T)                                                                             \
    T __tsan_atomic##n##_load(const volatile T *a, int mo) {                                      \
        (void)mo;                                                                                 \
        report((void *)a, sizeof(T), KS_ACCESS_ATOMIC, CALLER);                                   \
        return __atomic_load_n(a, __ATOMIC_SEQ_CST);                                              \
    }                                                                                             \
    void __tsan_atomic##n##_store(volatile T *a, T v, int mo) {                                   \
        (void)mo;                                                                                 \
        report((void *)a, sizeof(T), KS_ACCESS_ATOMIC | KS_ACCESS_WRITE, CALLER);                 \
        __atomic_store_n(a, v, __ATOMIC_SEQ_CST);                                                 \
    }                                                                                             \
    ATOMIC_RMW(n, T, exchange, __atomic_exchange_n)                                                                    \
    ATOMIC_RMW(n, T, fetch_add, __atomic_fetch_add)                                                                   \
    ATOMIC_RMW(n, T, fetch_sub, __atomic_fetch_sub)                                                                   \
    ATOMIC_RMW(n, T, fetch_and, __atomic_fetch_and)                                                                   \
    ATOMIC_RMW(n, T, fetch_or, __atomic_fetch_or)                                                                    \
    ATOMIC_RMW(n, T, fetch_xor, __atomic_fetch_xor)                                                                   \
    ATOMIC_RMW(n, T, fetch_nand, __atomic_fetch_nand)                                                                  \
    int __tsan_atomic##n##_compare_exchange_strong(volatile T *a, T *c, T v, int mo, int fmo) {   \
        (void)mo, (void)fmo;                                                                      \
        report((void *)a, sizeof(T), KS_ACCESS_ATOMIC | KS_ACCESS_WRITE, CALLER);                 \
        return __atomic_compare_exchange_n(a, c, v, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);       \
    }                                                                                             \
    int __tsan_atomic##n##_compare_exchange_weak(volatile T *a, T *c, T v, int mo, int fmo) {     \
        (void)mo, (void)fmo;                                                                      \
        report((void *)a, sizeof(T), KS_ACCESS_ATOMIC | KS_ACCESS_WRITE, CALLER);                 \
        return __atomic_compare_exchange_n(a, c, v, 1, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);       \
    }                                                                                             \
    T __tsan_atomic##n##_compare_exchange_val(volatile T *a, T c, T v, int mo, int fmo) {         \
        (void)mo, (void)fmo;                                                                      \
        report((void *)a, sizeof(T), KS_ACCESS_ATOMIC | KS_ACCESS_WRITE, CALLER);                 \
        __atomic_compare_exchange_n(a, &c, v, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);             \
        return c;                                                                                 \
    }
ATOMICS(8, uint8_t)
ATOMICS(16, uint16_t)
ATOMICS(32, uint32_t)
ATOMICS(64, uint64_t)

void __tsan_atomic_thread_fence(int mo) { (void)mo; __atomic_thread_fence(__ATOMIC_SEQ_CST); }
void __tsan_atomic_signal_fence(int mo) { (void)mo; __atomic_signal_fence(__ATOMIC_SEQ_CST); }

// glibc's own entry points, which the C library's `free` and `realloc` are aliases of.
extern void __libc_free(void *);
extern void *__libc_realloc(void *, size_t);

void free(void *pointer) {
    ks_free_hook_t hook = free_hook;
    if (hook != NULL && pointer != NULL) hook(pointer, malloc_usable_size(pointer));
    __libc_free(pointer);
}

void *realloc(void *pointer, size_t size) {
    ks_free_hook_t hook = free_hook;
    if (hook != NULL && pointer != NULL) hook(pointer, malloc_usable_size(pointer));
    return __libc_realloc(pointer, size);
}

int ks_image_of(const void *address, const char **file, uintptr_t *base, const char **symbol) {
    Dl_info info = {0};
    if (dladdr(address, &info) == 0) return 0;
    *file = info.dli_fname;
    *base = (uintptr_t)info.dli_fbase;
    *symbol = info.dli_sname;
    return 1;
}
