/// A problem with a chapter's text, reported as `file:line: error: message` with a non-zero exit.
public struct ChapterError: Error, Hashable, Sendable, CustomStringConvertible {
    public var location: SourceLocation
    public var message: String

    public init(_ location: SourceLocation, _ message: String) {
        self.location = location
        self.message = message
    }

    /// `file:line: error: message`, or `file: error: message` for a whole-file problem (line 0).
    public var description: String {
        location.line > 0 ? "\(location): error: \(message)" : "\(location.file): error: \(message)"
    }
}

/// Several chapter errors found in one pass, so an author fixes them all at once.
public struct ChapterErrors: Error, Sendable, CustomStringConvertible {
    public var errors: [ChapterError]

    public init(_ errors: [ChapterError]) { self.errors = errors }

    public var description: String { errors.map(\.description).joined(separator: "\n") }
}
