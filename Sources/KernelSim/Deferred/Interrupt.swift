// Interrupt objects, their spin locks, and a simulated device line (KsAssertInterrupt).
// An asserted interrupt stays pending until a processor it may run on (its ProcessorEnableMask,
// or the processor named in KsAssertInterrupt) is below its IRQL at a delivery point: at once if
// the asserting processor qualifies, otherwise when the seeded scheduler next runs that
// processor's thread (or its idle context) or when that processor lowers its IRQL. The service
// routines then run at DIRQL on that processor, on the interrupted thread, holding the
// interrupt spin lock.

public typealias PKINTERRUPT = UnsafeMutablePointer<KINTERRUPT>
public typealias KAFFINITY = ULONG_PTR

/// `PKSERVICE_ROUTINE`: the ISR. Returns TRUE if its device was interrupting.
public typealias PKSERVICE_ROUTINE = (_ Interrupt: PKINTERRUPT, _ ServiceContext: PVOID) -> BOOLEAN
/// `PKSYNCHRONIZE_ROUTINE`: a routine KeSynchronizeExecution runs at SynchronizeIrql.
public typealias PKSYNCHRONIZE_ROUTINE = (_ SynchronizeContext: PVOID) -> BOOLEAN

/// `KINTERRUPT_MODE`.
public struct KINTERRUPT_MODE: RawRepresentable, Equatable, Sendable {
    public var rawValue: Int32
    public init(rawValue: Int32) { self.rawValue = rawValue }
}
public let LevelSensitive = KINTERRUPT_MODE(rawValue: 0)
public let Latched = KINTERRUPT_MODE(rawValue: 1)

/// `KOBJECTS` value of `KINTERRUPT.Type`.
public let InterruptObject: SHORT = 22

/// An interrupt object (opaque in wdm.h; these are the ReactOS field names). IoConnectInterrupt
/// allocates it; the simulator keeps the memory after IoDisconnectInterrupt.
public struct KINTERRUPT {
    public var `Type`: SHORT = 0
    public var Size: SHORT = 0
    public var ServiceRoutine: PKSERVICE_ROUTINE?
    public var ServiceContext: PVOID = nil
    /// The interrupt's own spin lock, used unless IoConnectInterrupt was given one.
    public var SpinLock: KSPIN_LOCK = 0
    /// The spin lock the ISR and KeSynchronizeExecution hold.
    public var ActualLock: PKSPIN_LOCK?
    public var Vector: ULONG = 0
    public var Irql: KIRQL = 0
    public var SynchronizeIrql: KIRQL = 0
    public var FloatingSave: BOOLEAN = FALSE
    public var Connected: BOOLEAN = FALSE
    public var ShareVector: BOOLEAN = FALSE
    public var Mode = LevelSensitive
    /// The processors the ISR may run on.
    public var Affinity: KAFFINITY = 0
    public init() {}
}

struct PendingInterrupt {
    let interrupt: PKINTERRUPT
    /// The processor KsAssertInterrupt named, or nil for any processor in the affinity.
    let processor: Int?
}

/// The machine's connected interrupt objects, in connection order, and the asserted lines.
struct InterruptState {
    var connected: [PKINTERRUPT] = []
    var pending: [PendingInterrupt] = []
}

/// Connects `ServiceRoutine` to `Vector`: it will run at `Irql` on the processors in
/// `ProcessorEnableMask`, holding `SpinLock` (or the object's own lock) whose holders run at
/// `SynchronizeIrql`. Returns STATUS_INVALID_PARAMETER for SynchronizeIrql < Irql, an Irql not
/// above DISPATCH_LEVEL, no existing processor in the mask, or a vector in use that is not
/// shared by both connections.
/// https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-ioconnectinterrupt
public func IoConnectInterrupt(
    _ InterruptObject: UnsafeMutablePointer<PKINTERRUPT?>, _ ServiceRoutine: @escaping PKSERVICE_ROUTINE,
    _ ServiceContext: PVOID, _ SpinLock: PKSPIN_LOCK?, _ Vector: ULONG, _ Irql: KIRQL, _ SynchronizeIrql: KIRQL,
    _ InterruptMode: KINTERRUPT_MODE, _ ShareVector: BOOLEAN, _ ProcessorEnableMask: KAFFINITY,
    _ FloatingSave: BOOLEAN, file: String = #filePath, line: Int = #line
) -> NTSTATUS {
    let m = enterKernel("IoConnectInterrupt", file, line)
    let existing: KAFFINITY = m.processors.count >= KAFFINITY.bitWidth ? ~0 : (1 << m.processors.count) - 1
    let sharingConflict = m.interrupts.connected.contains {
        $0.pointee.Vector == Vector && ($0.pointee.ShareVector == FALSE || ShareVector == FALSE)
    }
    guard Irql > DISPATCH_LEVEL, Irql <= HIGH_LEVEL, SynchronizeIrql >= Irql, SynchronizeIrql <= HIGH_LEVEL,
          ProcessorEnableMask & existing != 0, !sharingConflict else {
        return STATUS_INVALID_PARAMETER
    }
    let interrupt = PKINTERRUPT.allocate(capacity: 1)
    interrupt.initialize(to: KINTERRUPT())
    interrupt.pointee.Type = KernelSim.InterruptObject
    interrupt.pointee.Size = SHORT(MemoryLayout<KINTERRUPT>.size)
    interrupt.pointee.ServiceRoutine = ServiceRoutine
    interrupt.pointee.ServiceContext = ServiceContext
    interrupt.pointee.ActualLock = SpinLock ?? spinLockOf(interrupt)
    interrupt.pointee.Vector = Vector
    interrupt.pointee.Irql = Irql
    interrupt.pointee.SynchronizeIrql = SynchronizeIrql
    interrupt.pointee.Mode = InterruptMode
    interrupt.pointee.ShareVector = ShareVector
    interrupt.pointee.FloatingSave = FloatingSave
    interrupt.pointee.Affinity = ProcessorEnableMask & existing
    interrupt.pointee.Connected = TRUE
    m.interrupts.connected.append(interrupt)
    m.kernelObject(InterruptObject)
    m.deferredNames[address(interrupt)] = "the ISR connected at \(file):\(line)"
    InterruptObject.pointee = interrupt
    return STATUS_SUCCESS
}

