// ks_context_switch and the first entry of a context, in assembly: saving only what the calling
// convention says a callee preserves makes a switch a few nanoseconds (swapcontext also saves the
// signal mask with a sigprocmask system call and every register, about 230 ns here).
#include "CKernelSimContext.h"
#include <stdint.h>

#if defined(__x86_64__)

// System V AMD64 ABI §3.2.1: rbx, rbp, r12–r15 and rsp belong to the caller, as do MXCSR's control
// bits and the x87 control word (§3.2.3). A saved context, from its stack pointer up: MXCSR and
// the x87 control word (8 bytes), r15, r14, r13, r12, rbx, rbp, return address.
__asm__(
    ".text\n"
    ".globl ks_context_switch\n"
    ".type ks_context_switch, @function\n"
    ".p2align 4\n"
    "ks_context_switch:\n"
    "    pushq %rbp\n"
    "    pushq %rbx\n"
    "    pushq %r12\n"
    "    pushq %r13\n"
    "    pushq %r14\n"
    "    pushq %r15\n"
    "    subq $8, %rsp\n"
    "    stmxcsr (%rsp)\n"
    "    fnstcw 4(%rsp)\n"
    "    movq %rsp, (%rdi)\n"
    "    movq %rsi, %rdi\n"
    ".size ks_context_switch, .-ks_context_switch\n"
    ".globl ks_context_resume\n"
    ".type ks_context_resume, @function\n"
    "ks_context_resume:\n"
    "    movq %rdi, %rsp\n"
    "    ldmxcsr (%rsp)\n"
    "    fldcw 4(%rsp)\n"
    "    addq $8, %rsp\n"
    "    popq %r15\n"
    "    popq %r14\n"
    "    popq %r13\n"
    "    popq %r12\n"
    "    popq %rbx\n"
    "    popq %rbp\n"
    "    ret\n"
    ".size ks_context_resume, .-ks_context_resume\n"
    // A new context returns here from its first switch, with the entry in r12 and its argument in
    // r13; the stack is 16-byte aligned at the call, as the ABI requires. The entry returns the
    // stack pointer of the context to resume.
    ".type ks_context_start, @function\n"
    ".p2align 4\n"
    "ks_context_start:\n"
    "    movq %r13, %rdi\n"
    "    callq *%r12\n"
    "    movq %rax, %rdi\n"
    "    jmp ks_context_resume\n"
    ".size ks_context_start, .-ks_context_start\n");

void ks_context_start(void);

void *ks_context_make(void *stack_top, void *(*entry)(void *), void *argument) {
    // Ten words: the eight a switch pops, then two that stand for the frame of a caller, so that
    // the stack is 16-byte aligned when ks_context_start calls the entry. rbp 0 ends backtraces.
    uintptr_t *sp = (uintptr_t *)(((uintptr_t)stack_top & ~(uintptr_t)15) - 10 * sizeof(uintptr_t));
    uint32_t mxcsr;
    uint16_t x87;
    __asm__ volatile("stmxcsr %0" : "=m"(mxcsr));
    __asm__ volatile("fnstcw %0" : "=m"(x87));
    sp[0] = mxcsr | (uintptr_t)x87 << 32;
    sp[1] = 0;                        // r15
    sp[2] = 0;                        // r14
    sp[3] = (uintptr_t)argument;      // r13
    sp[4] = (uintptr_t)entry;         // r12
    sp[5] = 0;                        // rbx
    sp[6] = 0;                        // rbp
    sp[7] = (uintptr_t)ks_context_start;
    sp[8] = 0;
    sp[9] = 0;
    return sp;
}

#elif defined(__aarch64__)

// AAPCS64 §6.1.1: x19–x28, the frame pointer x29, the link register x30, sp and the low halves of
// v8–v15 (d8–d15) belong to the caller, as does FPCR (§6.1.2). A saved context, from its stack
// pointer up: x19–x28, x29, x30, d8–d15, FPCR, padding (176 bytes).
__asm__(
    ".text\n"
    ".globl ks_context_switch\n"
    ".type ks_context_switch, %function\n"
    ".p2align 4\n"
    "ks_context_switch:\n"
    "    sub sp, sp, #176\n"
    "    stp x19, x20, [sp, #0]\n"
    "    stp x21, x22, [sp, #16]\n"
    "    stp x23, x24, [sp, #32]\n"
    "    stp x25, x26, [sp, #48]\n"
    "    stp x27, x28, [sp, #64]\n"
    "    stp x29, x30, [sp, #80]\n"
    "    stp d8, d9, [sp, #96]\n"
    "    stp d10, d11, [sp, #112]\n"
    "    stp d12, d13, [sp, #128]\n"
    "    stp d14, d15, [sp, #144]\n"
    "    mrs x9, fpcr\n"
    "    str x9, [sp, #160]\n"
    "    mov x9, sp\n"
    "    str x9, [x0]\n"
    "    mov x0, x1\n"
    ".size ks_context_switch, .-ks_context_switch\n"
    ".globl ks_context_resume\n"
    ".type ks_context_resume, %function\n"
    "ks_context_resume:\n"
    "    mov sp, x0\n"
    "    ldp x19, x20, [sp, #0]\n"
    "    ldp x21, x22, [sp, #16]\n"
    "    ldp x23, x24, [sp, #32]\n"
    "    ldp x25, x26, [sp, #48]\n"
    "    ldp x27, x28, [sp, #64]\n"
    "    ldp x29, x30, [sp, #80]\n"
    "    ldp d8, d9, [sp, #96]\n"
    "    ldp d10, d11, [sp, #112]\n"
    "    ldp d12, d13, [sp, #128]\n"
    "    ldp d14, d15, [sp, #144]\n"
    "    ldr x9, [sp, #160]\n"
    "    msr fpcr, x9\n"
    "    add sp, sp, #176\n"
    "    ret\n"
    ".size ks_context_resume, .-ks_context_resume\n"
    // A new context returns here from its first switch, with the entry in x19 and its argument in
    // x20. The entry returns the stack pointer of the context to resume.
    ".type ks_context_start, %function\n"
    ".p2align 4\n"
    "ks_context_start:\n"
    "    mov x0, x20\n"
    "    blr x19\n"
    "    b ks_context_resume\n"
    ".size ks_context_start, .-ks_context_start\n");

void ks_context_start(void);

void *ks_context_make(void *stack_top, void *(*entry)(void *), void *argument) {
    uintptr_t *sp = (uintptr_t *)(((uintptr_t)stack_top & ~(uintptr_t)15) - 176);
    uint64_t fpcr;
    __asm__ volatile("mrs %0, fpcr" : "=r"(fpcr));
    for (int i = 0; i < 22; i++) sp[i] = 0;
    sp[0] = (uintptr_t)entry;         // x19
    sp[1] = (uintptr_t)argument;      // x20
    sp[11] = (uintptr_t)ks_context_start;  // x30, the return address; x29 (sp[10]) 0 ends backtraces
    sp[20] = fpcr;
    return sp;
}

#else
#error "KernelSim's context switch supports x86_64 and aarch64 only"
#endif
