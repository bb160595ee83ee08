import XCTest
@testable import KernelSim

final class WorkItemTests: XCTestCase {
    /// The classic hand-off: a DPC cannot wait, so it queues a work item whose routine runs at
    /// PASSIVE_LEVEL on a system worker thread, with the device object referenced meanwhile.
    func testAWorkItemQueuedFromADpcRunsAtPassiveLevelOnAnotherThread() {
        final class Driver {
            var device = DEVICE_OBJECT()
            var dpc = KDPC()
            var workItem: PIO_WORKITEM?
            var done = KEVENT()
            var seen: (irql: KIRQL, thread: PKTHREAD?, references: LONG, context: PVOID) = (9, nil, 0, nil)
        }
        let d = Driver()
        var mainThread: PKTHREAD?
        let m = simulate {
            mainThread = KeGetCurrentThread()
            KeInitializeEvent(&d.done, NotificationEvent, FALSE)
            d.workItem = IoAllocateWorkItem(&d.device)
            KeInitializeDpc(&d.dpc, { _, _, _, _ in
                IoQueueWorkItem(d.workItem!, { device, context in
                    d.seen = (KeGetCurrentIrql(), KeGetCurrentThread(), device.pointee.ReferenceCount, context)
                    KeSetEvent(&d.done, IO_NO_INCREMENT, FALSE)
                }, DelayedWorkQueue, UnsafeMutableRawPointer(bitPattern: 0x42))
            }, nil)
            KeInsertQueueDpc(&d.dpc, nil, nil)
            KeWaitForSingleObject(&d.done, Executive, KernelMode, FALSE, nil)
        }
        assertCompleted(m)
        XCTAssertEqual(d.seen.irql, PASSIVE_LEVEL)
        XCTAssertNotEqual(d.seen.thread, mainThread, "a system worker thread runs it")
        XCTAssertEqual(d.seen.references, 1, "the device object is referenced while the routine runs")
        XCTAssertEqual(d.seen.context, UnsafeMutableRawPointer(bitPattern: 0x42))
        XCTAssertEqual(d.device.ReferenceCount, 0)
    }

    func testExQueueWorkItemCallsTheRoutineWithItsParameter() {
        final class Item { var item = WORK_QUEUE_ITEM(); var parameter: PVOID = nil }
        let i = Item()
        let m = simulate {
            ExInitializeWorkItem(&i.item, { i.parameter = $0 }, UnsafeMutableRawPointer(bitPattern: 7))
            ExQueueWorkItem(&i.item, CriticalWorkQueue)
        }
        assertCompleted(m)
        XCTAssertEqual(i.parameter, UnsafeMutableRawPointer(bitPattern: 7))
    }

    /// A routine that returns holding a spin lock: 0xE1, P2 = the IRQL, P3 = the parameter,
    /// P4 = the work item.
    func testReturningWithASpinLockHeldIs0xE1() {
        final class Item { var item = WORK_QUEUE_ITEM(); var lock: KSPIN_LOCK = 0 }
        let i = Item()
        var itemAddress: ULONG_PTR = 0
        let m = simulate(verifier: false) {
            KeInitializeSpinLock(&i.lock)
            itemAddress = addressOf(&i.item)
            ExInitializeWorkItem(&i.item, { _ in
                var oldIrql: KIRQL = 0
                KeAcquireSpinLock(&i.lock, &oldIrql)
            }, UnsafeMutableRawPointer(bitPattern: 0x99))
            ExQueueWorkItem(&i.item, DelayedWorkQueue)
        }
        assertBugCheck(m, WORKER_THREAD_RETURNED_AT_BAD_IRQL, [0, 2, 0x99, itemAddress])
    }

    /// A critical region entered and not left: 0x1, P3 = CombinedApcDisable (KernelApcDisable -1
    /// in the low half), P4 = 1, "worker routine".
    func testReturningInsideACriticalRegionIsApcIndexMismatch() {
        final class Item { var item = WORK_QUEUE_ITEM() }
        let i = Item()
        let m = simulate {
            ExInitializeWorkItem(&i.item, { _ in KeEnterCriticalRegion() }, nil)
            ExQueueWorkItem(&i.item, DelayedWorkQueue)
        }
        assertBugCheck(m, APC_INDEX_MISMATCH, [0, 0, 0xFFFF, 1])
    }

    func testReturningOwningAKernelMutexIs0x39() {
        final class Item { var item = WORK_QUEUE_ITEM(); var mutex = KMUTEX() }
        let i = Item()
        var itemAddress: ULONG_PTR = 0
        let m = simulate {
            KeInitializeMutex(&i.mutex, 0)
            itemAddress = addressOf(&i.item)
            ExInitializeWorkItem(&i.item, { _ in
                KeWaitForSingleObject(&i.mutex, Executive, KernelMode, FALSE, nil)
            }, UnsafeMutableRawPointer(bitPattern: 5))
            ExQueueWorkItem(&i.item, DelayedWorkQueue)
        }
        assertBugCheck(m, SYSTEM_EXIT_OWNED_MUTEX, [0, 5, itemAddress, 0])
    }

    /// "The WorkItem routine can call IoFreeWorkItem": the worker's checks must not read the item
    /// after the routine returns, so a routine that frees its item and returns at DISPATCH_LEVEL
    /// still gets 0xE1 with the parameter and the item's address as they were queued.
    func testARoutineMayFreeItsOwnWorkItem() {
        final class Driver { var device = DEVICE_OBJECT() }
        let d = Driver()
        var itemAddress: ULONG_PTR = 0
        let m = simulate(verifier: false) {
            let item = IoAllocateWorkItem(&d.device)!
            itemAddress = addressOf(item)
            IoQueueWorkItem(item, { _, context in
                IoFreeWorkItem(PIO_WORKITEM(OpaquePointer(context!)))
                _ = KeRaiseIrqlToDpcLevel()
            }, DelayedWorkQueue, UnsafeMutableRawPointer(item))
        }
        assertBugCheck(m, WORKER_THREAD_RETURNED_AT_BAD_IRQL, [0, 2, itemAddress, itemAddress])
    }

    /// An item still in the queue cannot be queued again: 0xE4, P1 = 1, P2 = the item, P3 = the
    /// queue. From its own routine it can: the worker took it off the queue first.
    func testQueuingAnItemThatIsStillQueuedIsWorkerInvalid() {
        final class Driver { var device = DEVICE_OBJECT(); var runs = 0 }
        let d = Driver()
        var itemAddress: ULONG_PTR = 0
        let twice = simulate(processors: 1) {
            let item = IoAllocateWorkItem(&d.device)!
            itemAddress = addressOf(item)
            let old = KeRaiseIrqlToDpcLevel()        // no worker can take it meanwhile
            IoQueueWorkItem(item, { _, _ in }, DelayedWorkQueue, nil)
            IoQueueWorkItem(item, { _, _ in }, DelayedWorkQueue, nil)
            KeLowerIrql(old)
        }
        assertBugCheck(twice, WORKER_INVALID, [1, itemAddress, 1, 0])

        let again = simulate(processors: 1) {
            let item = IoAllocateWorkItem(&d.device)!
            func requeue(_ device: PDEVICE_OBJECT, _ context: PVOID) {
                d.runs += 1
                if d.runs < 3 { IoQueueWorkItem(item, requeue, DelayedWorkQueue, nil) } else { IoFreeWorkItem(item) }
            }
            IoQueueWorkItem(item, requeue, DelayedWorkQueue, nil)
        }
        assertCompleted(again)
        XCTAssertEqual(d.runs, 3)
    }
}