/// Disconnects the ISR; an assertion still pending for it is dropped.
/// https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-iodisconnectinterrupt
public func IoDisconnectInterrupt(_ InterruptObject: PKINTERRUPT, file: String = #filePath, line: Int = #line) {
    let m = enterKernel("IoDisconnectInterrupt", file, line)
    m.interrupts.connected.removeAll { $0 == InterruptObject }
    m.interrupts.pending.removeAll { $0.interrupt == InterruptObject }
    InterruptObject.pointee.Connected = FALSE
}

/// Raises to the interrupt's SynchronizeIrql, takes its spin lock, runs `SynchronizeRoutine`,
/// then releases and restores the IRQL; returns the routine's result. The ISR cannot run
/// meanwhile, on this processor (masked) or on another (it spins on the lock).
/// https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-kesynchronizeexecution
@discardableResult
public func KeSynchronizeExecution(_ Interrupt: PKINTERRUPT, _ SynchronizeRoutine: PKSYNCHRONIZE_ROUTINE,
                                   _ SynchronizeContext: PVOID, file: String = #filePath, line: Int = #line) -> BOOLEAN {
    let m = enterKernel("KeSynchronizeExecution", file, line)
    let old = m.acquireInterruptLock(Interrupt)
    let result = SynchronizeRoutine(SynchronizeContext)
    m.releaseSpinLock(Interrupt.pointee.ActualLock!)
    m.lowerIrql(to: old)
    return result
}

/// Raises to the interrupt's SynchronizeIrql, takes its spin lock, and returns the old IRQL.
/// https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-keacquireinterruptspinlock
public func KeAcquireInterruptSpinLock(_ Interrupt: PKINTERRUPT, file: String = #filePath, line: Int = #line) -> KIRQL {
    enterKernel("KeAcquireInterruptSpinLock", file, line).acquireInterruptLock(Interrupt)
}

/// Releases the interrupt spin lock and lowers to `OldIrql`.
/// https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-kereleaseinterruptspinlock
public func KeReleaseInterruptSpinLock(_ Interrupt: PKINTERRUPT, _ OldIrql: KIRQL,
                                       file: String = #filePath, line: Int = #line) {
    let m = enterKernel("KeReleaseInterruptSpinLock", file, line)
    m.releaseSpinLock(Interrupt.pointee.ActualLock!)
    m.lowerIrql(to: OldIrql)
}

/// Simulated hardware: the device behind `Interrupt` raises its line. The ISRs connected to its
/// vector run at DIRQL on `processor` (default: any processor in the interrupt's affinity) as
/// soon as that processor is below the interrupt's IRQL: before this call returns if the
/// caller's processor qualifies, otherwise at a later scheduling point chosen by the seeded
/// scheduler, preempting whatever runs there. Asserting a line that is already pending has no
/// further effect (the simulator does not model a level-sensitive line staying asserted).
public func KsAssertInterrupt(_ Interrupt: PKINTERRUPT, processor: ULONG? = nil,
                              file: String = #filePath, line: Int = #line) {
    let m = enterKernel("KsAssertInterrupt", file, line)
    precondition(Interrupt.pointee.Connected != FALSE,
                 "KsAssertInterrupt at \(file):\(line): the interrupt object is not connected")
    if let processor {
        precondition(processor < KAFFINITY.bitWidth && Interrupt.pointee.Affinity & (1 << processor) != 0,
                     "KsAssertInterrupt at \(file):\(line): processor \(processor) is not in the interrupt's affinity")
    }
    m.workQueued(address(Interrupt))
    let target = processor.map(Int.init)
    let vector = Interrupt.pointee.Vector
    if !m.interrupts.pending.contains(where: { $0.interrupt.pointee.Vector == vector && $0.processor == target }) {
        m.interrupts.pending.append(PendingInterrupt(interrupt: Interrupt, processor: target))
    }
    m.deliverPendingWork()
}

