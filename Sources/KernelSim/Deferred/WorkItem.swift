// Work items: how a DPC, or code holding a spin lock, gets work done at PASSIVE_LEVEL. The routine
// runs later on a system worker thread; when it returns, the worker checks that it left the thread
// as it found it, and stops the system if not (WRK and ReactOS ExpWorkerThread; the codes are
// Microsoft's). Each queued item gets a worker thread of its own, which ends when the routine
// returns: Windows keeps a pool, but items may run concurrently there too, in any order.

/// `WORK_QUEUE_TYPE` (wdm.h). The simulator runs every queue's items the same way.
public struct WORK_QUEUE_TYPE: RawRepresentable, Equatable, Sendable {
    public var rawValue: Int32
    public init(rawValue: Int32) { self.rawValue = rawValue }
}
public let CriticalWorkQueue = WORK_QUEUE_TYPE(rawValue: 0)
public let DelayedWorkQueue = WORK_QUEUE_TYPE(rawValue: 1)
public let HyperCriticalWorkQueue = WORK_QUEUE_TYPE(rawValue: 2)
public let NormalWorkQueue = WORK_QUEUE_TYPE(rawValue: 3)

/// A driver's device object. The simulator has no I/O manager: a `DEVICE_OBJECT()` stands in for
/// the one `IoCreateDevice` returns, which is all `IoAllocateWorkItem` needs.
public struct DEVICE_OBJECT {
    /// `IO_TYPE_DEVICE`.
    public var `Type`: SHORT = 3
    public var Size: USHORT = USHORT(MemoryLayout<DEVICE_OBJECT>.size)
    public var ReferenceCount: LONG = 0
    public var DeviceExtension: PVOID = nil
    public init() {}
}
public typealias PDEVICE_OBJECT = UnsafeMutablePointer<DEVICE_OBJECT>

/// `PWORKER_THREAD_ROUTINE`.
public typealias PWORKER_THREAD_ROUTINE = (_ Parameter: PVOID) -> Void

/// `WORK_QUEUE_ITEM`, filled in by `ExInitializeWorkItem`.
public struct WORK_QUEUE_ITEM {
    public var List = LIST_ENTRY()
    public var WorkerRoutine: PWORKER_THREAD_ROUTINE?
    public var Parameter: PVOID = nil
    public init() {}
}
public typealias PWORK_QUEUE_ITEM = UnsafeMutablePointer<WORK_QUEUE_ITEM>

/// `IO_WORKITEM_ROUTINE`: called with the device object the item was allocated for and the context
/// given to `IoQueueWorkItem`.
public typealias PIO_WORKITEM_ROUTINE = (_ DeviceObject: PDEVICE_OBJECT, _ Context: PVOID) -> Void

/// `IO_WORKITEM`: opaque to drivers (allocate it with `IoAllocateWorkItem`).
public struct IO_WORKITEM {
    fileprivate var item = WORK_QUEUE_ITEM()
    fileprivate var deviceObject: PDEVICE_OBJECT
}
public typealias PIO_WORKITEM = UnsafeMutablePointer<IO_WORKITEM>

/// The wdm.h inline: sets the routine and its parameter and clears the list link.
/// https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-exinitializeworkitem
public func ExInitializeWorkItem(_ Item: PWORK_QUEUE_ITEM, _ Routine: @escaping PWORKER_THREAD_ROUTINE,
                                 _ Context: PVOID) {
    Item.pointee.WorkerRoutine = Routine
    Item.pointee.Parameter = Context
    Item.pointee.List.Flink = nil
}

/// Queues `WorkItem` to a system worker thread, which calls its routine at PASSIVE_LEVEL.
/// IRQL ≤ DISPATCH_LEVEL. (Microsoft asks drivers to use `IoQueueWorkItem` instead.)
/// https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-exqueueworkitem
public func ExQueueWorkItem(_ WorkItem: PWORK_QUEUE_ITEM, _ QueueType: WORK_QUEUE_TYPE,
                           file: String = #filePath, line: Int = #line) {
    let m = enterKernel("ExQueueWorkItem", file, line)
    m.kernelObject(WorkItem)
    guard let routine = WorkItem.pointee.WorkerRoutine else {
        fatalError("ExQueueWorkItem at \(file):\(line): the work item has no routine (ExInitializeWorkItem not called?)")
    }
    m.queueWorkItem(WorkItem, QueueType, origin: "ExQueueWorkItem at \(file):\(line)") { routine(WorkItem.pointee.Parameter) }
}

/// Allocates a work item tied to `DeviceObject`; NULL if there is no memory. IRQL ≤ DISPATCH_LEVEL.
/// https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-ioallocateworkitem
public func IoAllocateWorkItem(_ DeviceObject: PDEVICE_OBJECT, file: String = #filePath, line: Int = #line) -> PIO_WORKITEM? {
    _ = enterKernel("IoAllocateWorkItem", file, line)
    let workItem = PIO_WORKITEM.allocate(capacity: 1)
    workItem.initialize(to: IO_WORKITEM(deviceObject: DeviceObject))
    return workItem
}

