import Foundation
import SwiftParser
import SwiftSyntax

/// Turns a chapter's blocks into one Swift program: the chapter's shared declarations at file
/// scope, each block's statements in a function of its own, and a `workbookMain` table that runs
/// one block per process.
///
/// Every piece is preceded by `#sourceLocation`, and a block's code keeps its line structure (the
/// parts that move elsewhere are blanked, not removed), so diagnostics, `#filePath`/`#line` and
/// crash backtraces all name the chapter file and line.
public enum ProgramGenerator {
    /// A block's code split into what is shared by the chapter and what runs in the block.
    struct SplitCode: Hashable, Codable {
        struct Import: Hashable, Codable {
            /// The line within the block, from 1.
            var line: Int
            var text: String
        }
        /// `import` lines, hoisted to the top of the file.
        var imports: [Import]
        /// The block's code with everything but its shared declarations blanked.
        var declarations: String
        /// The block's code with its shared declarations and imports blanked.
        var statements: String
        /// Every name the shared declarations introduce: types, functions, their members, enum
        /// cases, and the types extensions extend (see `Dependencies`).
        var declaredNames: [String] = []

        var hasDeclarations: Bool { declarations.contains { !$0.isWhitespace } }
    }

    /// Splits `code` with swift-syntax: type, function, extension, protocol, typealias, operator and
    /// actor declarations are shared by the chapter; `let`/`var` and statements stay in the block.
    static func split(_ code: String) -> SplitCode {
        guard mayDeclare(code) else {
            return SplitCode(imports: [], declarations: mask(Array(code.utf8), keeping: []), statements: code)
        }
        let file = Parser.parse(source: code)
        let utf8 = Array(code.utf8)
        var declarationRanges: [Range<Int>] = []
        var imports: [SplitCode.Import] = []
        var importRanges: [Range<Int>] = []
        let names = DeclaredNames(viewMode: .sourceAccurate)
        let converter = SourceLocationConverter(fileName: "", tree: file)
        for item in file.statements {
            let range = item.positionAfterSkippingLeadingTrivia.utf8Offset..<item.endPositionBeforeTrailingTrivia.utf8Offset
            guard case .decl(let decl) = item.item else { continue }
            if decl.is(ImportDeclSyntax.self) {
                importRanges.append(range)
                let line = converter.location(for: item.positionAfterSkippingLeadingTrivia).line
                imports.append(SplitCode.Import(line: line, text: decl.trimmedDescription))
            } else if isShared(decl) {
                declarationRanges.append(range)
                names.walk(decl)
            }
        }
        return SplitCode(
            imports: imports,
            declarations: mask(utf8, keeping: declarationRanges),
            statements: mask(utf8, keeping: complement(of: declarationRanges + importRanges, count: utf8.count)),
            declaredNames: names.names.sorted()
        )
    }

    /// Collects the names a declaration introduces, members included.
    private final class DeclaredNames: SyntaxVisitor {
        var names: Set<String> = []

        override func visit(_ node: FunctionDeclSyntax) -> SyntaxVisitorContinueKind { add(node.name) }
        override func visit(_ node: StructDeclSyntax) -> SyntaxVisitorContinueKind { add(node.name) }
        override func visit(_ node: ClassDeclSyntax) -> SyntaxVisitorContinueKind { add(node.name) }
        override func visit(_ node: EnumDeclSyntax) -> SyntaxVisitorContinueKind { add(node.name) }
        override func visit(_ node: ActorDeclSyntax) -> SyntaxVisitorContinueKind { add(node.name) }
        override func visit(_ node: ProtocolDeclSyntax) -> SyntaxVisitorContinueKind { add(node.name) }
        override func visit(_ node: TypeAliasDeclSyntax) -> SyntaxVisitorContinueKind { add(node.name) }
        override func visit(_ node: AssociatedTypeDeclSyntax) -> SyntaxVisitorContinueKind { add(node.name) }
        override func visit(_ node: EnumCaseElementSyntax) -> SyntaxVisitorContinueKind { add(node.name) }
        override func visit(_ node: OperatorDeclSyntax) -> SyntaxVisitorContinueKind { add(node.name) }
        override func visit(_ node: MacroDeclSyntax) -> SyntaxVisitorContinueKind { add(node.name) }
        override func visit(_ node: IdentifierPatternSyntax) -> SyntaxVisitorContinueKind { add(node.identifier) }

        /// An extension (conformances, members) matters wherever its type is named.
        override func visit(_ node: ExtensionDeclSyntax) -> SyntaxVisitorContinueKind {
            for token in node.extendedType.tokens(viewMode: .sourceAccurate) { names.insert(token.text) }
            return .visitChildren
        }

