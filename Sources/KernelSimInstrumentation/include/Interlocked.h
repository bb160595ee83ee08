// The Interlocked routines drivers use for single variables, as wdm.h declares them (LONG is 32
// bits on Windows). Each is one atomic, full-barrier operation ("Interlocked functions ... are
// also memory barriers" on x64) and reaches the race detector as an atomic access at the caller's
// instruction: interlocked operations never race with each other, but a plain access to the same
// variable races with them if nothing else orders the two.
// https://learn.microsoft.com/windows-hardware/drivers/kernel/using-interlocked-operations
#ifndef KERNELSIM_INTERLOCKED_H
#define KERNELSIM_INTERLOCKED_H

#include <stdint.h>

/// https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-interlockedincrement
int32_t InterlockedIncrement(volatile int32_t *Addend);
/// https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-interlockeddecrement
int32_t InterlockedDecrement(volatile int32_t *Addend);
/// Returns the initial value. https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-interlockedexchange
int32_t InterlockedExchange(volatile int32_t *Target, int32_t Value);
/// Returns the initial value. https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-interlockedexchangeadd
int32_t InterlockedExchangeAdd(volatile int32_t *Addend, int32_t Value);
/// Stores `Exchange` if `*Destination == Comparand`; returns the initial value.
/// https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-interlockedcompareexchange
int32_t InterlockedCompareExchange(volatile int32_t *Destination, int32_t Exchange, int32_t Comparand);
/// Returns the initial value. https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-interlockedor
int32_t InterlockedOr(volatile int32_t *Destination, int32_t Value);
/// Returns the initial value. https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-interlockedand
int32_t InterlockedAnd(volatile int32_t *Destination, int32_t Value);

int64_t InterlockedIncrement64(volatile int64_t *Addend);
int64_t InterlockedDecrement64(volatile int64_t *Addend);
int64_t InterlockedExchange64(volatile int64_t *Target, int64_t Value);
int64_t InterlockedExchangeAdd64(volatile int64_t *Addend, int64_t Value);
int64_t InterlockedCompareExchange64(volatile int64_t *Destination, int64_t Exchange, int64_t Comparand);

/// https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-interlockedexchangepointer
void *InterlockedExchangePointer(void *volatile *Target, void *Value);
/// https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-interlockedcompareexchangepointer
void *InterlockedCompareExchangePointer(void *volatile *Destination, void *Exchange, void *Comparand);

/// Atomic reads and writes without a full barrier (wdm.h's ReadNoFence/WriteNoFence family, and
/// the acquire/release forms); for the race detector all of them are atomic accesses.
int32_t ReadNoFence(const volatile int32_t *Source);
void WriteNoFence(volatile int32_t *Destination, int32_t Value);
int32_t ReadAcquire(const volatile int32_t *Source);
void WriteRelease(volatile int32_t *Destination, int32_t Value);

/// A full memory barrier. https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-kememorybarrier
void KeMemoryBarrier(void);

#endif
