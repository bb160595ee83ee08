import KernelSim

/// Finds a chapter's checked blocks in libcmark's syntax tree and validates their attributes.
///
/// Every problem is collected, so one run shows an author all of them with their lines.
public enum BlockExtractor {
    /// The attributes a ` ```swift ` block may carry in a chapter.
    static let chapterAttributes: Set<String> = [
        "bugcheck", "compile_fail", "no_run", "ignore", "exercise", "check", "hidden",
        "verifier", "timeout", "processors", "seed", "schedules", "strategy", "race", "races",
    ]

    /// Extracts the blocks of the chapter at `path` whose text is `markdown`.
    public static func chapter(path: String, markdown: String) throws(ChapterErrors) -> Chapter {
        let document = MarkdownDocument(markdown)
        var errors: [ChapterError] = []
        var blocks: [Block] = []
        var previousCode: (isSwift: Bool, blockIndex: Int?)? = nil

        for code in document.codeBlocks where code.isFenced {
            let location = SourceLocation(file: path, line: code.startLine)
            if !code.isClosed {
                errors.append(ChapterError(location, "this code fence is never closed, so it swallows the rest of its section"))
            }
            let info: InfoString
            switch InfoString.parse(code.info) {
            case .success(let parsed): info = parsed
            case .failure(let error):
                errors.append(ChapterError(location, "malformed info string '\(code.info)': \(error.message)"))
                previousCode = (false, nil)
                continue
            }
            switch info.language {
            case "swift":
                do {
                    let block = try swiftBlock(index: blocks.count, location: location, code: code.literal,
                                               attributes: info.attributes)
                    blocks.append(block)
                    previousCode = (true, blocks.count - 1)
                } catch {
                    errors.append(error)
                    previousCode = (true, nil)
                }
            case "output":
                if let attribute = info.attributes.first {
                    errors.append(ChapterError(location, "an output block takes no attributes (found '\(attribute.name)')"))
                }
                guard let previous = previousCode, previous.isSwift else {
                    errors.append(ChapterError(location, "output block with no swift block right before it"))
                    continue
                }
                guard let index = previous.blockIndex else { continue }  // that block's error is reported
                if !blocks[index].runs {
                    errors.append(ChapterError(location, "output block follows the block at line \(blocks[index].fence.line), which is not run"))
                } else {
                    blocks[index].expectedOutput = ExpectedOutput(text: code.literal, fence: location)
                }
                previousCode = (false, nil)
            default:
                previousCode = (false, nil)
            }
        }
        errors += exerciseErrors(blocks)
        guard errors.isEmpty else { throw ChapterErrors(errors) }
        let title = document.title ?? Chapter(path: path, title: "", markdown: "", blocks: []).slug
        return Chapter(path: path, title: title, markdown: markdown, blocks: blocks)
    }

    /// Extracts the ` ```swift solution=ID ` blocks of a solutions file.
    public static func solutions(path: String, markdown: String) throws(ChapterErrors) -> [String: Solution] {
        var errors: [ChapterError] = []
        var solutions: [String: Solution] = [:]
        for code in MarkdownDocument(markdown).codeBlocks where code.isFenced {
            let location = SourceLocation(file: path, line: code.startLine)
            guard case .success(let info) = InfoString.parse(code.info) else {
                errors.append(ChapterError(location, "malformed info string '\(code.info)'"))
                continue
            }
            guard info.language == "swift" else { continue }
            guard info.attributes.count == 1, info.attributes[0].name == "solution",
                  let id = info.attributes[0].value else {
                errors.append(ChapterError(location, "a swift block in a solutions file must be exactly 'swift solution=ID'"))
                continue
            }
            if let validation = validateID(id) {
                errors.append(ChapterError(location, validation))
            } else if let first = solutions[id] {
                errors.append(ChapterError(location, "duplicate solution '\(id)' (first at line \(first.fence.line))"))
            } else {
                solutions[id] = Solution(id: id, fence: location, code: code.literal)
            }
        }
        guard errors.isEmpty else { throw ChapterErrors(errors) }
        return solutions
    }

