import Foundation
import KernelSim
import SwiftParser
import SwiftSyntax

/// Turns the race detector's raw record (instruction offsets in the chapter program) into the
/// chapter's terms: each access's chapter line from the program's line table (`llvm-symbolizer`,
/// which ships with the Swift toolchain), the variable as the code there names it, and the locks
/// as the lines that took them name them.
struct RaceNaming {
    /// `llvm-symbolizer`, or nil when neither PATH nor swiftc's folder has it (lines are then left out).
    let symbolizer: String?

    static let shared = RaceNaming(symbolizer: locateSymbolizer())

    private static func locateSymbolizer() -> String? {
        let environment = ProcessInfo.processInfo.environment
        var folders = (environment["PATH"] ?? "").split(separator: ":").map(String.init)
        if let swiftc = environment["SWIFTC"] { folders.insert((swiftc as NSString).deletingLastPathComponent, at: 0) }
        return folders.map { "\($0)/llvm-symbolizer" }.first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    func name(_ raw: HandshakeRecord.Race) -> DataRaceInfo {
        let lines = locations(of: [raw.current, raw.previous])
        var sources = SourceLines()
        func access(_ a: HandshakeRecord.Race.Access, _ place: (SourceLocation, Int)?) -> DataRaceInfo.Access {
            DataRaceInfo.Access(
                kind: (a.atomic ? "atomic " : "") + (a.write ? "write" : "read"), location: place?.0, column: place?.1,
                context: a.context, processor: a.processor, irql: a.irql,
                locks: a.locks.map { lock in
                    let site = SourceLocation(file: lock.file, line: lock.line)
                    let name = sources.line(site).flatMap(Self.lockArgument) ?? lock.kind
                    return "\(name) (acquired at \(site))"
                })
        }
        let current = access(raw.current, lines[0])
        let previous = access(raw.previous, lines[1])
        let names = zip([raw.current, raw.previous], [lines[0], lines[1]]).map { access, place -> [String]? in
            guard let (location, column) = place, let text = sources.line(location) else { return nil }
            return Self.accessedExpression(in: text, column: column, write: access.write)
        }
        let variable = Self.commonName(names[0], names[1]) ?? raw.variable ?? String(format: "memory at 0x%llx", raw.address)
        return DataRaceInfo(variable: variable, size: raw.size, current: current, previous: previous,
                            racingPairs: raw.racingPairs, advice: Self.advice(variable, current, previous))
    }

    /// What would order the two accesses.
    static func advice(_ variable: String, _ current: DataRaceInfo.Access, _ previous: DataRaceInfo.Access) -> String {
        let lockName = { (a: DataRaceInfo.Access) in a.locks.first.map { String($0.prefix { $0 != " " }) } ?? "" }
        switch (current.locks.isEmpty, previous.locks.isEmpty) {
        case (true, true):
            return "Neither access holds a lock: guard \(variable) with one lock held around every access "
                + "(or, for a lone counter, use an Interlocked routine everywhere)."
        case (true, false):
            return "The previous access holds \(lockName(previous)); the \(current.kind) by \(current.context) "
                + "holds none: take \(lockName(previous)) around it too."
        case (false, true):
            return "The \(current.kind) by \(current.context) holds \(lockName(current)); the previous access holds "
                + "none: take \(lockName(current)) around it too."
        case (false, false):
            return "The two accesses hold different locks (\(lockName(current)), \(lockName(previous))); "
                + "one lock must guard \(variable) everywhere."
        }
    }

    /// The chapter line of the instruction at `offset` in `program`.
    func chapterLine(ofProgramOffset offset: UInt64, in program: String) -> SourceLocation? {
        lines(of: [(program, offset)])[0]?.0
    }

    /// `text` (an interleaving, a crash report) with each "shared-memory access at program
    /// offset:N" placed at its chapter line.
    func placingSharedAccesses(in text: String, of program: String) -> String {
        let marker = "\(KsSharedAccessSite.routine) at \(KsSharedAccessSite.file):"
        guard text.contains(marker) else { return text }
        // Longest first, so that offset 12 never replaces the start of offset 123.
        let offsets = Set(text.components(separatedBy: marker).dropFirst().compactMap { UInt64($0.prefix { $0.isNumber }) })
            .sorted { String($0).count > String($1).count }
        let places = lines(of: offsets.map { (program, $0) })
        var result = text
        for (offset, place) in zip(offsets, places) {
            let where_ = place.map { "\(KsSharedAccessSite.routine) at \($0.0)" } ?? KsSharedAccessSite.routine
            result = result.replacingOccurrences(of: "\(marker)\(offset)", with: where_)
        }
        return result
    }

    /// Chapter lines and columns of the accesses, in order; nil where the program has no line for it.
    private func locations(of accesses: [HandshakeRecord.Race.Access]) -> [(SourceLocation, Int)?] {
        lines(of: accesses.map { ($0.module, $0.offset) })
    }

    /// The chapter line and column of each instruction, given by its image and its offset there
    /// (the return address of an instrumentation call).
    private func lines(of accesses: [(module: String, offset: UInt64)]) -> [(SourceLocation, Int)?] {
        guard !accesses.isEmpty, let symbolizer, let module = accesses.first?.module,
              accesses.allSatisfy({ $0.module == module }) else { return accesses.map { _ in nil } }
        // The recorded address is the return address of the instrumentation call, so the call is
        // the instruction before it. Code the compiler generates for an access (Swift's inout
        // bookkeeping) can carry line 0: then the access itself, which follows the call, names
        // the line, and failing that the code before the call.
        let reach = 48
        let order = [-1] + Array(0..<reach) + (2...reach).map { -$0 }
        let addresses = accesses.flatMap { access in
            order.map { "0x" + String(UInt64(Int64(access.offset) + Int64($0)), radix: 16) }
        }
        guard let outcome = try? ChildProcess(
            executable: symbolizer, arguments: ["--obj=\(module)", "--no-inlines", "--relative-address"] + addresses,
            timeLimit: 30).run(), outcome.ending == .exited(0) else { return accesses.map { _ in nil } }
        // One frame per address: a function line, a file:line:column line, a blank line. A line-0
        // frame still names its function, which keeps the search inside the access's function.
        let frames = outcome.stdout.components(separatedBy: "\n\n").map { frame -> (function: String, place: (SourceLocation, Int)?) in
            let lines = frame.split(separator: "\n")
            guard lines.count >= 2 else { return (lines.first.map(String.init) ?? "", nil) }
            let parts = lines[1].split(separator: ":", omittingEmptySubsequences: false)
            guard parts.count >= 3, let line = Int(parts[parts.count - 2]), let column = Int(parts[parts.count - 1]),
                  line > 0 else { return (String(lines[0]), nil) }
            return (String(lines[0]), (SourceLocation(file: Self.relative(parts.dropLast(2).joined(separator: ":")), line: line),
                                       column))
        }
        return accesses.indices.map { i -> (SourceLocation, Int)? in
            let candidates = frames.dropFirst(i * order.count).prefix(order.count)
            guard let function = candidates.first?.function else { return nil }
            return candidates.lazy.first { $0.function == function && $0.place != nil }?.place
        }
    }

    /// `path` relative to the working folder when it is inside it, as chapter paths are given.
    static func relative(_ path: String) -> String {
        let folder = FileManager.default.currentDirectoryPath + "/"
        return path.hasPrefix(folder) ? String(path.dropFirst(folder.count)) : path
    }

    /// The variable an access at `column` of `line` touches, as its dotted components: for a
    /// write, the target of the assignment or compound assignment (`count += 1`) whose statement
    /// the column is in; otherwise the variable or member chain at the column, without a method
    /// called on it (`messages.append(m)` touches `messages`) or a type it converts to.
    static func accessedExpression(in line: String, column: Int, write: Bool) -> [String]? {
        let tree = Parser.parse(source: line)
        let offset = max(0, min(column - 1, line.utf8.count - 1))
        guard let token = tree.token(at: AbsolutePosition(utf8Offset: offset)) else { return nil }
        let assigned = assignmentTarget(around: Syntax(token))
        let atColumn = referenceAt(Syntax(token))
        return write ? assigned ?? atColumn : atColumn ?? assigned
    }

    /// Two accesses' names reduced to what they share (`entries` for `entries.count` and
    /// `entries`), or the first when they share nothing.
    static func commonName(_ a: [String]?, _ b: [String]?) -> String? {
        guard let a else { return b?.joined(separator: ".") }
        guard let b else { return a.joined(separator: ".") }
        let shared = zip(a, b).prefix { $0 == $1 }.map(\.0)
        return (shared.isEmpty ? a : shared).joined(separator: ".")
    }

    private static let assignmentOperators: Set<String> = ["=", "+=", "-=", "*=", "/=", "%=", "&=", "|=", "^=", "<<=", ">>="]

    /// The left side of the innermost assignment whose statement contains `node`.
    private static func assignmentTarget(around node: Syntax) -> [String]? {
        var current: Syntax? = node
        while let n = current {
            if let infix = n.as(InfixOperatorExprSyntax.self), assignmentOperators.contains(infix.operator.trimmedDescription) {
                return reference(infix.leftOperand)
            }
            if let sequence = n.as(SequenceExprSyntax.self) {
                let elements = Array(sequence.elements)
                if let i = elements.firstIndex(where: {
                    $0.is(AssignmentExprSyntax.self)
                        || ($0.as(BinaryOperatorExprSyntax.self).map { assignmentOperators.contains($0.operator.text) } ?? false)
                }), i > 0 {
                    return reference(elements[i - 1])
                }
            }
            if n.is(CodeBlockItemSyntax.self) || n.is(ClosureExprSyntax.self) { return nil }
            current = n.parent
        }
        return nil
    }

    /// The variable or member chain the token is part of, unless it names a function called there.
    private static func referenceAt(_ token: Syntax) -> [String]? {
        var node: Syntax? = token
        while let n = node, !(n.is(MemberAccessExprSyntax.self) || n.is(DeclReferenceExprSyntax.self)) {
            if n.is(CodeBlockItemSyntax.self) || n.is(ExprSyntax.self) && !n.is(DeclReferenceExprSyntax.self) { return nil }
            node = n.parent
        }
        guard var outer = node else { return nil }
        while let parent = outer.parent, parent.is(MemberAccessExprSyntax.self) { outer = parent }
        if let call = outer.parent?.as(FunctionCallExprSyntax.self), call.calledExpression.id == outer.id {
            // A method call touches its base; a plain call (a function, a type's conversion) touches nothing here.
            guard let member = outer.as(MemberAccessExprSyntax.self), let base = member.base else { return nil }
            return reference(base)
        }
        return ExprSyntax(outer).flatMap(reference)
    }

    /// `a.b.c` or `x` as written, as components; nil for anything else (a call, a literal).
    private static func reference(_ expr: ExprSyntax) -> [String]? {
        if let member = expr.as(MemberAccessExprSyntax.self) {
            guard let base = member.base else { return nil }
            return reference(base).map { $0 + [member.declName.baseName.text] }
        }
        if let name = expr.as(DeclReferenceExprSyntax.self) { return [name.baseName.text] }
        if let forced = expr.as(ForceUnwrapExprSyntax.self) { return reference(forced.expression) }
        if let subscripted = expr.as(SubscriptCallExprSyntax.self) { return reference(subscripted.calledExpression) }
        return nil
    }

    /// The `&object` argument of the lock call on `line` (`ExAcquireFastMutex(&queue.lock)` gives
    /// `queue.lock`).
    static func lockArgument(in line: String) -> String? {
        let tree = Parser.parse(source: line)
        for token in tree.tokens(viewMode: .sourceAccurate) where token.tokenKind == .prefixAmpersand {
            if let argument = token.parent?.as(InOutExprSyntax.self), let name = reference(argument.expression) {
                return name.joined(separator: ".")
            }
        }
        return nil
    }
}

/// Lines of chapter files, read once each.
private struct SourceLines {
    private var files: [String: [String]] = [:]

    mutating func line(_ location: SourceLocation) -> String? {
        if files[location.file] == nil {
            let text = (try? String(contentsOfFile: location.file, encoding: .utf8)) ?? ""
            files[location.file] = text.components(separatedBy: "\n")
        }
        let lines = files[location.file]!
        return location.line >= 1 && location.line <= lines.count ? lines[location.line - 1] : nil
    }
}