/// `&Interrupt->SpinLock`.
private func spinLockOf(_ interrupt: PKINTERRUPT) -> PKSPIN_LOCK {
    (UnsafeMutableRawPointer(interrupt) + MemoryLayout<KINTERRUPT>.offset(of: \.SpinLock)!)
        .assumingMemoryBound(to: KSPIN_LOCK.self)
}

extension Machine {
    fileprivate func acquireInterruptLock(_ interrupt: PKINTERRUPT) -> KIRQL {
        let old = raiseIrql(to: interrupt.pointee.SynchronizeIrql)
        acquireSpinLock(interrupt.pointee.ActualLock!)
        return old
    }

    private func deliverable(_ pending: PendingInterrupt, on p: Processor) -> Bool {
        let i = pending.interrupt.pointee
        let allowed = pending.processor.map { $0 == p.number } ?? (i.Affinity & (1 << p.number) != 0)
        return allowed && p.irql < i.Irql
    }

    func hasPendingInterrupt(for p: Processor) -> Bool {
        interrupts.pending.contains { deliverable($0, on: p) }
    }

    /// Services the pending interrupts the current processor's IRQL lets in, highest IRQL first.
    func deliverInterrupts() {
        let p = currentProcessor
        while let next = interrupts.pending.indices.filter({ deliverable(interrupts.pending[$0], on: p) })
            .max(by: { interrupts.pending[$0].interrupt.pointee.Irql < interrupts.pending[$1].interrupt.pointee.Irql }) {
            service(interrupts.pending.remove(at: next).interrupt)
        }
    }

    /// KiInterruptDispatch: at the interrupt's IRQL, runs each ISR connected to its vector, in
    /// connection order, holding that ISR's spin lock. A level-sensitive chain stops at the first
    /// ISR that claims the interrupt; a latched one runs them all. Lowering back afterwards lets
    /// the DPCs the ISRs queued run.
    private func service(_ asserted: PKINTERRUPT) {
        let irqlOfVector = asserted.pointee.Irql
        let interrupted = irql
        setIrqlForDelivery(irqlOfVector)
        for interrupt in interrupts.connected where interrupt.pointee.Vector == asserted.pointee.Vector {
            let claimed = inContext(of: address(interrupt), deferredNames[address(interrupt)] ?? "an ISR") {
                runServiceRoutine(interrupt, at: irqlOfVector)
            }
            if claimed != FALSE && interrupt.pointee.Mode == LevelSensitive { break }
        }
        setIrqlForDelivery(interrupted)
    }

    /// One ISR, holding its interrupt spin lock; it must return at the IRQL it was called at.
    private func runServiceRoutine(_ interrupt: PKINTERRUPT, at irqlOfVector: KIRQL) -> BOOLEAN {
        let i = interrupt.pointee
        acquireSpinLock(i.ActualLock!)
        recordEvent(.interrupt(address(interrupt), irql: irqlOfVector))
        let claimed = i.ServiceRoutine!(interrupt, i.ServiceContext)
        if irql != irqlOfVector {
            let note = "The ISR of vector \(i.Vector) returned at IRQL \(irql) instead of its DIRQL \(irqlOfVector)."
            if options.verifier {
                // 0xC4/0x111: P2 the ISR (0: closures have no address), P3 the IRQL before it, P4 after.
                // https://learn.microsoft.com/windows-hardware/drivers/debugger/bug-check-0xc4--driver-verifier-detected-violation
                bugCheck(DRIVER_VERIFIER_DETECTED_VIOLATION, 0x111, 0, ULONG_PTR(irqlOfVector), ULONG_PTR(irql), note: note)
            }
            // UniqueValue 3: P2 the ServiceRoutine (0: closures have no address), P3 the KINTERRUPT.
            // https://learn.microsoft.com/windows-hardware/drivers/debugger/bug-check-0xc8--irql-unexpected-value
            bugCheck(IRQL_UNEXPECTED_VALUE, (ULONG_PTR(irql) << 16) | (ULONG_PTR(irqlOfVector) << 8) | 3,
                     0, address(interrupt), 0, note: note)
        }
        releaseSpinLock(i.ActualLock!)
        return claimed
    }
}
