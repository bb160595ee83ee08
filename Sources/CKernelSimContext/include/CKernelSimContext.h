// Switching between simulated threads' stacks on one OS thread: a user-level context is only its
// saved stack pointer; everything else a switch keeps is pushed on the stack it leaves.
#ifndef CKERNELSIMCONTEXT_H
#define CKERNELSIMCONTEXT_H

/// Saves the calling context (callee-saved registers, floating-point control state) on its own
/// stack and its stack pointer in `*save`, then resumes the context whose stack pointer is
/// `resume`. Returns when some later switch resumes the saved context. No signal mask is saved:
/// unlike swapcontext, a switch makes no system call.
void ks_context_switch(void *_Nullable *_Nonnull save, void *_Nonnull resume);

/// Resumes the context whose stack pointer is `resume`, abandoning the calling one.
__attribute__((noreturn)) void ks_context_resume(void *_Nonnull resume);

/// Prepares a context on the stack that ends at `stack_top` which, when first resumed, calls
/// `entry(argument)` with the floating-point control state of the caller of this function. When
/// the entry returns, its stack is left for the context whose stack pointer it returned. The
/// result is the new context's stack pointer.
void *_Nonnull ks_context_make(void *_Nonnull stack_top, void *_Nonnull (*_Nonnull entry)(void *_Nullable),
                               void *_Nullable argument);

#endif
