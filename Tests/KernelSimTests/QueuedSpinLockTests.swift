import XCTest
@testable import KernelSim

private func bits(_ lock: PKSPIN_LOCK?) -> ULONG_PTR { ULONG_PTR(bitPattern: lock) }

final class QueuedSpinLockTests: XCTestCase {
    /// KeSpinLock.c item 77 (x64 is always MP): while held, the lock word is the tail of the queue
    /// (our entry), `Next` is NULL and `Lock` is the lock with LOCK_QUEUE_OWNER; after the release
    /// the word is 0 and `Lock` the bare lock address. OldIrql is the entry IRQL.
    func testHeldAndReleasedFieldValues() {
        var observed: [String] = []
        var expected: [String] = []
        let machine = simulate {
            var lock: KSPIN_LOCK = 0x5555
            KeInitializeSpinLock(&lock)
            let lockAddress = addressOf(&lock)
            let handle = UnsafeMutablePointer<KLOCK_QUEUE_HANDLE>.allocate(capacity: 1)
            func note(_ label: String) {
                observed.append("\(label): word=\(lock == addressOf(handle) ? "handle" : String(lock)) "
                    + "next=\(handle.pointee.LockQueue.Next == nil ? "NULL" : "set") "
                    + "lockBits=\(bits(handle.pointee.LockQueue.Lock) ^ lockAddress) OldIrql=\(handle.pointee.OldIrql) "
                    + "IRQL=\(KeGetCurrentIrql()) test=\(KeTestSpinLock(&lock)) apcs=\(KeAreApcsDisabled())")
            }
            for x in [PASSIVE_LEVEL, APC_LEVEL, DISPATCH_LEVEL] {
                handle.pointee.LockQueue.Next = PKSPIN_LOCK_QUEUE(bitPattern: 0x5555_5550)
                handle.pointee.OldIrql = 0x55
                var old: KIRQL = 0
                KeRaiseIrql(x, &old)
                KeAcquireInStackQueuedSpinLock(&lock, handle)
                note("held from \(x)")
                expected.append("held from \(x): word=handle next=NULL lockBits=2 OldIrql=\(x) IRQL=2 test=0 apcs=0")
                KeReleaseInStackQueuedSpinLock(handle)
                note("released to \(x)")
                expected.append("released to \(x): word=0 next=NULL lockBits=0 OldIrql=\(x) IRQL=\(x) test=1 apcs=0")
                KeLowerIrql(old)
            }
            handle.pointee.OldIrql = 0x55
            let old = KeRaiseIrqlToDpcLevel()
            KeAcquireInStackQueuedSpinLockAtDpcLevel(&lock, handle)
            note("at DPC level")
            expected.append("at DPC level: word=handle next=NULL lockBits=2 OldIrql=85 IRQL=2 test=0 apcs=0")
            KeReleaseInStackQueuedSpinLockFromDpcLevel(handle)
            note("from DPC level")
            expected.append("from DPC level: word=0 next=NULL lockBits=0 OldIrql=85 IRQL=2 test=1 apcs=0")
            KeLowerIrql(old)
        }
        assertCompleted(machine)
        XCTAssertEqual(observed, expected)
    }

    /// Waiters on other processors queue behind the tail and are handed the lock in arrival order;
    /// while a waiter spins its entry has LOCK_QUEUE_WAIT and is linked from its predecessor.
    func testOwnershipIsHandedDownTheQueueInArrivalOrder() {
        for seed in 0..<8 as Range<UInt64> {
            var order: [Int] = []
            var queue: [String] = []
            let machine = simulate(seed: seed, processors: 4) {
                let lock = UnsafeMutablePointer<KSPIN_LOCK>.allocate(capacity: 1)
                KeInitializeSpinLock(lock)
                let handles = UnsafeMutablePointer<KLOCK_QUEUE_HANDLE>.allocate(capacity: 4)
                let gates = (1...3).map { _ in Gate() }
                let threads = (1...3).map { i in
                    startThread {
                        gates[i - 1].pass()
                        KeAcquireInStackQueuedSpinLock(lock, handles + i)
                        order.append(i)
                        KeReleaseInStackQueuedSpinLock(handles + i)
                    }
                }
                KeAcquireInStackQueuedSpinLock(lock, handles)
                for i in 1...3 {
                    gates[i - 1].open()
                    // At DISPATCH_LEVEL we cannot sleep: poll until waiter i is the tail and linked.
                    while !(lock.pointee == addressOf(handles + i) && handles[i - 1].LockQueue.Next != nil) {
                        _ = KeGetCurrentIrql()
                    }
                }
                for i in 0...3 {
                    let next = handles[i].LockQueue.Next.map { UnsafeMutableRawPointer($0) == UnsafeMutableRawPointer(handles + i + 1) }
                    queue.append("\(i): bits=\(bits(handles[i].LockQueue.Lock) ^ addressOf(lock)) next=\(next.map(String.init) ?? "NULL")")
                }
                KeReleaseInStackQueuedSpinLock(handles)
                for t in threads { join(t) }
                XCTAssertEqual(lock.pointee, 0)
            }
            assertCompleted(machine)
            XCTAssertEqual(order, [1, 2, 3], "seed \(seed)")
            XCTAssertEqual(queue, ["0: bits=2 next=true", "1: bits=1 next=true", "2: bits=1 next=true", "3: bits=1 next=NULL"],
                           "seed \(seed)")
        }
    }

