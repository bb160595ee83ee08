import XCTest
@testable import KernelSim

final class IrqlTests: XCTestCase {
    func testRaiseAndLowerThroughEveryLevel() {
        var seen: [KIRQL] = []
        let m = simulate {
            for level in [PASSIVE_LEVEL, APC_LEVEL, DISPATCH_LEVEL, CMCI_LEVEL, SYNCH_LEVEL, CLOCK_LEVEL, IPI_LEVEL, HIGH_LEVEL] {
                var old: KIRQL = 0xFF
                KeRaiseIrql(level, &old)
                seen += [old, KeGetCurrentIrql()]
                KeLowerIrql(old)
                seen.append(KeGetCurrentIrql())
            }
        }
        assertCompleted(m)
        XCTAssertEqual(seen, [0, 0, 0, 0, 1, 0, 0, 2, 0, 0, 5, 0, 0, 12, 0, 0, 13, 0, 0, 14, 0, 0, 15, 0])
    }

    func testRaiseToDpcAndSynchLevelReturnTheOldIrql() {
        var seen: [KIRQL] = []
        let m = simulate {
            seen.append(KeRaiseIrqlToDpcLevel())
            seen.append(KeRaiseIrqlToDpcLevel())
            seen.append(KeRaiseIrqlToSynchLevel())
            seen.append(KeGetCurrentIrql())
            KeLowerIrql(PASSIVE_LEVEL)
        }
        assertCompleted(m)
        XCTAssertEqual(seen, [PASSIVE_LEVEL, DISPATCH_LEVEL, DISPATCH_LEVEL, SYNCH_LEVEL])
    }

    func testRaisingToALowerIrqlUnderVerifierIs0xC4_0x30() {
        let m = simulate {
            var old: KIRQL = 0
            KeRaiseIrql(DISPATCH_LEVEL, &old)
            KeRaiseIrql(APC_LEVEL, &old)
        }
        assertBugCheck(m, 0xC4, [0x30, 2, 1, 0])
    }

    func testRaisingToALowerIrqlOnRetailIs0x9() {
        let m = simulate(verifier: false) {
            var old: KIRQL = 0
            KeRaiseIrql(DISPATCH_LEVEL, &old)
            KeRaiseIrql(APC_LEVEL, &old)
        }
        assertBugCheck(m, IRQL_NOT_GREATER_OR_EQUAL, [0, 0, 0, 0])
    }

    func testLoweringToAHigherIrqlUnderVerifierIs0xC4_0x31() {
        let m = simulate { KeLowerIrql(DISPATCH_LEVEL) }
        assertBugCheck(m, 0xC4, [0x31, 0, 2, 0])
    }

    func testLoweringToAHigherIrqlOnRetailIs0xA() {
        let m = simulate(verifier: false) { KeLowerIrql(DISPATCH_LEVEL) }
        assertBugCheck(m, IRQL_NOT_LESS_OR_EQUAL, [0, 0, 0, 0])
    }

    func testPagedCodeAtDispatchLevelUnderVerifierIs0xD1() {
        var line = 0
        let m = simulate {
            var old: KIRQL = 0
            KeRaiseIrql(DISPATCH_LEVEL, &old)
            line = #line; PAGED_CODE()
        }
        guard let b = bugCheck(of: m) else { return }
        XCTAssertEqual(b.code, DRIVER_IRQL_NOT_LESS_OR_EQUAL)
        XCTAssertEqual(b.parameters[1], 2)
        XCTAssertEqual(b.parameters[2], 8)
        XCTAssertEqual(b.parameters[0], b.parameters[3])
        XCTAssertEqual(b.line, line)
        XCTAssertEqual(b.file, #filePath)
    }

    func testPagedCodeIsHarmlessAtApcLevelAndOnRetail() {
        let atApc = simulate {
            var old: KIRQL = 0
            KeRaiseIrql(APC_LEVEL, &old)
            PAGED_CODE()
            KeLowerIrql(old)
        }
        assertCompleted(atApc)
        let retail = simulate(verifier: false) {
            var old: KIRQL = 0
            KeRaiseIrql(DISPATCH_LEVEL, &old)
            PAGED_CODE()
            KeLowerIrql(old)
        }
        assertCompleted(retail)
    }

    func testProcessorNumbersAreInRangeAndStableAtDispatchLevel() {
        for seed in 0..<20 as Range<UInt64> {
            var stable = true
            var numbers: Set<ULONG> = []
            let m = simulate(seed: seed, processors: 2) {
                let hs = (0..<3).map { _ in
                    startThread {
                        numbers.insert(KeGetCurrentProcessorNumber())
                        let old = KeRaiseIrqlToDpcLevel()
                        let here = KeGetCurrentProcessorNumber()
                        for _ in 0..<5 { if KeGetCurrentProcessorNumber() != here { stable = false } }
                        KeLowerIrql(old)
                    }
                }
                for h in hs { join(h) }
            }
            assertCompleted(m)
            XCTAssertTrue(stable, "a thread at DISPATCH_LEVEL changed processor (seed \(seed))")
            XCTAssertTrue(numbers.isSubset(of: [0, 1]))
        }
    }
}