        // Parameters and locals inside bodies are not declarations of the chapter.
        override func visit(_ node: CodeBlockSyntax) -> SyntaxVisitorContinueKind { .skipChildren }
        override func visit(_ node: AccessorBlockSyntax) -> SyntaxVisitorContinueKind { .skipChildren }

        private func add(_ token: TokenSyntax) -> SyntaxVisitorContinueKind {
            names.insert(token.text)
            return .visitChildren
        }
    }

    /// Keywords without which no shared declaration or import can begin.
    private static let declarationKeywords: Set<Substring> = [
        "func", "struct", "class", "enum", "extension", "protocol", "typealias", "actor", "import",
        "operator", "precedencegroup", "macro",
    ]

    /// A sound, cheap pre-check: code whose words include no declaration keyword has nothing to
    /// hoist, so it need not be parsed (parsing dominates checking a chapter whose results are
    /// cached).
    static func mayDeclare(_ code: String) -> Bool {
        code.split { !($0.isLetter || $0.isNumber || $0 == "_") }.contains { declarationKeywords.contains($0) }
    }

    private static func isShared(_ decl: DeclSyntax) -> Bool {
        if decl.is(VariableDeclSyntax.self) || decl.is(IfConfigDeclSyntax.self)
            || decl.is(MacroExpansionDeclSyntax.self) {
            return false
        }
        return true
    }

    /// Blanks every byte outside `ranges` except line breaks, so lines keep their numbers.
    private static func mask(_ utf8: [UInt8], keeping ranges: [Range<Int>]) -> String {
        var keep = [Bool](repeating: false, count: utf8.count)
        for range in ranges { for i in range where i < keep.count { keep[i] = true } }
        var out = [UInt8]()
        out.reserveCapacity(utf8.count)
        var i = 0
        while i < utf8.count {
            let byte = utf8[i]
            if keep[i] || byte == UInt8(ascii: "\n") {
                out.append(byte)
            } else if byte & 0xC0 != 0x80 {
                out.append(UInt8(ascii: " "))  // one space per character, none for continuation bytes
            }
            i += 1
        }
        return String(decoding: out, as: UTF8.self)
    }

    private static func complement(of ranges: [Range<Int>], count: Int) -> [Range<Int>] {
        var result: [Range<Int>] = []
        var start = 0
        for range in ranges.sorted(by: { $0.lowerBound < $1.lowerBound }) {
            if range.lowerBound > start { result.append(start..<range.lowerBound) }
            start = max(start, range.upperBound)
        }
        if start < count { result.append(start..<count) }
        return result
    }

    /// The program holding the shared declarations of `declarationBlocks` and a function for each of
    /// `statementBlocks`; the run table lists those of them that run.
    static func program(declarationBlocks: [Block], statementBlocks: [Block], splits: [Int: SplitCode]) -> String {
        var out = "// Generated by workbook. Edit the chapter, not this file.\nimport KernelSim\nimport WorkbookRuntime\n"
        var seenImports: Set<String> = []
        for block in declarationBlocks + statementBlocks {
            for entry in splits[block.index]?.imports ?? [] where seenImports.insert(entry.text).inserted {
                out += "\(directive(block.fence.file, block.firstCodeLine + entry.line - 1))\n\(entry.text)\n#sourceLocation()\n"
            }
        }
        for block in declarationBlocks {
            guard let split = splits[block.index], split.hasDeclarations else { continue }
            out += "\(directive(block.fence.file, block.firstCodeLine))\n\(split.declarations)#sourceLocation()\n"
        }
        for block in statementBlocks {
            guard let split = splits[block.index] else { continue }
            out += "\(directive(block.fence.file, block.fence.line))\nfunc \(functionName(block))() {\n\(split.statements)}\n#sourceLocation()\n"
        }
        let runnable = statementBlocks.filter(\.runs)
        guard !runnable.isEmpty else { return out + "workbookMain([:])\n" }
        out += "workbookMain([\n"
        for block in runnable {
            let options = block.options
            out += "    \(block.index): WorkbookBlock(processors: \(options.processors), seed: \(options.seed), "
                + "verifier: \(options.verifier), "
                + (options.schedules == 1 ? "" : "schedules: \(options.schedules), ")
                + (options.strategy == .random ? "" : "strategy: .pct(), ")
                + (options.raceDetection ? "" : "races: false, ")
                + "body: \(functionName(block))),\n"
        }
        out += "])\n"
        return out
    }

    static func functionName(_ block: Block) -> String { "__workbook_block_\(block.index)" }

    private static func directive(_ file: String, _ line: Int) -> String {
        let escaped = file.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
        return "#sourceLocation(file: \"\(escaped)\", line: \(line))"
    }
}