    private static func swiftBlock(index: Int, location: SourceLocation, code: String,
                                   attributes: [InfoString.Attribute]) throws(ChapterError) -> Block {
        var block = Block(index: index, fence: location, code: code)
        var seen: Set<String> = []
        var expectationSource: String?

        func setExpectation(_ expectation: Expectation, from name: String) throws(ChapterError) {
            if let other = expectationSource {
                throw ChapterError(location, "'\(name)' conflicts with '\(other)': a block has one expected outcome")
            }
            expectationSource = name
            block.expectation = expectation
        }
        func require(_ value: String?, _ name: String, _ example: String) throws(ChapterError) -> String {
            guard let value else { throw ChapterError(location, "'\(name)' needs a value, e.g. \(example)") }
            return value
        }
        func forbid(_ value: String?, _ name: String) throws(ChapterError) {
            if value != nil { throw ChapterError(location, "'\(name)' takes no value") }
        }

        for attribute in attributes {
            let name = attribute.name
            guard chapterAttributes.contains(name) else {
                throw ChapterError(location, "unknown attribute '\(name)'" + suggestion(for: name))
            }
            guard seen.insert(name).inserted else { throw ChapterError(location, "attribute '\(name)' given twice") }
            let value = attribute.value
            switch name {
            case "bugcheck":
                var code: UInt32?
                if let value {
                    code = bugCheckCode(value)
                    if code == nil {
                        throw ChapterError(location, "unknown bug check '\(value)': use its documented name (e.g. DRIVER_IRQL_NOT_LESS_OR_EQUAL) or number (e.g. 0xD1)")
                    }
                }
                try setExpectation(.bugCheck(code: code), from: name)
            case "race":
                try forbid(value, name)
                try setExpectation(.race, from: name)
            case "races":
                switch try require(value, name, "races=off") {
                case "on": block.options.raceDetection = true
                case "off": block.options.raceDetection = false
                default: throw ChapterError(location, "races must be 'on' or 'off'")
                }
            case "compile_fail":
                if value?.isEmpty == true { throw ChapterError(location, "compile_fail=\"\" would match anything; drop the value") }
                try setExpectation(.compileFail(containing: value), from: name)
            case "no_run":
                try forbid(value, name)
                try setExpectation(.noRun, from: name)
            case "ignore":
                try forbid(value, name)
                try setExpectation(.ignore, from: name)
            case "exercise", "check":
                let id = try require(value, name, "\(name)=fast-mutex-init")
                if let problem = validateID(id) { throw ChapterError(location, problem) }
                if case .example = block.role {} else {
                    throw ChapterError(location, "a block is either an exercise starter or a check, not both")
                }
                block.role = name == "exercise" ? .exercise(id: id) : .check(id: id)
                if name == "check" { block.hidden = true }
            case "hidden":
                try forbid(value, name)
                block.hidden = true
            case "verifier":
                switch try require(value, name, "verifier=off") {
                case "on": block.options.verifier = true
                case "off": block.options.verifier = false
                default: throw ChapterError(location, "verifier must be 'on' or 'off'")
                }
            case "timeout":
                guard let seconds = Double(try require(value, name, "timeout=5")), seconds > 0, seconds <= 600 else {
                    throw ChapterError(location, "timeout must be a number of seconds between 0 and 600")
                }
                block.options.timeoutSeconds = seconds
            case "processors":
                guard let count = Int(try require(value, name, "processors=4")), (1...64).contains(count) else {
                    throw ChapterError(location, "processors must be a whole number from 1 to 64")
                }
                block.options.processors = count
            case "seed":
                guard let seed = UInt64(try require(value, name, "seed=42")) else {
                    throw ChapterError(location, "seed must be a non-negative whole number")
                }
                block.options.seed = seed
            case "schedules":
                guard let count = Int(try require(value, name, "schedules=200")), (1...100_000).contains(count) else {
                    throw ChapterError(location, "schedules must be a whole number from 1 to 100000")
                }
                block.options.schedules = count
            case "strategy":
                let text = try require(value, name, "strategy=pct")
                guard let strategy = ScheduleStrategy(rawValue: text) else {
                    throw ChapterError(location, "strategy must be 'random' or 'pct'")
                }
                block.options.strategy = strategy
            default:
                preconditionFailure("attribute '\(name)' is listed but not handled")
            }
        }
        if case .exercise = block.role, block.expectation != .run {
            throw ChapterError(location, "an exercise starter cannot also be '\(expectationSource ?? "")': its checks grade it")
        }
        return block
    }

    /// Duplicate starters, checks without a starter, starters without checks.
    private static func exerciseErrors(_ blocks: [Block]) -> [ChapterError] {
        var errors: [ChapterError] = []
        var starters: [String: Block] = [:]
        var checked: Set<String> = []
        for block in blocks {
            switch block.role {
            case .exercise(let id):
                if let first = starters[id] {
                    errors.append(ChapterError(block.fence, "duplicate exercise '\(id)' (first at line \(first.fence.line))"))
                } else {
                    starters[id] = block
                }
            case .check(let id): checked.insert(id)
            case .example: break
            }
        }
        for block in blocks {
            if case .check(let id) = block.role, starters[id] == nil {
                errors.append(ChapterError(block.fence, "check for exercise '\(id)', but the chapter has no 'exercise=\(id)' block"))
            }
        }
        for (id, starter) in starters where !checked.contains(id) {
            errors.append(ChapterError(starter.fence, "exercise '\(id)' has no 'check=\(id)' block to grade it"))
        }
        return errors.sorted { $0.location.line < $1.location.line }
    }

    static func validateID(_ id: String) -> String? {
        let allowed = id.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") }
        return allowed && !id.isEmpty ? nil : "exercise ID '\(id)' may use only letters, digits, '-' and '_'"
    }

    /// Accepts a documented name or a number in hex (`0xD1`) or decimal.
    static func bugCheckCode(_ text: String) -> UInt32? {
        if text.lowercased().hasPrefix("0x") { return UInt32(text.dropFirst(2), radix: 16) }
        if let number = UInt32(text) { return number }
        return KsBugCheckCode(named: text)
    }

    private static func suggestion(for name: String) -> String {
        let normalized = name.replacingHyphens()
        if chapterAttributes.contains(normalized) { return " (did you mean '\(normalized)'?)" }
        if name == "solution" { return " (solutions live in the solutions folder, not in the chapter)" }
        return "; known attributes: " + chapterAttributes.sorted().joined(separator: ", ")
    }
}

private extension String {
    func replacingHyphens() -> String { String(map { $0 == "-" ? "_" : $0 }) }
}
