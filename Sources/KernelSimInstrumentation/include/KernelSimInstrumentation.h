// The entry points a chapter program compiled with `-sanitize=thread` calls, implemented by
// KernelSim instead of the ThreadSanitizer runtime (as Linux KCSAN supplies its own runtime for
// the compiler's `__tsan_*` instrumentation). Each forwards to one hook that KernelSim installs
// while a machine runs, so instrumented code outside a machine costs one test of a pointer.
#ifndef KERNELSIM_INSTRUMENTATION_H
#define KERNELSIM_INSTRUMENTATION_H

#include <stdint.h>

#include "Interlocked.h"

/// What an access does (`flags` of the hook).
enum {
    KS_ACCESS_WRITE = 1,
    /// An atomic operation: never a race with another atomic one; orders like a lock.
    KS_ACCESS_ATOMIC = 2,
    /// The start of a Swift `inout`/`modify` access (`__tsan_external_*`): the size is unknown,
    /// and the address may be an argument of the kernel call that follows.
    KS_ACCESS_INOUT = 4,
};

/// Called for every instrumented access: `address`, `size` in bytes, `KS_ACCESS_*` flags and the
/// instruction address of the access in the chapter program.
typedef void (*ks_access_hook_t)(uintptr_t address, uintptr_t size, unsigned flags, uintptr_t pc);

/// Installs `hook` (NULL: accesses are ignored).
void ks_set_access_hook(ks_access_hook_t hook);

/// Called by `free`/`realloc` before memory goes back to the C library, so that the shadow of a
/// freed block does not make a later, unrelated block at the same address look shared.
typedef void (*ks_free_hook_t)(void *pointer, uintptr_t size);

void ks_set_free_hook(ks_free_hook_t hook);

/// `dladdr`, which Swift's Glibc module does not import: the file and load address of the image
/// holding `address`, and the nearest exported symbol at or below it (NULL if none). 0 if unknown.
int ks_image_of(const void *address, const char **file, uintptr_t *base, const char **symbol);

#endif
