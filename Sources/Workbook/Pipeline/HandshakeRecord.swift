import Foundation
import KernelSim

/// The record a chapter program writes when its simulated machine stops (see `workbookMain`).
struct HandshakeRecord {
    enum Outcome {
        case completed
        case bugCheck(BugCheckInfo)
        case deadlock(String)
    }

    struct Failure {
        var file: String
        var line: Int
        var message: String
    }

    /// What `schedules=N` explored; `seed` and the rest are set when a schedule failed.
    struct Exploration {
        var schedules: Int
        var explored: Int
        var index: Int?
        var seed: UInt64?
        var strategy: String?
        var interleaving: String?
    }

    /// The race detector's first race, as the chapter program saw it.
    struct Race {
        struct Access {
            struct Lock {
                var kind: String
                var file: String
                var line: Int
            }
            var write: Bool
            var atomic: Bool
            var module: String
            var offset: UInt64
            var context: String
            var processor: Int
            var irql: Int
            var locks: [Lock]
        }
        var address: UInt64
        var size: Int
        var variable: String?
        var racingPairs: Int
        var current: Access
        var previous: Access
    }

    var outcome: Outcome
    var failures: [Failure]
    var exploration: Exploration?
    var race: Race?

    /// The record in `path`, or nil when there is none or it does not carry `nonce` (the block
    /// ended before the machine stopped, or something else wrote the file).
    static func read(_ path: String, nonce: String) -> HandshakeRecord? {
        guard let data = FileManager.default.contents(atPath: path),
              let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
              object["nonce"] as? String == nonce else { return nil }
        let failures = (object["failures"] as? [[String: Any]] ?? []).map {
            Failure(file: $0["file"] as? String ?? "?", line: $0["line"] as? Int ?? 0,
                    message: $0["message"] as? String ?? "")
        }
        let exploration = (object["exploration"] as? [String: Any]).map {
            Exploration(schedules: $0["schedules"] as? Int ?? 0, explored: $0["explored"] as? Int ?? 0,
                        index: $0["index"] as? Int, seed: ($0["seed"] as? NSNumber)?.uint64Value,
                        strategy: $0["strategy"] as? String, interleaving: $0["interleaving"] as? String)
        }
        let race = (object["race"] as? [String: Any]).flatMap(Race.init)
        switch object["outcome"] as? String {
        case "completed":
            return HandshakeRecord(outcome: .completed, failures: failures, exploration: exploration, race: race)
        case "deadlock":
            return HandshakeRecord(outcome: .deadlock(object["report"] as? String ?? ""), failures: failures,
                                   exploration: exploration, race: race)
        case "bugcheck":
            guard let check = object["bugcheck"] as? [String: Any],
                  let code = (check["code"] as? NSNumber)?.uint32Value else { return nil }
            let parameters = (check["parameters"] as? [NSNumber] ?? []).map(\.uint64Value)
            let location = (check["file"] as? String).map {
                SourceLocation(file: $0, line: check["line"] as? Int ?? 0)
            }
            let info = BugCheckInfo(code: code, name: check["name"] as? String ?? BugCheckNames.name(code),
                                    parameters: parameters, report: check["report"] as? String ?? "",
                                    location: location)
            return HandshakeRecord(outcome: .bugCheck(info), failures: failures, exploration: exploration, race: race)
        default:
            return nil
        }
    }
}

extension HandshakeRecord.Race {
    init?(_ object: [String: Any]) {
        func access(_ value: Any?) -> Access? {
            guard let a = value as? [String: Any] else { return nil }
            let locks = (a["locks"] as? [[String: Any]] ?? []).map {
                Access.Lock(kind: $0["kind"] as? String ?? "lock", file: $0["file"] as? String ?? "?",
                            line: $0["line"] as? Int ?? 0)
            }
            return Access(write: a["write"] as? Bool ?? false, atomic: a["atomic"] as? Bool ?? false,
                          module: a["module"] as? String ?? "", offset: (a["offset"] as? NSNumber)?.uint64Value ?? 0,
                          context: a["context"] as? String ?? "?", processor: a["processor"] as? Int ?? 0,
                          irql: a["irql"] as? Int ?? 0, locks: locks)
        }
        guard let current = access(object["current"]), let previous = access(object["previous"]) else { return nil }
        self.init(address: (object["address"] as? NSNumber)?.uint64Value ?? 0, size: object["size"] as? Int ?? 0,
                  variable: object["variable"] as? String, racingPairs: object["racingPairs"] as? Int ?? 1,
                  current: current, previous: previous)
    }
}

/// Bug check names from the simulator's table of documented codes.
enum BugCheckNames {
    static func name(_ code: UInt32) -> String { KsBugCheckName(code) ?? "UNKNOWN_BUG_CHECK" }

    /// `NAME (0xCODE)`, or nil for a code the simulator does not know.
    static func title(_ code: UInt32) -> String? {
        KsBugCheckName(code).map { "\($0) (0x\(String(code, radix: 16, uppercase: true)))" }
    }
}
