import Foundation

/// Block results stored by content hash, so an unchanged block is neither compiled nor run again.
///
/// A key covers everything a result depends on: the toolchain, the simulator build, the chapter's
/// imports, the shared declarations the block depends on (`Dependencies`), and the block's code,
/// place, attributes and expected output.
public struct ResultCache: Sendable {
    public var directory: String

    public init(directory: String) { self.directory = directory }

    struct Entry: Codable {
        var status: BlockStatus
        var duration: Double
        var message: String
        var stdout: String
        var stderr: String
        var diagnostics: [Diagnostic]
        var bugCheck: BugCheckInfo?
        var race: DataRaceInfo?
    }

    /// The digest of what a block's result depends on besides its own code: the environment and
    /// the shared declarations it depends on.
    static func sharedDigest(environment: String, declarations: String) -> String {
        var hash = SHA256()
        hash.update("workbook-cache-v4")
        hash.update(environment)
        hash.update(declarations)
        return hash.hexDigest()
    }

    static func key(sharedDigest: String, block: Block) -> String {
        var hash = SHA256()
        hash.update(sharedDigest)
        hash.update(block.fence.description)
        hash.update(block.code)
        hash.update(String(describing: block.expectation))
        hash.update(String(describing: block.role))
        hash.update(String(describing: block.options))
        hash.update(block.expectedOutput.map { "\($0.fence)\n\($0.text)" } ?? "-")
        return hash.hexDigest()
    }

    func lookup(_ key: String, for block: Block, chapter: String) -> BlockResult? {
        guard let data = FileManager.default.contents(atPath: path(key)),
              let entry = try? JSONDecoder().decode(Entry.self, from: data) else { return nil }
        return BlockResult(chapter: chapter, block: block, status: entry.status, duration: entry.duration,
                           message: entry.message, stdout: entry.stdout, stderr: entry.stderr,
                           diagnostics: entry.diagnostics, bugCheck: entry.bugCheck, race: entry.race,
                           cached: true)
    }

    /// Stores `result` unless it depends on the machine's load (a timeout) rather than on the code.
    func store(_ result: BlockResult, under key: String) {
        guard result.status != .timeout else { return }
        let entry = Entry(status: result.status, duration: result.duration, message: result.message,
                          stdout: result.stdout, stderr: result.stderr, diagnostics: result.diagnostics,
                          bugCheck: result.bugCheck, race: result.race)
        guard let data = try? JSONEncoder().encode(entry) else { return }
        write(data, to: path(key))
    }

    /// `ProgramGenerator.split(code)`, remembered by the code's hash: parsing with swift-syntax is
    /// most of the time spent on a chapter whose results are all cached.
    func split(_ code: String) -> ProgramGenerator.SplitCode {
        guard ProgramGenerator.mayDeclare(code) else { return ProgramGenerator.split(code) }
        var hash = SHA256()
        hash.update("split-v2")
        hash.update(code)
        let file = "\(directory)/splits/\(hash.hexDigest()).json"
        if let data = FileManager.default.contents(atPath: file),
           let split = try? JSONDecoder().decode(ProgramGenerator.SplitCode.self, from: data) {
            return split
        }
        let split = ProgramGenerator.split(code)
        if let data = try? JSONEncoder().encode(split) { write(data, to: file) }
        return split
    }

    /// Writes then renames, so a concurrent reader never sees half a file.
    private func write(_ data: Data, to file: String) {
        try? FileManager.default.createDirectory(atPath: (file as NSString).deletingLastPathComponent,
                                                 withIntermediateDirectories: true)
        let temporary = file + ".\(UUID().uuidString).tmp"
        if FileManager.default.createFile(atPath: temporary, contents: data) {
            _ = rename(temporary, file)
        }
    }

    private func path(_ key: String) -> String { "\(directory)/\(key).json" }
}
