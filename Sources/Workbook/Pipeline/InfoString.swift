/// A fenced block's info string split into its language and attributes.
///
/// Grammar: the first word is the language; attributes follow, separated by spaces or commas,
/// each `name`, `name=value` or `name="value with spaces"` (with `\"` and `\\` escapes).
public struct InfoString: Hashable, Sendable {
    public struct Attribute: Hashable, Sendable {
        public var name: String
        public var value: String?
    }

    public var language: String
    public var attributes: [Attribute]

    /// Parses `text`; the error message says what is malformed.
    public static func parse(_ text: String) -> Result<InfoString, InfoStringError> {
        var tokens: [Attribute] = []
        var chars = Array(text)[...]

        func skipSeparators() {
            while let c = chars.first, c == " " || c == "\t" || c == "," { chars.removeFirst() }
        }

        skipSeparators()
        while !chars.isEmpty {
            var name = ""
            while let c = chars.first, c != " ", c != "\t", c != ",", c != "=" {
                if c == "\"" { return .failure(.init("unexpected '\"' in attribute name '\(name)'")) }
                name.append(c)
                chars.removeFirst()
            }
            var value: String?
            if chars.first == "=" {
                chars.removeFirst()
                if name.isEmpty { return .failure(.init("'=' without an attribute name")) }
                if chars.first == "\"" {
                    chars.removeFirst()
                    var quoted = ""
                    var closed = false
                    while let c = chars.first {
                        chars.removeFirst()
                        if c == "\\", let next = chars.first, next == "\"" || next == "\\" {
                            quoted.append(next)
                            chars.removeFirst()
                        } else if c == "\"" {
                            closed = true
                            break
                        } else {
                            quoted.append(c)
                        }
                    }
                    if !closed { return .failure(.init("unterminated quoted value of '\(name)'")) }
                    value = quoted
                } else {
                    var plain = ""
                    while let c = chars.first, c != " ", c != "\t", c != "," {
                        if c == "\"" || c == "=" {
                            return .failure(.init("unexpected '\(c)' in the value of '\(name)'; quote the value"))
                        }
                        plain.append(c)
                        chars.removeFirst()
                    }
                    if plain.isEmpty { return .failure(.init("'\(name)=' has no value")) }
                    value = plain
                }
            }
            tokens.append(Attribute(name: name, value: value))
            skipSeparators()
        }
        guard let first = tokens.first else { return .success(InfoString(language: "", attributes: [])) }
        if first.value != nil {
            return .failure(.init("the info string must start with a language, not '\(first.name)='"))
        }
        return .success(InfoString(language: first.name, attributes: Array(tokens.dropFirst())))
    }
}

public struct InfoStringError: Error, Hashable, Sendable {
    public var message: String
    init(_ message: String) { self.message = message }
}