/// Queues `WorkerRoutine(DeviceObject, Context)` to a system worker thread, at PASSIVE_LEVEL.
/// The device object is referenced until the routine returns, so a driver cannot unload under it.
/// IRQL ≤ DISPATCH_LEVEL.
/// https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-ioqueueworkitem
public func IoQueueWorkItem(_ IoWorkItem: PIO_WORKITEM, _ WorkerRoutine: @escaping PIO_WORKITEM_ROUTINE,
                            _ QueueType: WORK_QUEUE_TYPE, _ Context: PVOID,
                            file: String = #filePath, line: Int = #line) {
    let m = enterKernel("IoQueueWorkItem", file, line)
    m.kernelObject(IoWorkItem)
    let device = IoWorkItem.pointee.deviceObject
    device.pointee.ReferenceCount += 1
    let item = UnsafeMutableRawPointer(IoWorkItem).assumingMemoryBound(to: WORK_QUEUE_ITEM.self)
    item.pointee.Parameter = Context
    m.queueWorkItem(item, QueueType, origin: "IoQueueWorkItem at \(file):\(line)") {
        WorkerRoutine(device, Context)
        device.pointee.ReferenceCount -= 1
    }
}

/// Frees a work item from `IoAllocateWorkItem`. IRQL ≤ DISPATCH_LEVEL.
/// https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-iofreeworkitem
public func IoFreeWorkItem(_ IoWorkItem: PIO_WORKITEM, file: String = #filePath, line: Int = #line) {
    _ = enterKernel("IoFreeWorkItem", file, line)
    IoWorkItem.deinitialize(count: 1)
    IoWorkItem.deallocate()
}

extension Machine {
    /// Starts a system worker thread for `item`, which runs `routine` at PASSIVE_LEVEL with kernel
    /// APCs enabled and then checks how the routine left the thread. The item is queued (its
    /// `List.Flink` set, as ExInitializeWorkItem clears it) until the worker takes it: queuing it
    /// again meanwhile is 0xE4 with P1 = 1, "an active worker item was queued"; from its own
    /// routine it is allowed, since "the system dequeues a work item before it runs the work
    /// item's callback routine".
    /// https://learn.microsoft.com/windows-hardware/drivers/debugger/bug-check-0xe4--worker-invalid
    /// https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-iofreeworkitem
    func queueWorkItem(_ item: PWORK_QUEUE_ITEM, _ queueType: WORK_QUEUE_TYPE, origin: String,
                       _ routine: @escaping () -> Void) {
        let link = UnsafeMutableRawPointer(item).assumingMemoryBound(to: LIST_ENTRY.self)
        if item.pointee.List.Flink != nil {
            bugCheck(WORKER_INVALID, 1, address(item), ULONG_PTR(queueType.rawValue), 0,
                     note: "The work item at \(hex(address(item))) was queued again before a worker thread took it "
                        + "from the queue (\(origin)).")
        }
        item.pointee.List.Flink = link
        _ = spawn(origin: "a system worker thread (\(origin))") { [unowned self] in
            // Read before the call: "the WorkItem routine can call IoFreeWorkItem" on its own item.
            let parameter = item.pointee.Parameter
            item.pointee.List.Flink = nil
            routine()
            workerRoutineReturned(address(item), parameter: address(parameter))
        }
    }

    /// What ExpWorkerThread checks after each routine. P1 of each code is the worker routine's
    /// address, 0 here (simulated routines have none). A KMUTEX still owned is 0x39 (checked first:
    /// owning one also disables normal kernel APCs); APCs left disabled, e.g. by a
    /// KeEnterCriticalRegion without its leave, is 0x1 with P4 = 1, "worker routine" (P2, the
    /// ApcStateIndex, is always 0: the simulator has no process attach); an IRQL other than
    /// PASSIVE_LEVEL, e.g. a spin lock or fast mutex still held, is 0xE1 (Microsoft's page describes
    /// the usual case, "IRQL >= DISPATCH_LEVEL"; WRK and ReactOS test for anything but PASSIVE_LEVEL).
    /// https://learn.microsoft.com/windows-hardware/drivers/debugger/bug-check-0x39--system-exit-owned-mutex
    /// https://learn.microsoft.com/windows-hardware/drivers/debugger/bug-check-0x1--apc-index-mismatch
    /// https://learn.microsoft.com/windows-hardware/drivers/debugger/bug-check-0xe1--worker-thread-returned-at-bad-irql
    func workerRoutineReturned(_ item: ULONG_PTR, parameter: ULONG_PTR) {
        let t = current!
        if let mutex = ownedMutexes(t).first {
            bugCheck(SYSTEM_EXIT_OWNED_MUTEX, 0, parameter, item, 0,
                     note: "The work item's routine returned still owning KMUTEX \(hex(address(mutex))).")
        }
        let k = t.kthread.pointee
        if k.CombinedApcDisable != 0 {
            bugCheck(APC_INDEX_MISMATCH, 0, 0, ULONG_PTR(k.CombinedApcDisable), 1,
                     note: "The work item's routine returned with KernelApcDisable \(k.KernelApcDisable) and "
                        + "SpecialApcDisable \(k.SpecialApcDisable): a critical or guarded region was entered "
                        + "and not left (or left too often).")
        }
        if irql != PASSIVE_LEVEL {
            bugCheck(WORKER_THREAD_RETURNED_AT_BAD_IRQL, 0, ULONG_PTR(irql), parameter, item,
                     note: "The work item's routine returned at IRQL \(irql): a raise without its lower, or a "
                        + "lock still held?")
        }
    }
}
