/// A problem with a chapter's text, reported as `file:line: error: message` with a non-zero exit.
public struct ChapterError: Error, Hashable, Sendable, CustomStringConvertible {
    public var location: SourceLocation
    public var message: String

    public init(_ location: SourceLocation, _ message: String) {
        self.location = location
        self.message = message
    }

    public var description: String { "\(location): error: \(message)" }
}

/// Several chapter errors found in one pass, so an author fixes them all at once.
public struct ChapterErrors: Error, Sendable, CustomStringConvertible {
    public var errors: [ChapterError]

    public init(_ errors: [ChapterError]) { self.errors = errors }

    public var description: String { errors.map(\.description).joined(separator: "\n") }
}
