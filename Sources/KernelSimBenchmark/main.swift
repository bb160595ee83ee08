// Measures the simulator's scheduling throughput: `make bench-sim` (release build). This target is
// compiled as chapter programs are, with ThreadSanitizer's instrumentation, so its accesses to
// shared memory are scheduling points and reach the race detector.
// Scenarios: two threads each take two fast mutexes in one order, ten times, with a kernel call
// inside the critical section (the main thread joins them); then the same with a shared counter
// incremented inside the critical section, whose load and store are scheduling points too.
import Glibc
import KernelSim

final class Locks {
    var a = FAST_MUTEX()
    var b = FAST_MUTEX()
    var count = 0
}

func locking(incrementing: Bool) -> () -> Void {
    {
        let locks = Locks()
        ExInitializeFastMutex(&locks.a)
        ExInitializeFastMutex(&locks.b)
        var handles: [HANDLE] = [nil, nil]
        for i in 0..<2 {
            PsCreateSystemThread(&handles[i], THREAD_ALL_ACCESS, nil, nil, nil, { _ in
                for _ in 0..<10 {
                    ExAcquireFastMutex(&locks.a)
                    ExAcquireFastMutex(&locks.b)
                    _ = KeGetCurrentIrql()
                    if incrementing { locks.count += 1 }
                    ExReleaseFastMutex(&locks.b)
                    ExReleaseFastMutex(&locks.a)
                }
            }, nil)
        }
        for h in handles { ZwWaitForSingleObject(h, FALSE, nil) }
        precondition(!incrementing || locks.count == 20, "the locked counter lost an update")
    }
}

func seconds() -> Double {
    var t = timespec()
    clock_gettime(CLOCK_MONOTONIC, &t)
    return Double(t.tv_sec) + Double(t.tv_nsec) / 1e9
}

let schedules = CommandLine.arguments.count > 1 ? Int(CommandLine.arguments[1]) ?? 2_000 : 2_000
let scenarios = [("2 threads x 2 locks", locking(incrementing: false)),
                 ("2 threads x 2 locks + shared counter", locking(incrementing: true))]
for (name, scenario) in scenarios {
    for strategy in [KsStrategy.random, .pct(depth: 3)] {
        // Thread switches per schedule, counted from the trace of a few runs.
        var switches = 0
        for seed in 0..<20 as Range<UInt64> {
            _ = KsRunMachine(KsMachineOptions(seed: seed, strategy: strategy), scenario)
            switches += KsLastTrace().events.filter { $0.kind == .run }.count
        }
        let start = seconds()
        let exploration = KsExplore(KsExploreOptions(schedules: schedules, strategy: strategy), scenario)
        let elapsed = seconds() - start
        precondition(exploration.passed, "the benchmark scenario must not fail")
        let perSchedule = Double(switches) / 20
        print("\(name), \(strategy): \(schedules) schedules in \(Int(elapsed * 1000)) ms = "
            + "\(Int(Double(schedules) / elapsed)) schedules/s; ~\(Int(perSchedule)) thread switches per schedule = "
            + "\(Int(perSchedule * Double(schedules) / elapsed)) switches/s")
    }
}