    func testMutualExclusionUnderContention() {
        for seed in 0..<8 as Range<UInt64> {
            var inside = 0, maxInside = 0, total = 0
            let machine = simulate(seed: seed, processors: 3) {
                var lock: KSPIN_LOCK = 0
                KeInitializeSpinLock(&lock)
                let hs = (0..<3).map { _ in
                    startThread {
                        for _ in 0..<4 {
                            var handle = KLOCK_QUEUE_HANDLE()
                            KeAcquireInStackQueuedSpinLock(&lock, &handle)
                            inside += 1
                            maxInside = max(maxInside, inside)
                            _ = KeGetCurrentIrql()
                            total += 1
                            inside -= 1
                            KeReleaseInStackQueuedSpinLock(&handle)
                        }
                    }
                }
                for h in hs { join(h) }
                XCTAssertEqual(lock, 0)
            }
            assertCompleted(machine)
            XCTAssertEqual(total, 12)
            XCTAssertEqual(maxInside, 1, "seed \(seed)")
        }
    }

    /// Retail only: Verifier reports 0xC4/0x1000 instead (LockOrderTests).
    func testRecursiveAcquireIs0xFOnRetail() {
        var lockAddress: ULONG_PTR = 0
        let machine = simulate(verifier: false) {
            var lock: KSPIN_LOCK = 0
            KeInitializeSpinLock(&lock)
            lockAddress = addressOf(&lock)
            var first = KLOCK_QUEUE_HANDLE(), second = KLOCK_QUEUE_HANDLE()
            KeAcquireInStackQueuedSpinLock(&lock, &first)
            KeAcquireInStackQueuedSpinLockAtDpcLevel(&lock, &second)
        }
        assertBugCheck(machine, SPIN_LOCK_ALREADY_OWNED, [lockAddress, 0, 0, 0])
    }

    /// Retail only: Verifier reports 0xC4/0x1007 instead (LockOrderTests).
    func testReleasingTwiceIs0x10OnRetail() {
        var lockAddress: ULONG_PTR = 0
        let machine = simulate(verifier: false) {
            var lock: KSPIN_LOCK = 0
            KeInitializeSpinLock(&lock)
            lockAddress = addressOf(&lock)
            var handle = KLOCK_QUEUE_HANDLE()
            KeAcquireInStackQueuedSpinLock(&lock, &handle)
            KeReleaseInStackQueuedSpinLock(&handle)
            KeReleaseInStackQueuedSpinLock(&handle)
        }
        assertBugCheck(machine, SPIN_LOCK_NOT_OWNED, [lockAddress, 0, 0, 0])
    }

    func testQueuedAcquireOfAnOrdinarilyHeldLockUnderVerifierIs0xC4_0x1008() {
        var lockAddress: ULONG_PTR = 0
        let machine = simulate {
            var lock: KSPIN_LOCK = 0
            KeInitializeSpinLock(&lock)
            lockAddress = addressOf(&lock)
            var old: KIRQL = 0
            KeAcquireSpinLock(&lock, &old)
            var handle = KLOCK_QUEUE_HANDLE()
            KeAcquireInStackQueuedSpinLockAtDpcLevel(&lock, &handle)
        }
        assertBugCheck(machine, 0xC4, [0x1008, lockAddress, 0, 0])
    }

    /// Without Verifier the exchange hands back the ordinary lock's 1 as the "previous tail", and
    /// linking behind it writes to address 1 at DISPATCH_LEVEL.
    func testQueuedAcquireOfAnOrdinarilyHeldLockOnRetailFaultsOnAddress1() {
        let machine = simulate(verifier: false) {
            var lock: KSPIN_LOCK = 0
            KeInitializeSpinLock(&lock)
            var old: KIRQL = 0
            KeAcquireSpinLock(&lock, &old)
            var handle = KLOCK_QUEUE_HANDLE()
            KeAcquireInStackQueuedSpinLockAtDpcLevel(&lock, &handle)
        }
        assertBugCheck(machine, IRQL_NOT_LESS_OR_EQUAL, [1, 2, 1, 0])
    }

    func testOrdinaryAcquireOfAQueuedHeldLockUnderVerifierIs0xC4_0x1008() {
        var lockAddress: ULONG_PTR = 0
        let machine = simulate {
            var lock: KSPIN_LOCK = 0
            KeInitializeSpinLock(&lock)
            lockAddress = addressOf(&lock)
            var handle = KLOCK_QUEUE_HANDLE()
            KeAcquireInStackQueuedSpinLock(&lock, &handle)
            KeAcquireSpinLockAtDpcLevel(&lock)
        }
        assertBugCheck(machine, 0xC4, [0x1008, lockAddress, 0, 0])
    }

    func testAcquireSpinLockRaiseToDpcReturnsTheOldIrql() {
        var observed: [String] = []
        let machine = simulate {
            var lock: KSPIN_LOCK = 0
            KeInitializeSpinLock(&lock)
            var start: KIRQL = 0
            KeRaiseIrql(APC_LEVEL, &start)
            let old = KeAcquireSpinLockRaiseToDpc(&lock)
            observed.append("old=\(old) IRQL=\(KeGetCurrentIrql()) lock=\(lock)")
            KeReleaseSpinLock(&lock, old)
            observed.append("IRQL=\(KeGetCurrentIrql()) lock=\(lock)")
            KeLowerIrql(start)
        }
        assertCompleted(machine)
        XCTAssertEqual(observed, ["old=1 IRQL=2 lock=1", "IRQL=1 lock=0"])
    }
}
